"""The abstract backend protocol every ptdcore backend implements."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

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


class Capabilities(NamedTuple):
    """What a backend can do, known without running it."""

    jit_native: bool = False
    """Runs inside ``jax.jit`` with no Python callback (XLA custom call)."""
    releases_gil: bool = False
    """Other Python threads run while it computes."""
    parallel_batch: bool = False
    """Evaluates the rows of a batch in parallel."""
    devices: tuple[str, ...] = ("cpu",)
    """Where it computes."""
    second_derivatives: bool = False
    """``compute_pmf_and_moments`` also takes ``hessian=True`` (exact d2pmf, d2moments), so
    the JAX model supports ``jax.hessian`` through it."""
    differentiable: bool = False
    """Pure JAX: the model differentiates it with JAX itself (any order) instead of
    through the backend's Jacobians; such a backend implements ``jax_function``."""
    rtol: float = 1e-12
    """Relative accuracy it promises for pmf, moments and Jacobians, plus ..."""
    atol: float = 1e-15
    """... this fraction of the largest absolute value in the same row (one theta):
    the error bound is ``rtol * |value| + atol * row max``. The equivalence harness
    compares a backend with the reference backend within the sum of both bounds."""


class Backend(abc.ABC):
    """A way of running the ptdcore engine.

    Subclasses set ``name`` (and optionally ``description``, ``priority``,
    ``capabilities``) and implement :meth:`compute_pmf_and_moments`. Register
    them through the ``ptdcore_register_backends`` hook (see
    :mod:`ptdcore.hookspecs`); ptdcore's JAX model and equivalence suite then
    work with them unchanged.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    priority: ClassVar[int] = 0
    """Higher is preferred when no backend is named (the fastest gets the highest)."""
    capabilities: ClassVar[Capabilities] = Capabilities()

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """``(True, "")`` if the backend can run here, else ``(False, reason)``."""
        return True, ""

    @abc.abstractmethod
    def compute_pmf_and_moments(
        self,
        structure: Structure,
        theta: np.ndarray,
        times: np.ndarray,
        nr_moments: int,
        *,
        jacobian: bool = False,
    ) -> PmfMoments | PmfMomentsJacobian:
        """Evaluate a batch.

        Backends whose capabilities set ``second_derivatives`` also take ``hessian=True``
        and then add ``d2pmf`` of shape (B, T, P, P) and ``d2moments`` of shape (B, K, P, P).

        Parameters
        ----------
        structure
            The model (:class:`ptdcore.Structure`).
        theta
            ``(B, P)`` float64 parameter vectors.
        times
            ``(T,)`` times (continuous) or step counts (discrete).
        nr_moments
            ``K``: moments ``E[T], ..., E[T^K]``.
        jacobian
            Also return ``dpmf (B, T, P)`` and ``dmoments (B, K, P)``.
        """

    def jax_evaluator(self, structure: Structure, nr_moments: int) -> Callable[..., Any]:
        """A JAX-traceable ``f(theta (P,), times (T,), order) -> tuple of arrays``: the pmf and
        moments, with their Jacobians for ``order >= 1`` and Hessians for ``order == 2``.

        The default reaches :meth:`compute_pmf_and_moments` through the shared
        batching ``pure_callback`` adapter; jit-native backends override it.
        """
        from .callback_adapter import callback_evaluator

        return callback_evaluator(self, structure, nr_moments)

    def __repr__(self) -> str:
        return f"<ptdcore backend {self.name!r}: {self.description}>"


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
        raise ValueError(
            f"theta must have shape (B, {P}) for a model with {P} parameters, "
            f"got shape {theta_arr.shape}"
        )
    times_arr = np.ascontiguousarray(times, dtype=np.float64)
    if times_arr.ndim != 1:
        raise ValueError(f"times must have shape (T,), got shape {times_arr.shape}")
    if int(nr_moments) != nr_moments or nr_moments < 0:
        raise ValueError(f"nr_moments must be a whole number >= 0, got {nr_moments!r}")
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
    """Check a backend's result shapes; raise RuntimeError naming the backend otherwise."""
    expected = output_shapes(B, T, K, P, 2 if hessian else int(bool(jacobian)))
    labels = ["pmf", "moments", "dpmf", "dmoments", "d2pmf", "d2moments"]
    try:
        arrays = tuple(np.asarray(r, dtype=np.float64) for r in result)
    except TypeError:
        raise RuntimeError(
            f"backend {name!r} returned {type(result).__name__}, not a tuple"
        ) from None
    if len(arrays) != len(expected):
        raise RuntimeError(
            f"backend {name!r} returned {len(arrays)} arrays, expected {len(expected)} "
            f"({', '.join(labels[: len(expected)])})"
        )
    for label, arr, shape in zip(labels, arrays, expected, strict=False):
        if arr.shape != shape:
            raise RuntimeError(
                f"backend {name!r} returned {label} of shape {arr.shape}, expected {shape}"
            )
    return arrays
