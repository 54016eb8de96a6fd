"""What backends return: the result tuples and the checks of arguments and shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .errors import BackendError, ModelError

if TYPE_CHECKING:
    from .structure import Structure


class PmfMoments(NamedTuple):
    """pmf (B, T) and moments (B, K)."""

    pmf: np.ndarray
    moments: np.ndarray


class PmfMomentsJacobian(NamedTuple):
    """pmf (B, T), moments (B, K), dpmf (B, T, P), dmoments (B, K, P)."""

    pmf: np.ndarray
    moments: np.ndarray
    dpmf: np.ndarray
    dmoments: np.ndarray


class PmfMomentsHessian(NamedTuple):
    """pmf, moments, their Jacobians, and the Hessians d2pmf (B, T, P, P), d2moments
    (B, K, P, P)."""

    pmf: np.ndarray
    moments: np.ndarray
    dpmf: np.ndarray
    dmoments: np.ndarray
    d2pmf: np.ndarray
    d2moments: np.ndarray


def check_inputs(
    structure: Structure, theta: Any, times: Any, nr_moments: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate and convert the arguments of ``compute_pmf_and_moments``.

    Returns C-contiguous float64 ``theta (B, P)``, ``times (T,)`` and ``nr_moments``;
    raises ValueError naming the argument and its shape otherwise.
    """
    theta_arr = np.ascontiguousarray(theta, dtype=np.float64)
    P = structure.nr_params
    if theta_arr.ndim != 2 or theta_arr.shape[1] != P:
        raise ModelError(
            f"theta must have shape (B, {P}) for a model with {P} parameters, "
            f"got shape {theta_arr.shape}"
        )
    times_arr = np.ascontiguousarray(times, dtype=np.float64)
    if times_arr.ndim != 1:
        raise ModelError(f"times must have shape (T,), got shape {times_arr.shape}")
    if int(nr_moments) != nr_moments or nr_moments < 0:
        raise ModelError(f"nr_moments must be a whole number >= 0, got {nr_moments!r}")
    return theta_arr, times_arr, int(nr_moments)


def output_shapes(B: int, T: int, K: int, P: int, order: int) -> list[tuple[int, ...]]:
    """Shapes of the outputs up to derivative ``order`` (0, 1 or 2)."""
    shapes = [(B, T), (B, K)]
    if order >= 1:
        shapes += [(B, T, P), (B, K, P)]
    if order >= 2:
        shapes += [(B, T, P, P), (B, K, P, P)]
    return shapes


def empty_outputs(
    B: int, T: int, K: int, P: int, jacobian: bool, hessian: bool = False
) -> tuple[np.ndarray, ...]:
    """Uninitialised float64 outputs: pmf (B, T), moments (B, K), Jacobians, Hessians."""
    order = 2 if hessian else int(bool(jacobian))
    return tuple(np.empty(shape) for shape in output_shapes(B, T, K, P, order))


def as_result(arrays: Any) -> PmfMoments | PmfMomentsJacobian | PmfMomentsHessian:
    """Two, four or six arrays as the matching result tuple."""
    arrays = tuple(arrays)
    kind = {2: PmfMoments, 4: PmfMomentsJacobian, 6: PmfMomentsHessian}[len(arrays)]
    return kind(*arrays)


def check_outputs(
    name: str, result: Any, B: int, T: int, K: int, P: int, jacobian: bool, hessian: bool = False
) -> tuple[np.ndarray, ...]:
    """Check a backend's result shapes; raise BackendError naming the backend otherwise."""
    expected = output_shapes(B, T, K, P, 2 if hessian else int(bool(jacobian)))
    labels = ["pmf", "moments", "dpmf", "dmoments", "d2pmf", "d2moments"]
    try:
        arrays = tuple(np.asarray(r, dtype=np.float64) for r in result)
    except TypeError:
        raise BackendError(
            f"backend {name!r} returned {type(result).__name__}, not a tuple"
        ) from None
    if len(arrays) != len(expected):
        raise BackendError(
            f"backend {name!r} returned {len(arrays)} arrays, expected {len(expected)} "
            f"({', '.join(labels[: len(expected)])})"
        )
    for label, arr, shape in zip(labels, arrays, expected, strict=False):
        if arr.shape != shape:
            raise BackendError(
                f"backend {name!r} returned {label} of shape {arr.shape}, expected {shape}"
            )
    return arrays
