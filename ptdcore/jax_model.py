"""``ptdcore.model``: the shared JAX model over any backend."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from .callback_adapter import call_backend
from .registry import get_backend
from .structure import HasStructure, Structure, as_structure

if TYPE_CHECKING:
    from .backend import Backend


def warn_if_deprecated(backend: Backend) -> None:
    """Selecting a deprecated backend (``Backend.deprecated``) for computation warns."""
    if backend.deprecated:
        warnings.warn(backend.deprecated, DeprecationWarning, stacklevel=3)


class Model:
    """A JAX function ``model(theta, times) -> (pmf, moments)``.

    Works under ``jax.jit``, ``jax.vmap`` (over theta and/or times),
    ``jax.grad``, ``jax.jacfwd``, ``jax.jacrev`` and ``vmap(grad)``; gradients in
    theta are the backend's exact Jacobians (``jax.custom_jvp``). Times are data:
    differentiating with respect to them raises ``NotImplementedError``.

    With ``epochs=E > 1`` the model is ``model(theta, times, breaks)``: ``theta`` of
    shape ``(E, nr_params)``, one row per epoch, and ``breaks`` ``(E - 1,)`` increasing
    positive times (whole steps for discrete models); epoch 0 covers ``[0, b_0)``,
    epoch e ``[b_{e-1}, b_e)``, the last is open-ended. Gradients in theta and in the
    breaks are exact (first order; breaks of discrete models have NaN derivatives).
    Moments are those of the whole T.
    """

    def __init__(
        self,
        graph: HasStructure | Structure,
        nr_moments: int = 2,
        backend: Any = None,
        *,
        epochs: int = 1,
        _derived: bool = False,
    ) -> None:  # (_derived: made by ptdcore for this model, the user was warned already)
        from .float64 import require_float64

        require_float64("ptdcore.model")
        self.structure = as_structure(graph)
        if self.structure.epochs == 1 and epochs != 1:
            self.structure = self.structure.with_epochs(epochs)
        elif epochs not in (1, self.structure.epochs):
            raise ValueError(
                f"epochs={epochs!r} but the structure already has {self.structure.epochs} epochs"
            )
        self.epochs = self.structure.epochs
        if int(nr_moments) != nr_moments or nr_moments < 0:
            raise ValueError(f"nr_moments must be a whole number >= 0, got {nr_moments!r}")
        self.nr_moments = int(nr_moments)
        self.backend = get_backend(backend)
        if not _derived:
            warn_if_deprecated(self.backend)
        self.discrete = self.structure.discrete
        self._functions: dict[str, Any] = {}
        self._fn = self._function("density")

    def _function(self, output: str) -> Any:
        """``f(row, times) -> (output at the times, moments)``, differentiable, made once per
        output: one structure and one prepared model serve the density, cdf and sf (the
        cdf and sf carry no moments)."""
        if output not in self._functions:
            K = self.nr_moments if output == "density" else 0
            if self.backend.capabilities.differentiable:  # pure JAX: JAX differentiates it
                fn = self.backend.jax_function(self.structure, K, output)
            else:
                evaluator = self.backend.jax_evaluator(self.structure, K, output)
                if self.epochs > 1:  # (the engine has first derivatives only there)
                    second = epoch_second_derivatives(self.structure, K, output)
                    fn = _make_differentiable(evaluator, 1, second=second)
                else:
                    fn = _make_differentiable(evaluator, 2)
            self._functions[output] = fn
        return self._functions[output]

    @property
    def nr_params(self) -> int:
        """Parameters of one epoch (of the model, without epochs)."""
        return self.structure.base_params

    def __call__(self, theta: Any, times: Any, breaks: Any = None) -> tuple[Any, Any]:
        return self._evaluate("density", theta, times, breaks)

    def _evaluate(self, output: str, theta: Any, times: Any, breaks: Any) -> tuple[Any, Any]:
        import jax
        import jax.numpy as jnp

        from .float64 import require_float64

        require_float64("a ptdcore model")  # (float64 may have been turned off since)
        eager = not _traced(theta) and not _traced(times) and not _traced(breaks)
        # Eager inputs are converted with numpy: no XLA program for a dtype cast.
        xp = np if eager else jnp
        theta = self._row(xp, theta, breaks)
        _check_concrete_times(times, self.discrete)  # before jnp makes them a tracer under jit
        times = xp.asarray(times, dtype=xp.float64)
        if times.ndim != 1:
            raise ValueError(f"times must have shape (T,), got shape {times.shape}")
        if self.epochs > 1 and self.structure.rewards is not None and times.shape[0]:
            raise NotImplementedError(
                "with rewards and epochs only the moments of Y are available (pass no times); "
                "the density, cdf and sf of Y over epochs are not"
            )
        if eager:
            # No jit, vmap or grad around the call: the backend directly, the same
            # engine without tracing and compiling an XLA program.
            K = self.nr_moments if output == "density" else 0
            out = call_backend(self.backend, self.structure, theta[None, :], times, K, 0, output)
            return jax.device_put(out[0][0]), jax.device_put(out[1][0])
        return self._function(output)(theta, times)

    def _row(self, xp: Any, theta: Any, breaks: Any) -> Any:
        """The engine's parameter row: theta (P,), or theta (E, P) and breaks (E - 1,)
        with epochs; shapes checked, breaks checked where concrete."""
        theta = xp.asarray(theta, dtype=xp.float64)
        E, P = self.epochs, self.structure.base_params
        if E == 1:
            if breaks is not None:
                raise ValueError("breaks are for models with epochs (ptdcore.model(..., epochs=E))")
            if theta.shape != (P,):
                raise ValueError(
                    f"theta must have shape ({P},) for this model (use jax.vmap for batches), "
                    f"got shape {theta.shape}"
                )
            return theta
        if theta.shape != (E, P):
            raise ValueError(
                f"theta must have shape ({E}, {P}) for this model with {E} epochs (one row "
                f"per epoch; use jax.vmap for batches), got shape {theta.shape}"
            )
        if breaks is None:
            raise ValueError(f"this model has {E} epochs: pass breaks of shape ({E - 1},)")
        breaks = xp.asarray(breaks, dtype=xp.float64)
        if breaks.shape != (E - 1,):
            raise ValueError(f"breaks must have shape ({E - 1},), got shape {breaks.shape}")
        if not _traced(breaks):
            b = np.asarray(breaks)
            if not np.all(np.isfinite(b)) or np.any(np.diff(b, prepend=0.0) <= 0):
                raise ValueError(f"breaks must be finite, positive and increasing, got {b}")
            if self.discrete and np.any(b != np.floor(b)):
                raise ValueError(f"breaks of a discrete model must be whole steps, got {b}")
        return xp.concatenate([theta.reshape(-1), breaks])

    # -- distribution functions (contract section 7) ------------------------------------
    def cdf(self, theta: Any, times: Any, breaks: Any = None) -> Any:
        """``P(T <= t)`` at ``times`` (discrete: ``P(N <= n)``); relatively accurate in the
        left tail. Same shapes and transforms as the pmf (``breaks`` with epochs)."""
        return self._evaluate("cdf", theta, times, breaks)[0]

    def sf(self, theta: Any, times: Any, breaks: Any = None) -> Any:
        """``P(T > t)``, computed directly (not ``1 - cdf``): relatively accurate far into
        the right tail. Same shapes and transforms as the pmf (``breaks`` with epochs)."""
        return self._evaluate("sf", theta, times, breaks)[0]

    def quantile(self, theta: Any, q: Any, breaks: Any = None) -> Any:
        """The smallest ``t`` with ``cdf(t) >= q``, for levels ``q`` in ``[0, 1)`` (any shape).

        ``cdf(quantile(q)) = q`` to about 1e-14 relative (continuous); discrete models give
        whole numbers. ``q <= P(T = 0)`` (the atom ``1 - sum(alpha)``) gives 0. Exact
        derivatives in theta (implicit function theorem); jit/vmap/grad work. With
        epochs, ``breaks`` as for the pmf (and derivatives in them too).
        """
        import jax
        import jax.numpy as jnp

        from .quantile import check_levels, make_quantile

        check_levels(q)
        if "_quantile" not in self.__dict__:
            cdf = self._function("cdf")
            # density and mean: this model when it returns moments, else one that does
            pdf = (
                self._fn
                if self.nr_moments >= 1
                else Model(self.structure, 1, self.backend, _derived=True)._fn
            )

            def scalar(fn: Any) -> Any:  # (on the engine's row: traced here)
                return lambda row, t: fn(row, jnp.reshape(t, (1,)))[0][0]

            def mean(row: Any) -> Any:
                return pdf(row, jnp.zeros((1,)))[1][0]

            self._quantile = make_quantile(scalar(cdf), scalar(pdf), mean, self.discrete)
        q = jnp.asarray(q, dtype=jnp.float64)
        row = self._row(jnp, theta, breaks)
        flat = jax.vmap(self._quantile, in_axes=(None, 0))(row, q.reshape(-1))
        return flat.reshape(q.shape)

    def sample(
        self, theta: Any, size: Any = None, seed: int | None = None, breaks: Any = None
    ) -> np.ndarray:
        """Exact draws of ``T`` (of ``Y`` with rewards) at ``theta``, as a numpy array.

        Simulated by the engine's embedded jump chain (no time grid), in C++ threads;
        the same ``seed`` gives the same draws whatever the thread count. The model's
        backend draws them when it samples (``capabilities.sampling``), else the
        first available backend that does. ``size`` is an
        int or a shape (None: one draw, returned with shape ``()``); ``seed`` None draws
        fresh entropy. A theta at which the chain cannot be absorbed gives ``inf`` draws
        from the states concerned; an invalid theta gives NaN. With epochs, ``theta`` is
        ``(E, P)`` and ``breaks`` ``(E - 1,)``.
        """
        if self.epochs > 1 and self.structure.rewards is not None:
            raise NotImplementedError("sampling Y (rewards) over epochs is not available")
        theta = self._row(np, theta, breaks)
        shape = () if size is None else (size,) if np.ndim(size) == 0 else tuple(size)
        for s in shape:
            if isinstance(s, bool) or int(s) != s or s < 0:
                raise ValueError(
                    f"size must be a whole number >= 0 or a shape of them, got {size!r}"
                )
        shape = tuple(int(s) for s in shape)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0])
        elif isinstance(seed, bool) or int(seed) != seed or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be a whole number in [0, 2**64), got {seed!r}")
        count = int(np.prod(shape)) if shape else 1
        draws = sampling_backend(self.backend).sample(self.structure, theta, count, int(seed))
        return np.asarray(draws).reshape(shape)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by structure and settings (for multiprocessing and joblib); the backend
        by its registered name, so the receiving process uses its own."""
        return (Model, (self.structure, self.nr_moments, backend_reference(self.backend)))

    def __repr__(self) -> str:
        return (
            f"ptdcore.Model(nr_states={self.structure.nr_states}, nr_params={self.nr_params}, "
            f"nr_moments={self.nr_moments}, epochs={self.epochs}, backend={self.backend.name!r})"
        )


def sampling_backend(backend: Backend) -> Backend:
    """``backend`` when it samples, else the highest-priority available backend that does."""
    from .registry import backend_info

    if backend.capabilities.sampling:
        return backend
    for info in backend_info():  # (highest priority first)
        if info.available and info.backend_class.capabilities.sampling:
            return get_backend(info.name)
    raise NotImplementedError(
        f"backend {backend.name!r} does not sample and no available backend does "
        "(Capabilities.sampling)"
    )


def backend_reference(backend: Any) -> Any:
    """What pickles for ``backend``: its name when the registry knows it by that name,
    else the backend itself."""
    from .registry import backend_info

    names = {info.name: info.backend_class for info in backend_info()}
    return backend.name if names.get(backend.name) is type(backend) else backend


def _traced(x: Any) -> bool:
    import jax

    return isinstance(x, jax.core.Tracer)


def _check_concrete_times(times: Any, discrete: bool) -> None:
    """Raise for invalid times we can see (traced times give NaN entries instead)."""
    if _traced(times):
        return
    values = np.asarray(times, dtype=np.float64)
    if np.any(~np.isfinite(values)) or np.any(values < 0):
        raise ValueError("times must be finite and >= 0")
    if discrete and np.any(values != np.floor(values)):
        raise ValueError("times of a discrete model must be whole numbers (steps)")


def epoch_second_derivatives(structure: Structure, nr_moments: int, output: str) -> Any:
    """``second(row, times) -> (d2 output (T, P, P), d2 moments (K, P, P))`` of an epoch
    model: the reference backend's algorithm (dense exponentials per epoch, independent of
    the engine's) differentiated twice by JAX, break times included. The engine gives the
    values and first derivatives over epochs; this gives ``jax.hessian`` its second ones
    (exact up to rounding, at the reference backend's cost: dense matrices of the states,
    which it accepts up to its size limit)."""
    import jax

    function = {}

    def second(row: Any, times: Any) -> tuple[Any, Any]:
        if "f" not in function:
            try:
                function["f"] = get_backend("reference").jax_function(structure, nr_moments, output)
            except (KeyError, ValueError) as err:
                raise NotImplementedError(
                    "second derivatives over epochs come from the reference backend's JAX "
                    f"algorithm, which is not available for this model: {err}"
                ) from err
        f = function["f"]
        return jax.jacfwd(jax.jacfwd(lambda r: f(r, times)))(row)

    return second


def _make_differentiable(evaluate: Any, max_order: int = 2, second: Any = None) -> Any:
    """``fn(theta, times) -> (pmf, moments)`` with exact first and second derivatives.

    ``evaluate(theta, times, order)`` returns the outputs up to derivative ``order``
    (0: pmf, moments; 1: and their Jacobians; 2: and their Hessians). Two nested
    ``custom_jvp`` rules: ``fn``'s tangent is ``J dtheta`` with ``J`` from ``first``,
    whose own tangent (needed by ``jax.hessian``, ``jacfwd(jacrev)``, ...) is
    ``H dtheta`` from the backend's exact second derivatives, or, when ``max_order`` is
    1, from ``second(theta, times) -> (H of pmf, H of moments)`` (epochs:
    :func:`epoch_second_derivatives`). One backend call per evaluation at each order.
    Third derivatives are not available, nor second ones when ``max_order`` is 1 and no
    ``second`` is given (``NotImplementedError``).
    """
    import jax
    import jax.numpy as jnp
    from jax.custom_derivatives import SymbolicZero

    def no_time_tangent(dtimes: Any) -> None:
        if not isinstance(dtimes, SymbolicZero):
            raise NotImplementedError(
                "ptdcore models are not differentiable with respect to times "
                "(they are data); differentiate with respect to theta"
            )

    @jax.custom_jvp
    def first(theta: Any, times: Any) -> tuple[Any, ...]:
        return tuple(evaluate(theta, times, 1))  # pmf, moments, dpmf, dmoments

    def first_jvp(primals: Any, tangents: Any) -> Any:
        theta, times = primals
        dtheta, dtimes = tangents
        no_time_tangent(dtimes)
        if max_order >= 2:
            pmf, moments, dpmf, dmoments, d2pmf, d2moments = evaluate(theta, times, 2)
        elif second is not None:
            pmf, moments, dpmf, dmoments = evaluate(theta, times, 1)
            d2pmf, d2moments = second(theta, times)
        else:
            raise NotImplementedError(
                "second derivatives are not available for this output (first order only)"
            )
        out = (pmf, moments, dpmf, dmoments)
        if isinstance(dtheta, SymbolicZero):
            return out, tuple(jnp.zeros_like(a) for a in out)
        return out, (dpmf @ dtheta, dmoments @ dtheta, d2pmf @ dtheta, d2moments @ dtheta)

    first.defjvp(first_jvp, symbolic_zeros=True)

    @jax.custom_jvp
    def fn(theta: Any, times: Any) -> tuple[Any, Any]:
        pmf, moments = evaluate(theta, times, 0)
        return pmf, moments

    def fn_jvp(primals: Any, tangents: Any) -> Any:
        theta, times = primals
        dtheta, dtimes = tangents
        no_time_tangent(dtimes)
        pmf, moments, dpmf, dmoments = first(theta, times)
        if isinstance(dtheta, SymbolicZero):
            return (pmf, moments), (jnp.zeros_like(pmf), jnp.zeros_like(moments))
        return (pmf, moments), (dpmf @ dtheta, dmoments @ dtheta)

    fn.defjvp(fn_jvp, symbolic_zeros=True)
    return fn


def model(
    graph: HasStructure | Structure, nr_moments: int = 2, backend: Any = None, epochs: int = 1
) -> Model:
    """The JAX model ``model(theta, times) -> (pmf, moments)`` of a graph.

    Parameters
    ----------
    graph
        A :class:`ptdcore.Graph` (or its structure); discrete or continuous comes from it.
    nr_moments
        Number of raw moments ``E[T], ..., E[T^K]`` returned.
    backend
        Backend name or instance; None selects ``PTDCORE_BACKEND`` or the fastest available.
    epochs
        ``E > 1``: piecewise-constant parameters in time, ``model(theta (E, P), times,
        breaks (E - 1,))`` (contract section 8).
    """
    return Model(graph, nr_moments=nr_moments, backend=backend, epochs=epochs)
