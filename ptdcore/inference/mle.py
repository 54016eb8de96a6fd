"""Maximum likelihood with exact gradients, exact Hessians and standard errors.

``fit_mle(model, data, theta0)`` maximises ``sum log pmf(data | theta)``;
``fit_mle(loglik, theta0, bounds=...)`` maximises any scalar JAX log-likelihood (contract
section 13). Both use scipy's trust-region Newton method (``trust-exact``) with the exact
gradient and Hessian (:func:`ptdcore.inference.laplace.find_mode`) on unbounded
coordinates: ``theta = low + exp(z)`` for a lower bound, ``high - exp(z)`` for an upper
one, ``low + (high - low) / (1 + exp(-z))`` for both (the model form's positive
parameters are bounds ``(0, None)``). Standard errors come from the observed information,
the exact Hessian of the log-likelihood at the estimate on the natural scale:
``cov = inv(-H)``, ``se = sqrt(diag(cov))``.

A parameter whose estimate runs into a bound (the likelihood still increases toward it:
the score on the natural scale points at the bound and is worth more than
:data:`BOUND_SCORE` log-likelihood units over one marginal standard deviation) is
reported in ``at_bound``; its standard error and covariance entries are NaN (the Wald
theory does not hold there), the others come from the information of the free parameters
alone, and a warning names it.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BOUND_SCORE = 1e-3
"""Log-likelihood gain over one marginal standard deviation toward a finite bound above
which a parameter counts as at that bound (an interior optimum has score 0)."""


@dataclass(frozen=True)
class MLEResult:
    """A maximum-likelihood fit."""

    theta: np.ndarray
    """The estimate (natural scale)."""
    se: np.ndarray
    """Standard errors from the observed information (NaN when it is not positive definite)."""
    cov: np.ndarray
    """Asymptotic covariance ``inv(-H)``."""
    loglik: float
    """The maximised log-likelihood."""
    converged: bool
    """The gradient on the fitted scale is below ``gtol * max(1, |loglik|)`` at the end
    (scipy's trust-region method may stop with a message at that rounding level)."""
    iterations: int
    message: str
    param_names: list[str] = field(default_factory=list)
    at_bound: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """Per parameter: the estimate lies on its bound (0 for a positive parameter); its
    standard error is NaN."""
    loglik_of_data: Any = field(default=None, repr=False, compare=False)
    """``loglik(theta, observed)`` when the fit was given ``observed=`` (for
    :meth:`godambe`)."""

    def godambe(self, bootstrap_observations: Any, loglik: Any = None) -> np.ndarray:
        """Composite-likelihood (Godambe, sandwich) standard errors from bootstrapped data.

        ``cov = H^-1 J H^-1`` with ``H`` the observed information at the estimate and
        ``J`` the covariance of the score ``grad loglik(theta_hat, b)`` over the
        bootstrapped observations ``b`` (Coffman et al. 2016, as dadi and moments compute
        it); the SFS's sites are not independent, so these are the honest errors.

        Parameters
        ----------
        bootstrap_observations : sequence of observed data (e.g. spectra), at least two
        loglik : callable, optional
            ``loglik(theta, observed)``; default: the one given to ``fit_mle`` with
            ``observed=``.

        Returns
        -------
        GodambeErrors
            Standard errors (an array; NaN for parameters at a bound), the sandwich
            covariance as its ``.cov``.
        """
        import jax
        import jax.numpy as jnp

        fn = self.loglik_of_data if loglik is None else loglik
        if fn is None:
            raise ValueError(
                "godambe needs loglik(theta, observed): pass loglik=, or fit with "
                "fit_mle(loglik, theta0, observed=data)"
            )
        boots = list(bootstrap_observations)
        if len(boots) < 2:
            raise ValueError(f"godambe needs at least two bootstrapped data sets, got {len(boots)}")
        theta = jnp.asarray(self.theta)
        # each data set closed over, not traced: it may be a masked array
        scores = np.array([np.asarray(jax.grad(lambda t, b=b: fn(t, b))(theta)) for b in boots])
        if not np.all(np.isfinite(scores)):
            raise ValueError("a bootstrapped data set gives a non-finite score at the estimate")
        free = np.flatnonzero(~self.at_bound) if self.at_bound.size else np.arange(theta.size)
        J = np.atleast_2d(np.cov(scores[:, free], rowvar=False))
        H_inv = self.cov[np.ix_(free, free)]  # inv(-H) of the free parameters
        cov = np.full((theta.size, theta.size), np.nan)
        cov[np.ix_(free, free)] = H_inv @ J @ H_inv
        var = np.diag(cov)
        if np.any(var[free] <= 0):
            warnings.warn(
                "the Godambe variance is not positive for "
                + ", ".join(self.param_names[j] for j in free if not var[j] > 0)
                + " (the observed information is ill-conditioned there: a direction the data "
                "do not identify); their standard errors are NaN",
                RuntimeWarning,
                stacklevel=2,
            )
        return GodambeErrors(np.sqrt(np.where(var > 0, var, np.nan)), cov)

    @property
    def estimate(self) -> np.ndarray:
        """The estimate (contract section 13's name of :attr:`theta`)."""
        return self.theta

    @property
    def stderr(self) -> np.ndarray:
        """Standard errors (contract section 13's name of :attr:`se`)."""
        return self.se

    @property
    def covariance(self) -> np.ndarray:
        """Asymptotic covariance (contract section 13's name of :attr:`cov`)."""
        return self.cov

    def summary(self) -> str:
        """A short table: estimate, standard error and a 95 % Wald interval per parameter."""
        width = max(6, *(len(n) for n in self.param_names))
        lines = [f"{'param':>{width}} {'estimate':>12} {'se':>12} {'95% Wald':>27}"]
        bound = self.at_bound if self.at_bound.size else np.zeros(len(self.theta), dtype=bool)
        for name, t, s, b in zip(self.param_names, self.theta, self.se, bound, strict=True):
            lo, hi = t - 1.96 * s, t + 1.96 * s
            interval = f"{'at its bound: no interval':>27}" if b else f"[{lo:>11.5g}, {hi:>11.5g}]"
            lines.append(f"{name:>{width}} {t:>12.6g} {s:>12.4g} {interval}")
        lines.append(f"log-likelihood {self.loglik:.6f}; converged: {self.converged}")
        return "\n".join(lines)


class GodambeErrors(np.ndarray):
    """Godambe standard errors (an array) with the sandwich covariance as ``.cov``."""

    cov: np.ndarray

    def __new__(cls, se: np.ndarray, cov: np.ndarray) -> GodambeErrors:
        out = np.asarray(se).view(cls)
        out.cov = cov
        return out

    def __array_finalize__(self, obj: Any) -> None:
        self.cov = getattr(obj, "cov", None)


def fit_mle(
    model: Any,
    data: Any = None,
    theta0: Any = None,
    *,
    bounds: Any = None,
    positive: bool | None = None,
    param_names: Any = None,
    gtol: float = 1e-8,
    max_iter: int = 200,
    backend: Any = None,
    observed: Any = None,
) -> MLEResult:
    """The maximum-likelihood estimate of theta with standard errors.

    Two forms: ``fit_mle(model, data, theta0)`` for observed values of ``T`` under a
    ptdcore model, and ``fit_mle(loglik, theta0, bounds=None)`` for any scalar JAX
    log-likelihood ``loglik(theta)`` (an SFS likelihood, a sum over loci, ...).

    Parameters
    ----------
    model
        A :class:`ptdcore.Graph` (or Structure) or a ptdcore model; or a log-likelihood.
    data
        Observed values of ``T`` (or ``Y`` with rewards); with a log-likelihood, this
        place holds ``theta0``.
    theta0
        Starting point, shape ``(nr_params,)``, inside the bounds.
    bounds
        One ``(low, high)`` per parameter, ``None`` for an open side (scipy's form); None:
        every parameter open (log-likelihood form) or positive (model form).
    positive
        Model form: fit ``log(theta)`` (default True, the bounds ``(0, None)``); False
        fits theta directly. Not with ``bounds``.
    param_names
        Names used by :meth:`MLEResult.summary`.
    gtol
        Convergence: gradient norm on the fitted scale, relative to ``max(1, |loglik|)``.
    observed
        Log-likelihood form: the data, so that ``loglik(theta, observed)`` is maximised
        and :meth:`MLEResult.godambe` can score bootstrapped data the same way.
    """
    from ..float64 import require_float64
    from ..graph import Graph
    from ..jax_model import Model
    from ..structure import Structure

    require_float64("ptdcore.fit_mle")
    if isinstance(model, Graph | Structure | Model):
        if observed is not None:
            raise TypeError(
                "observed= belongs to the log-likelihood form; the model form takes data"
            )
        loglik, theta0, bounds = _model_form(model, data, theta0, bounds, positive, backend)
    elif callable(model):
        if theta0 is not None and data is not None:
            raise TypeError("fit_mle(loglik, theta0, bounds=...) takes no data: loglik is whole")
        if positive is not None or backend is not None:
            raise TypeError("positive= and backend= belong to the model form; pass bounds=")
        loglik, theta0 = model, np.asarray(data if theta0 is None else theta0, dtype=np.float64)
        if observed is not None:
            of_data = model
            loglik = lambda theta: of_data(theta, observed)  # noqa: E731
        if theta0.ndim != 1:
            raise ValueError(f"theta0 must have shape (P,), got shape {theta0.shape}")
    else:
        raise TypeError(
            "fit_mle needs a ptdcore Graph, Structure or model (with data), or a JAX "
            f"log-likelihood of theta; got {type(model).__name__}"
        )
    P = theta0.size
    names = [f"theta[{j}]" for j in range(P)] if param_names is None else list(param_names)
    if len(names) != P:
        raise ValueError(f"param_names has {len(names)} names for {P} parameters")
    result = _fit(loglik, theta0, Bounds.of(bounds, theta0, names), names, gtol, max_iter)
    if observed is not None:
        result = dataclasses.replace(result, loglik_of_data=model)
    return result


def _model_form(
    model: Any, data: Any, theta0: Any, bounds: Any, positive: bool | None, backend: Any
) -> tuple[Any, np.ndarray, Any]:
    """The i.i.d. log-likelihood of ``data``, ``theta0`` checked, and the bounds."""
    from .likelihood import iid_loglik, observations, resolve_model, zero_density_observations

    if bounds is not None and positive is not None:
        raise TypeError("pass bounds= or positive=, not both")
    fn, has_moments = resolve_model(model, 0, backend)
    x = observations(data)
    theta0 = np.asarray(theta0, dtype=np.float64)
    P = fn.nr_params
    if theta0.shape != (P,):
        raise ValueError(f"theta0 must have shape ({P},), got {theta0.shape}")
    if bounds is None:
        if positive is None or positive:
            if np.any(theta0 <= 0):
                raise ValueError(f"theta0 must be positive (positive=True), got {theta0.tolist()}")
            bounds = [(0.0, None)] * P
        else:
            bounds = [(None, None)] * P
    bad = zero_density_observations(fn, has_moments, theta0, x)
    if bad.size:
        raise ValueError(
            f"data[{bad[0]}] = {float(x[bad[0]])!r} has zero (or non-finite) density at theta0"
        )
    return iid_loglik(fn, has_moments, x), theta0, bounds


@dataclass(frozen=True)
class Bounds:
    """Per parameter ``low <= theta <= high`` (``-inf``/``inf`` for an open side) and the
    map from unbounded coordinates ``z`` to theta."""

    low: np.ndarray
    high: np.ndarray

    @staticmethod
    def of(bounds: Any, theta0: np.ndarray, names: list[str]) -> Bounds:
        P = theta0.size
        pairs = [(None, None)] * P if bounds is None else list(bounds)
        if len(pairs) != P:
            raise ValueError(f"bounds has {len(pairs)} pairs for {P} parameters")
        low = np.array([-np.inf if p[0] is None else float(p[0]) for p in pairs])
        high = np.array([np.inf if p[1] is None else float(p[1]) for p in pairs])
        for j in range(P):
            if not low[j] < high[j]:
                raise ValueError(f"bounds of {names[j]}: low {low[j]} is not below high {high[j]}")
            if not low[j] < theta0[j] < high[j]:
                raise ValueError(
                    f"theta0 of {names[j]} = {float(theta0[j])!r} must lie strictly inside its "
                    f"bounds ({low[j]}, {high[j]})"
                )
        return Bounds(low, high)

    @property
    def open(self) -> bool:
        """No finite bound: the fitted coordinates are theta itself."""
        return not (np.isfinite(self.low).any() or np.isfinite(self.high).any())

    def to_theta(self, z: Any) -> Any:
        """theta of the unbounded coordinates ``z`` (JAX in, JAX out; a numpy array in,
        numpy out, without dispatching JAX operations)."""
        if isinstance(z, np.ndarray):
            from scipy.special import expit as sigmoid

            xp = np
        else:
            import jax.numpy as xp
            from jax.nn import sigmoid

        lower, upper = np.isfinite(self.low), np.isfinite(self.high)
        lo = xp.asarray(np.where(lower, self.low, 0.0))
        hi = xp.asarray(np.where(upper, self.high, 0.0))
        zb = xp.where(lower | upper, z, 0.0)  # (no exp of an open coordinate's value)
        e = xp.exp(zb)
        both = lo + (hi - lo) * sigmoid(zb)
        one_sided = xp.where(lower, lo + e, hi - e)
        return xp.where(lower & upper, both, xp.where(lower | upper, one_sided, z))

    def to_z(self, theta: np.ndarray) -> np.ndarray:
        lower, upper = np.isfinite(self.low), np.isfinite(self.high)
        with np.errstate(divide="ignore", invalid="ignore"):
            both = np.log((theta - self.low) / (self.high - theta))
            return np.where(
                lower & upper, both,
                np.where(lower, np.log(theta - self.low),
                         np.where(upper, np.log(self.high - theta), theta)),
            )  # fmt: skip


def _fit(
    loglik: Any, theta0: np.ndarray, bounds: Bounds, names: list[str], gtol: float, max_iter: int
) -> MLEResult:
    """Maximise on the unbounded coordinates; errors from the natural-scale Hessian."""
    import jax
    import jax.numpy as jnp

    from .laplace import find_mode
    from .quick_jit import quick_jit

    P = theta0.size
    result = find_mode(lambda z: loglik(bounds.to_theta(z)), bounds.to_z(theta0), gtol=gtol,
                       max_iter=max_iter)  # fmt: skip
    theta = bounds.to_theta(np.asarray(result.x, dtype=np.float64))
    if bounds.open and result.exact_hessian:  # z is theta: the mode's own derivatives
        H, score = result.hessian, result.gradient
    else:  # natural scale (exact at a bound, where the chain rule would divide by ~0)
        score, H = quick_jit(lambda t: (jax.grad(loglik)(t), jax.hessian(loglik)(t)))(
            jnp.asarray(theta)
        )
        score, H = np.asarray(score), np.asarray(H)
    at_bound = _at_bound(score, H, bounds)
    free = np.flatnonzero(~at_bound)
    cov = np.full((P, P), np.nan)
    se = np.full(P, np.nan)
    if at_bound.any():
        warnings.warn(
            "estimate at its bound: "
            + ", ".join(f"{names[j]} = {theta[j]:.3g}" for j in np.flatnonzero(at_bound))
            + " (the likelihood still increases toward the bound); their standard errors are "
            "NaN and the others are conditional on them",
            RuntimeWarning,
            stacklevel=3,
        )
    try:
        info = -H[np.ix_(free, free)]
        np.linalg.cholesky(info)  # positive definite information
        cov[np.ix_(free, free)] = np.linalg.inv(info)
        se[free] = np.sqrt(np.diag(cov)[free])
    except np.linalg.LinAlgError:
        warnings.warn(
            "the observed information -H is not positive definite at the estimate: standard "
            "errors are NaN (a boundary or flat direction; check the model's identifiability)",
            RuntimeWarning,
            stacklevel=3,
        )
    converged = result.gradient_norm <= gtol * max(1.0, abs(result.value))
    return MLEResult(
        theta=theta,
        se=se,
        cov=cov,
        loglik=result.value,
        converged=converged,
        iterations=result.iterations,
        message=result.message,
        param_names=names,
        at_bound=at_bound,
    )


def _at_bound(score: np.ndarray, H: np.ndarray, bounds: Bounds) -> np.ndarray:
    """Parameters whose likelihood still rises toward a finite bound: a natural-scale score
    pointing at it, worth more than :data:`BOUND_SCORE` over one marginal standard
    deviation ``1/sqrt(-H_jj)`` (an interior optimum has score 0)."""
    curvature = -np.diag(H)
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.where(curvature > 0, 1.0 / np.sqrt(np.abs(curvature)), np.inf)
    strong = np.abs(score) * sd > BOUND_SCORE
    toward_low = (score < 0) & np.isfinite(bounds.low)
    toward_high = (score > 0) & np.isfinite(bounds.high)
    return strong & (toward_low | toward_high)
