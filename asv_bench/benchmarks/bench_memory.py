"""Memory of many models: a program that makes and deletes models one after another.

The ffi backend used to keep every registered model for the life of the process (100
deleted models of 37,337 states held 4.7 GB) and pybind11 the last 64. Prepared models
now live while their ptdcore model does, and the backend's cache of recent ones is
bounded by count and by estimated bytes (``NativeBackend.cache_bytes``), so the peak
memory of this loop stays flat in the number of models.
"""

from __future__ import annotations

import dataclasses
import gc

import numpy as np

from .common import skip_unless_available


class ManyModels:
    """``count`` distinct Kingman models (n = 30: 5,603 states each) made, evaluated once
    and deleted, one after another."""

    params = (["ffi", "pybind11"], [20, 100])
    param_names = ["backend", "count"]
    timeout = 600

    def setup(self, backend, count):
        skip_unless_available(backend)
        from ptdcore.coalescent import kingman_block_counting

        self.base = kingman_block_counting(30).structure()

    def peakmem_make_and_delete(self, backend, count):
        import ptdcore

        for i in range(count):
            structure = dataclasses.replace(self.base, constant=self.base.constant + 1e-12 * i)
            model = ptdcore.model(structure, nr_moments=1, backend=backend)
            model(np.array([1.0]), np.array([0.5]))
            del model, structure
            gc.collect()
