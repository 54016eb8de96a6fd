"""The abstract backend protocol every ptdcore backend implements.

The result tuples and argument checks live in :mod:`ptdcore.results` and are
re-exported here.
"""

from __future__ import annotations

import abc
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, overload

import numpy as np

from .errors import BackendError, ModelError
from .results import (
    PmfMoments,
    PmfMomentsHessian,
    PmfMomentsJacobian,
    as_result,
    check_inputs,
    check_outputs,
    empty_outputs,
    output_shapes,
)
from .validation import OUTPUTS, output_code

__all__ = [
    "Backend",
    "Capabilities",
    "NativeBackend",
    "PmfMoments",
    "PmfMomentsHessian",
    "PmfMomentsJacobian",
    "as_result",
    "check_inputs",
    "check_outputs",
    "empty_outputs",
    "output_code",
    "output_shapes",
    "OUTPUTS",
]

if TYPE_CHECKING:
    from collections.abc import Callable

    from .structure import Structure


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
    sampling: bool = False
    """Implements :meth:`Backend.sample` (exact draws of T)."""
    rtol: float = 1e-12
    """Relative accuracy it promises for pmf, moments and Jacobians, plus ..."""
    atol: float = 1e-15
    """... this fraction of the largest absolute value in the same row (one theta):
    the error bound is ``rtol * |value| + atol * row max``. The equivalence harness
    compares a backend with the reference backend within the sum of both bounds."""


class Backend(abc.ABC):
    """A way of running the ptdcore engine.

    Subclasses set ``name`` (and optionally ``description``, ``priority``,
    ``capabilities``, ``deprecated``) and implement :meth:`compute_pmf_and_moments`.
    The other services (:meth:`jax_evaluator`, :meth:`jax_function`, :meth:`sample`,
    :meth:`cache_info`, :meth:`clear_cache`) have defaults: a backend overrides those it
    offers and says so in its :class:`Capabilities`. Register backends through the
    ``ptdcore_register_backends`` hook (see :mod:`ptdcore.hookspecs`); ptdcore's JAX
    model and equivalence suite then work with them unchanged.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    priority: ClassVar[int] = 0
    """Higher is preferred when no backend is named (the fastest gets the highest)."""
    capabilities: ClassVar[Capabilities] = Capabilities()
    deprecated: ClassVar[str] = ""
    """Non-empty: selecting this backend for a model warns (``DeprecationWarning``) with
    this text."""

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """``(True, "")`` if the backend can run here, else ``(False, reason)``.

        Listing backends calls this for every backend, so it must be cheap and free of
        side effects: check that modules and files exist (``importlib.util.find_spec``,
        ``Path.exists``), never import JAX or load a library here. Loading happens on
        first use, and a failure then is a :class:`~ptdcore.errors.BackendError` naming
        the backend.
        """
        return True, ""

    @overload
    def compute_pmf_and_moments(
        self,
        structure: Structure,
        theta: np.ndarray,
        times: np.ndarray,
        nr_moments: int,
        *,
        jacobian: Literal[False] = ...,
    ) -> PmfMoments: ...

    @overload
    def compute_pmf_and_moments(
        self,
        structure: Structure,
        theta: np.ndarray,
        times: np.ndarray,
        nr_moments: int,
        *,
        jacobian: Literal[True],
    ) -> PmfMomentsJacobian: ...

    @abc.abstractmethod
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
    ) -> PmfMoments | PmfMomentsJacobian | PmfMomentsHessian:
        """Evaluate a batch.

        ptdcore passes ``hessian`` and ``output`` only when they differ from their
        defaults, so a backend that offers neither may leave them out of its signature.

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
        hessian
            Also return ``d2pmf (B, T, P, P)`` and ``d2moments (B, K, P, P)`` (with
            ``jacobian``); for backends whose capabilities set ``second_derivatives``.
        output
            What ``pmf`` holds at the times: "density" (probability mass for discrete
            models), "cdf" or "sf" (:data:`OUTPUTS`).
        """

    def jax_evaluator(
        self, structure: Structure, nr_moments: int, output: str = "density"
    ) -> Callable[..., Any]:
        """A JAX-traceable ``f(theta (P,), times (T,), order) -> tuple of arrays``: ``output``
        at the times and the moments, with their Jacobians for ``order >= 1`` and Hessians
        for ``order == 2``.

        The default reaches :meth:`compute_pmf_and_moments` through the shared
        batching ``pure_callback`` adapter; jit-native backends override it.
        """
        from .callback_adapter import callback_evaluator

        return callback_evaluator(self, structure, nr_moments, output)

    def jax_function(
        self, structure: Structure, nr_moments: int, output: str = "density"
    ) -> Callable[..., Any]:
        """For ``capabilities.differentiable`` backends: a pure-JAX ``f(theta (P,), times
        (T,)) -> (pmf, moments)`` that JAX differentiates itself."""
        raise NotImplementedError(f"backend {self.name!r} is not a pure-JAX backend")

    def sample(self, structure: Structure, theta: np.ndarray, count: int, seed: int) -> np.ndarray:
        """``count`` exact draws of T (of Y with rewards) at the parameter row ``theta``,
        reproducible from ``seed``; for backends whose capabilities set ``sampling``."""
        raise NotImplementedError(f"backend {self.name!r} does not sample")

    def cache_info(self) -> str | None:
        """A line describing the backend's persistent cache (files on disk), or None when
        it keeps none (``ptdcore cache``)."""
        return None

    def clear_cache(self) -> str | None:
        """Empty the persistent cache; a line saying what was removed, or None."""
        return None

    def __repr__(self) -> str:
        return f"<ptdcore backend {self.name!r}: {self.description}>"


class NativeBackend(Backend):
    """Base of the backends that run the C++ engine: validate, prepare, fill, wrap.

    :meth:`compute_pmf_and_moments` checks the arguments once, gets the prepared model
    from a per-class cache (built by :meth:`prepare` on first use of a structure; the
    most recent kept, at most ``cache_size`` of them and at most ``cache_bytes`` by
    :meth:`prepared_bytes`, so that memory stays bounded however many models a program
    makes), allocates the outputs and lets :meth:`fill` write them. A subclass
    implements only :meth:`prepare` and :meth:`fill`; a failure in
    either becomes a :class:`~ptdcore.errors.BackendError` naming the backend (a
    :class:`~ptdcore.errors.ModelError` when the engine rejects the model).
    """

    cache_size: ClassVar[int] = 64
    cache_bytes: ClassVar[int] = 256 * 2**20
    """Estimated engine memory (:meth:`prepared_bytes`) the cache may hold; the most
    recent model is always kept."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._prepared: OrderedDict[Structure, tuple[Any, int]] = OrderedDict()
        cls._prepared_lock = threading.Lock()

    @staticmethod
    def prepared_bytes(structure: Structure) -> int:
        """Estimated memory of the engine's prepared model: three times the structure's
        arrays (its own copy, the topology and levels; measured 2.4 times on a
        37,337-state coalescent)."""
        arrays = ("alpha", "src", "dst", "constant", "coef_ptr", "coef_index", "coef_value")
        size = sum(getattr(structure, name).nbytes for name in arrays)
        if structure.rewards is not None:
            size += structure.rewards.nbytes
        return 3 * size

    @abc.abstractmethod
    def prepare(self, structure: Structure) -> Any:
        """The engine's model for ``structure`` (called once per structure and class)."""

    @abc.abstractmethod
    def fill(
        self, prepared: Any, theta: np.ndarray, times: np.ndarray, nr_moments: int,
        outputs: tuple[np.ndarray, ...], output: int = 0,
    ) -> None:  # fmt: skip
        """Write pmf, moments (and Jacobians, Hessians: 2, 4 or 6 ``outputs``) for the batch;
        ``output`` is the engine's code of what pmf holds (:func:`output_code`)."""

    def sample(self, structure: Structure, theta: np.ndarray, count: int, seed: int) -> np.ndarray:
        """Draws from the cached prepared model (:meth:`sample_prepared`)."""
        if not self.capabilities.sampling:
            return super().sample(structure, theta, count, seed)
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        if theta.shape != (structure.nr_params,):
            raise ValueError(
                f"theta must have shape ({structure.nr_params},), got shape {theta.shape}"
            )
        return self.sample_prepared(self.prepared(structure), theta, int(count), int(seed))

    def sample_prepared(self, prepared: Any, theta: np.ndarray, count: int, seed: int) -> Any:
        """Draws with the engine's sampler (backends whose capabilities set ``sampling``)."""
        raise NotImplementedError(f"backend {self.name!r} does not sample")

    @classmethod
    def clear_prepared(cls) -> None:
        """Forget every prepared model of this backend (benchmarks of the first call)."""
        with cls._prepared_lock:
            cls._prepared.clear()

    def prepared(self, structure: Structure) -> Any:
        """The cached result of :meth:`prepare` for ``structure``."""
        cls = type(self)
        with cls._prepared_lock:
            if structure in cls._prepared:
                cls._prepared.move_to_end(structure)
                return cls._prepared[structure][0]
        try:  # outside the lock: preparing a large model takes a while
            model = self.prepare(structure)
        except (ModelError, BackendError):
            raise
        except (ValueError, TypeError) as exc:
            raise ModelError(f"backend {self.name!r} rejects the model: {exc}") from exc
        except Exception as exc:  # a compiled module that does not load, a compiler error
            raise BackendError(
                f"backend {self.name!r} cannot prepare the model: {type(exc).__name__}: {exc}"
            ) from exc
        with cls._prepared_lock:
            model = cls._prepared.setdefault(structure, (model, self.prepared_bytes(structure)))[0]
            cls._prepared.move_to_end(structure)
            held = sum(size for _, size in cls._prepared.values())
            while len(cls._prepared) > 1 and (
                len(cls._prepared) > self.cache_size or held > self.cache_bytes
            ):
                held -= cls._prepared.popitem(last=False)[1][1]
        return model

    def compute_pmf_and_moments(  # type: ignore[override]
        self,
        structure: Structure,
        theta: Any,
        times: Any,
        nr_moments: int,
        *,
        jacobian: bool = False,
        hessian: bool = False,
        output: str = "density",
    ) -> PmfMoments | PmfMomentsJacobian | PmfMomentsHessian:
        theta, times, K = check_inputs(structure, theta, times, nr_moments)
        code = output_code(output)
        model = self.prepared(structure)
        outputs = empty_outputs(theta.shape[0], times.shape[0], K, structure.nr_params,
                                jacobian, hessian)  # fmt: skip
        try:
            self.fill(model, theta, times, K, outputs, code)
        except (ModelError, BackendError):
            raise
        except Exception as exc:
            raise BackendError(
                f"backend {self.name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        return as_result(outputs)
