"""The shared ``pure_callback`` adapter for backends that are not jit-native.

Under ``jax.vmap`` (over theta and/or times, nested too) the callback receives the
whole batch (``vmap_method="expand_dims"``) and makes one backend call for it:

- times shared by the batch: one call with theta (N, P) and times (T,);
- theta shared, times batched: one call with theta (1, P) and all times;
- both batched: one call with theta (N, P) and the distinct times, then each
  row picks its own columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .results import check_outputs

if TYPE_CHECKING:
    from .structure import Structure


class Evaluating(Protocol):
    """What the adapter needs of a :class:`ptdcore.Backend` (not imported: backend.py
    imports this module)."""

    name: str

    def compute_pmf_and_moments(
        self, structure: Structure, theta: Any, times: Any, nr_moments: int, **kwargs: Any
    ) -> Any: ...


def call_backend(
    backend: Evaluating,
    structure: Structure,
    theta: np.ndarray,
    times: np.ndarray,
    nr_moments: int,
    order: int = 0,
    output: str = "density",
) -> tuple[np.ndarray, ...]:
    """One checked backend call: ``output`` at the times, the moments, and derivatives up
    to ``order``. ``hessian`` and ``output`` are passed only when they are not the
    defaults, so backends that offer neither need not accept them."""
    kwargs: dict[str, Any] = {"jacobian": order >= 1}
    if order >= 2:
        kwargs["hessian"] = True
    if output != "density":
        kwargs["output"] = output
    try:
        result = backend.compute_pmf_and_moments(structure, theta, times, nr_moments, **kwargs)
    except TypeError as exc:
        if "output" in kwargs and "output" in str(exc):
            raise NotImplementedError(
                f"backend {backend.name!r} does not evaluate output={output!r} (its "
                "compute_pmf_and_moments takes no output argument)"
            ) from exc
        raise
    return check_outputs(
        backend.name, result, theta.shape[0], times.shape[0], nr_moments, structure.nr_params,
        order >= 1, order >= 2,
    )  # fmt: skip


def batched_host_call(
    backend: Evaluating,
    structure: Structure,
    nr_moments: int,
    theta: np.ndarray,
    times: np.ndarray,
    order: int,
    output: str = "density",
) -> tuple[np.ndarray, ...]:
    """Evaluate theta (*bt, P) at times (*bs, T) with one backend call.

    ``bt`` and ``bs`` have equal length and broadcast together (size-1 entries
    mean "not batched"); outputs have the broadcast batch shape in front.
    """
    P, K = structure.nr_params, nr_moments
    theta = np.asarray(theta, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    T = times.shape[-1]
    batch = np.broadcast_shapes(theta.shape[:-1], times.shape[:-1])
    theta_rows = theta.reshape(math.prod(theta.shape[:-1]), P)
    times_rows = times.reshape(math.prod(times.shape[:-1]), T)

    def call(th: np.ndarray, tm: np.ndarray) -> tuple[np.ndarray, ...]:
        return call_backend(backend, structure, th, tm, K, order, output)

    if times_rows.shape[0] == 1:
        out = call(theta_rows, times_rows[0])
        lead = theta.shape[:-1]
        return tuple(
            np.broadcast_to(a.reshape(lead + a.shape[1:]), batch + a.shape[1:]) for a in out
        )
    if theta_rows.shape[0] == 1:
        out = call(theta_rows, times_rows.reshape(-1))
        lead = times.shape[:-1]
        result = []
        for i, a in enumerate(out):
            if i % 2 == 0:  # pmf (1, N*T) and dpmf (1, N*T, P): a row per times row
                b = a.reshape(lead + (T,) + a.shape[2:])
            else:  # moments (1, K) and dmoments (1, K, P): shared by all rows
                b = a.reshape((1,) * len(lead) + a.shape[1:])
            result.append(np.broadcast_to(b, batch + b.shape[len(lead) :]))
        return tuple(result)
    rows = math.prod(batch)
    theta_full = np.broadcast_to(theta, batch + (P,)).reshape(rows, P)
    times_full = np.broadcast_to(times, batch + (T,)).reshape(rows, T)
    distinct, inverse = np.unique(times_full, return_inverse=True)
    inverse = inverse.reshape(times_full.shape)
    out = call(theta_full, distinct)
    row_index = np.arange(rows)[:, None]
    result = []
    for i, a in enumerate(out):
        picked = a[row_index, inverse] if i % 2 == 0 else a  # pmf/dpmf pick columns
        result.append(picked.reshape(batch + picked.shape[1:]))
    return tuple(result)


def callback_evaluator(
    backend: Evaluating, structure: Structure, nr_moments: int, output: str = "density"
) -> Callable[..., Any]:
    """``f(theta (P,), times (T,), order) -> arrays`` through ``jax.pure_callback``."""
    import jax
    import jax.numpy as jnp

    P, K = structure.nr_params, nr_moments

    def evaluate(theta: Any, times: Any, order: int) -> tuple[Any, ...]:
        if order >= 2 and not backend.capabilities.second_derivatives:
            raise NotImplementedError(
                f"backend {backend.name!r} does not provide second derivatives "
                "(Capabilities.second_derivatives is False), so jax.hessian and other "
                "second-order transforms cannot run on it; use ffi, pybind11, cffi or legacy"
            )
        T = times.shape[-1]
        shapes = [(T,), (K,)] + ([(T, P), (K, P)] if order >= 1 else [])
        shapes += [(T, P, P), (K, P, P)] if order >= 2 else []
        result_shapes = tuple(jax.ShapeDtypeStruct(s, jnp.float64) for s in shapes)

        def host(th: np.ndarray, tm: np.ndarray) -> tuple[np.ndarray, ...]:
            out = batched_host_call(backend, structure, K, th, tm, order, output)
            return tuple(np.ascontiguousarray(a) for a in out)

        return jax.pure_callback(host, result_shapes, theta, times, vmap_method="expand_dims")

    return evaluate
