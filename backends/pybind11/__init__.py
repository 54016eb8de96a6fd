"""The pybind11 backend: a prepared model object, GIL released, rows in parallel threads."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np

from ptdcore.backend import (
    Backend,
    Capabilities,
    PmfMoments,
    PmfMomentsHessian,
    PmfMomentsJacobian,
    as_result,
    check_inputs,
)
from ptdcore.hookspecs import hookimpl
from ptdcore.structure import Structure


@lru_cache(maxsize=64)
def prepare(structure: Structure) -> Any:
    """The engine's prepared model for ``structure`` (built once, cached by content hash)."""
    from . import _core

    s = structure
    return _core.PreparedModel(
        s.nr_states, s.nr_params, s.discrete, s.alpha, s.src, s.dst, s.constant,
        s.coef_ptr, s.coef_index, s.coef_value, s.rewards, s.output_code, s.epochs,
    )  # fmt: skip


class Pybind11Backend(Backend):
    """The engine's prepared model through pybind11."""

    name = "pybind11"
    description = "C++ engine via pybind11; GIL released, batch rows in parallel threads"
    priority = 30
    capabilities = Capabilities(
        jit_native=False, releases_gil=True, parallel_batch=True, second_derivatives=True
    )

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            from . import _core  # noqa: F401
        except ImportError as exc:
            return False, f"the compiled module is missing ({exc})"
        return True, ""

    def compute_pmf_and_moments(
        self,
        structure: Structure,
        theta: Any,
        times: Any,
        nr_moments: int,
        *,
        jacobian: bool = False,
        hessian: bool = False,
    ) -> PmfMoments | PmfMomentsJacobian | PmfMomentsHessian:
        theta, times, K = check_inputs(structure, theta, times, nr_moments)
        return as_result(prepare(structure).evaluate(theta, times, K, jacobian, hessian=hessian))


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
        self._model = prepare(self.structure)

    @property
    def param_length(self) -> int:
        return self.structure.nr_params

    @property
    def vertices_length(self) -> int:
        return self.structure.nr_states

    def _theta(self, theta: Any) -> tuple[np.ndarray, bool]:
        arr = np.asarray(theta, dtype=np.float64)
        return np.atleast_2d(arr), arr.ndim == 1

    def _check_discrete(self, discrete: bool) -> None:
        if bool(discrete) != self.structure.discrete:
            kind = "discrete" if self.structure.discrete else "continuous"
            raise ValueError(f"discrete={discrete} but the structure is {kind}")

    def compute_moments(self, theta: Any, nr_moments: int) -> np.ndarray:
        th, single = self._theta(theta)
        _, moments = self._model.evaluate(th, np.zeros(0), int(nr_moments))
        return moments[0] if single else moments

    def compute_pmf(
        self, theta: Any, times: Any, discrete: bool = False, granularity: int = 100
    ) -> np.ndarray:
        del granularity
        self._check_discrete(discrete)
        th, single = self._theta(theta)
        pmf, _ = self._model.evaluate(th, np.asarray(times, dtype=np.float64), 0)
        return pmf[0] if single else pmf

    def compute_pmf_and_moments(
        self, theta: Any, times: Any, nr_moments: int, discrete: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        self._check_discrete(discrete)
        th, single = self._theta(theta)
        pmf, moments = self._model.evaluate(
            th, np.asarray(times, dtype=np.float64), int(nr_moments)
        )
        return (pmf[0], moments[0]) if single else (pmf, moments)


@hookimpl
def ptdcore_register_backends() -> list[type[Backend]]:
    return [Pybind11Backend]
