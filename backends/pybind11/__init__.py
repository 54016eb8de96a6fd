"""The pybind11 backend: a prepared model object, GIL released, rows on the engine's pool."""

from __future__ import annotations

import json
from importlib.util import find_spec
from typing import Any

import numpy as np

from ptdcore.backend import Capabilities, NativeBackend
from ptdcore.hookspecs import hookimpl
from ptdcore.structure import Structure


class Pybind11Backend(NativeBackend):
    """The engine's prepared model through pybind11."""

    name = "pybind11"
    description = "C++ engine via pybind11; GIL released, batch rows on the engine's thread pool"
    priority = 30
    capabilities = Capabilities(
        jit_native=False,
        releases_gil=True,
        parallel_batch=True,
        second_derivatives=True,
        sampling=True,
    )

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if find_spec(f"{__name__}._core") is None:
            return False, "the compiled module _core was not built"
        return True, ""

    def prepare(self, structure: Structure) -> Any:
        from . import _core

        return _core.PreparedModel(structure)

    def fill(
        self, prepared: Any, theta: np.ndarray, times: np.ndarray, nr_moments: int,
        outputs: tuple[np.ndarray, ...], output: int = 0,
    ) -> None:  # fmt: skip
        prepared.evaluate_into(theta, times, nr_moments, outputs, output=output)

    def sample_prepared(self, prepared: Any, theta: np.ndarray, count: int, seed: int) -> Any:
        return prepared.sample(theta, count, seed)


def prepare(structure: Structure) -> Any:
    """The engine's prepared model for ``structure`` (cached): ``sample``, ``evaluate_into``."""
    return Pybind11Backend().prepared(structure)


class GraphBuilder:
    """The seed's builder object: build once from structure JSON, evaluate many times.

    ``granularity`` is accepted for compatibility and ignored: the density is exact.
    """

    def __init__(self, structure_json: str | dict[str, Any] | Structure) -> None:
        if isinstance(structure_json, Structure):
            self.structure = structure_json
        elif isinstance(structure_json, dict):
            self.structure = Structure.from_dict(structure_json)
        else:
            self.structure = Structure.from_dict(json.loads(structure_json))
        self._backend = Pybind11Backend()
        self._backend.prepared(self.structure)  # errors surface here

    @property
    def param_length(self) -> int:
        return self.structure.nr_params

    @property
    def vertices_length(self) -> int:
        return self.structure.nr_states

    def _evaluate(self, theta: Any, times: Any, nr_moments: int) -> tuple[Any, Any]:
        arr = np.asarray(theta, dtype=np.float64)
        pmf, moments = self._backend.compute_pmf_and_moments(
            self.structure, np.atleast_2d(arr), np.asarray(times, dtype=np.float64), nr_moments
        )
        return (pmf[0], moments[0]) if arr.ndim == 1 else (pmf, moments)

    def _check_discrete(self, discrete: bool) -> None:
        if bool(discrete) != self.structure.discrete:
            kind = "discrete" if self.structure.discrete else "continuous"
            raise ValueError(f"discrete={discrete} but the structure is {kind}")

    def compute_moments(self, theta: Any, nr_moments: int) -> np.ndarray:
        return self._evaluate(theta, np.zeros(0), int(nr_moments))[1]

    def compute_pmf(
        self, theta: Any, times: Any, discrete: bool = False, granularity: int = 100
    ) -> np.ndarray:
        del granularity
        self._check_discrete(discrete)
        return self._evaluate(theta, times, 0)[0]

    def compute_pmf_and_moments(
        self, theta: Any, times: Any, nr_moments: int, discrete: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        self._check_discrete(discrete)
        return self._evaluate(theta, times, int(nr_moments))


@hookimpl
def ptdcore_register_backends() -> list[type[NativeBackend]]:
    return [Pybind11Backend]
