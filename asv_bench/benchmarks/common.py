"""Shared setup for the ptdcore benchmarks: models, data and skips, built once and cached.

Datasets are seeded and only ever appended to, so results stay comparable across commits.
"""

from __future__ import annotations

import os
import warnings
from functools import cache

import jax
import numpy as np

# The benchmark processes are ptdcore's own: float64 on (ptdcore never sets it itself).
jax.config.update("jax_enable_x64", True)

BACKENDS = ["ffi", "pybind11", "cffi", "legacy"]
SIZES = [5, 10, 20, 30]
BATCHES = [1, 100]
THETA = 1.0
N_OBS = 100


def skip_unless_available(backend: str) -> None:
    """asv skips a parameter combination whose setup raises NotImplementedError."""
    import ptdcore

    if backend not in ptdcore.list_backends():
        raise NotImplementedError(f"backend {backend!r} unavailable")


def skip_slow(backend: str, n: int, batch: int) -> None:
    """n = 30 with a batch of 100 is minutes per sample on 2 cores: default backend only,
    and only with PTDCORE_BENCH_XSLOW=1."""
    if n == 30 and batch > 1 and (backend != "ffi" or not os.environ.get("PTDCORE_BENCH_XSLOW")):
        raise NotImplementedError("n=30 x batch 100: set PTDCORE_BENCH_XSLOW=1 (ffi only)")


@cache
def kingman(n: int):
    from ptdcore.coalescent import kingman_block_counting

    return kingman_block_counting(n)


@cache
def observations(n: int) -> np.ndarray:
    """N_OBS TMRCA values simulated at THETA (seeded)."""
    rng = np.random.default_rng(1000 + n)
    rates = np.array([k * (k - 1) / 2 * THETA for k in range(2, n + 1)])
    return rng.exponential(1.0 / rates, size=(N_OBS, rates.size)).sum(axis=1)


def thetas(batch: int) -> np.ndarray:
    return np.linspace(0.7, 1.4, batch)[:, None]


def make_model(n: int, backend: str, nr_moments: int = 2):
    import ptdcore

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return ptdcore.model(kingman(n), nr_moments=nr_moments, backend=backend)
