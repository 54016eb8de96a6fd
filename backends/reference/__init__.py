"""The reference backend: pure JAX dense linear algebra, independent of the C++ engine.

It is the independent oracle of the equivalence harness (``ptdcore check``, the corpus
tests, the pytest plugin): every other built-in backend compiles the same engine, so
agreement among them can only find binding errors; agreement with this backend can
find engine errors. Being pure JAX it runs under ``jit``, ``vmap``, ``grad`` and
``jax.hessian`` natively and on any XLA device. It is slow on large models and
refuses those above :data:`MAX_STATES` states; it is never chosen as the default.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.util import find_spec
from typing import Any

import numpy as np

from ptdcore.backend import (
    Backend,
    Capabilities,
    PmfMoments,
    PmfMomentsJacobian,
    as_result,
    check_inputs,
    output_code,
)
from ptdcore.hookspecs import hookimpl
from ptdcore.structure import Structure

from .dense import make_function
from .linalg import time_chunk

MAX_STATES = 300
"""Models with more states are refused (dense n x n exponentials per time)."""
MEMORY_BUDGET_BYTES = 512 * 2**20
"""A batch of theta rows is evaluated in chunks whose working set stays under this."""


def bytes_per_row(structure: Structure, nr_times: int, jacobian: bool) -> int:
    """Working memory of one theta row: a few dense matrices per live time chunk and per
    tangent (forward mode), the moment solves, and the outputs."""

    n = structure.nr_states + 1
    tangents = 1 + (structure.nr_params if jacobian else 0)
    live_times = min(max(nr_times, 1), time_chunk(n))
    return 8 * tangents * (4 * n * n * (live_times + 2) + nr_times)


def rows_per_chunk(structure: Structure, nr_times: int, jacobian: bool) -> int:
    """How many theta rows one call evaluates at once within :data:`MEMORY_BUDGET_BYTES`."""
    return max(1, MEMORY_BUDGET_BYTES // bytes_per_row(structure, nr_times, jacobian))


def _check_size(structure: Structure) -> None:
    if structure.nr_states > MAX_STATES:
        raise ValueError(
            f"the reference backend computes with dense {structure.nr_states} x "
            f"{structure.nr_states} matrices and accepts at most {MAX_STATES} states; "
            "compare a smaller model, or use another backend"
        )


@lru_cache(maxsize=32)
def _compiled(structure: Structure, nr_moments: int, jacobian: bool, output: str) -> Any:
    """jit(vmap over theta rows) of the value function, or of value and jacfwd."""
    import jax
    import jax.numpy as jnp

    f = make_function(structure, nr_moments, output)
    if not jacobian:
        return jax.jit(jax.vmap(f, in_axes=(0, None)))

    def with_jacobian(theta: Any, times: Any) -> tuple[Any, ...]:
        pmf, moments = f(theta, times)
        dpmf, dmoments = jax.jacfwd(f)(theta, times)
        # where a value is not finite its derivative does not exist (as in the engine)
        dpmf = jnp.where(jnp.isfinite(pmf)[:, None], dpmf, jnp.nan)
        dmoments = jnp.where(jnp.isfinite(moments)[:, None], dmoments, jnp.nan)
        return pmf, moments, dpmf, dmoments

    return jax.jit(jax.vmap(with_jacobian, in_axes=(0, None)))


class ReferenceBackend(Backend):
    """Dense matrix exponentials and solves in pure JAX (see :mod:`.dense`)."""

    name = "reference"
    description = "pure JAX dense expm/solve, independent of the engine (oracle; slow)"
    priority = -100
    capabilities = Capabilities(
        jit_native=True,
        releases_gil=True,
        parallel_batch=True,
        devices=("cpu", "gpu", "tpu"),
        differentiable=True,
        rtol=1e-12,
        atol=1e-14,
    )

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if find_spec("jax") is None:  # pragma: no cover - jax is a dependency
            return False, "jax is not installed"
        return True, ""

    def compute_pmf_and_moments(
        self,
        structure: Structure,
        theta: np.ndarray,
        times: np.ndarray,
        nr_moments: int,
        *,
        jacobian: bool = False,
        hessian: bool = False,
        output: str = "density",
    ) -> PmfMoments | PmfMomentsJacobian:
        import jax

        if hessian:
            raise NotImplementedError(
                "the reference backend differentiates with JAX itself: use jax.hessian on "
                "its model (ptdcore.model(..., backend='reference'))"
            )
        theta, times, K = check_inputs(structure, theta, times, nr_moments)
        output_code(output)  # (ValueError for an unknown output)
        _check_size(structure)
        fn = _compiled(structure, K, bool(jacobian), output)
        step = rows_per_chunk(structure, len(times), bool(jacobian))
        with jax.enable_x64(True):
            parts = [
                [np.asarray(a, dtype=np.float64) for a in fn(theta[i : i + step], times)]
                for i in range(0, max(len(theta), 1), step)
            ]
        return as_result(np.concatenate(arrays) for arrays in zip(*parts, strict=True))

    def jax_function(self, structure: Structure, nr_moments: int, output: str = "density") -> Any:
        """``f(theta (P,), times (T,)) -> (pmf, moments)``, differentiated by JAX itself;
        ``pmf`` holds ``output`` at the times.

        Times are evaluated in chunks (:func:`.linalg.map_over_times`), so the memory of
        a value or a gradient per theta does not grow with the number of times; under
        ``vmap`` it grows with the number of thetas times the states squared."""
        output_code(output)
        _check_size(structure)
        return make_function(structure, nr_moments, output)


@hookimpl
def ptdcore_register_backends() -> list[type[Backend]]:
    return [ReferenceBackend]
