"""Maximum likelihood with exact gradients, exact Hessians and standard errors.

``fit_mle(model, data, theta0)`` maximises ``sum log pmf(data | theta)`` by scipy's
trust-region Newton method (``trust-exact``) with the model's exact gradient and
Hessian, on ``log(theta)`` for positive parameters. Standard errors come from the
observed information, the exact Hessian of the log-likelihood at the estimate on the
natural scale: ``cov = inv(-H)``, ``se = sqrt(diag(cov))``.

A positive parameter whose estimate runs into its bound 0 (the likelihood still increases
toward it: the score on the natural scale is negative and worth more than
:data:`BOUND_SCORE` log-likelihood units over one marginal standard deviation) is
reported in ``at_bound``; its standard error and covariance entries are NaN (the Wald
theory does not hold there), the others come from the information of the free parameters
alone, and a warning names it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BOUND_SCORE = 1e-3
"""Log-likelihood gain over one marginal standard deviation toward 0 above which a
positive parameter counts as at its bound (an interior optimum has score 0)."""


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


def fit_mle(
    model: Any,
    data: Any,
    theta0: Any,
    *,
    positive: bool = True,
    param_names: Any = None,
    gtol: float = 1e-8,
    max_iter: int = 200,
    backend: Any = None,
) -> MLEResult:
    """The maximum-likelihood estimate of theta with standard errors.

    Parameters
    ----------
    model
        A :class:`ptdcore.Graph` (or Structure) or a ptdcore model.
    data
        Observed values of ``T`` (or ``Y`` with rewards).
    theta0
        Starting point, shape ``(nr_params,)``.
    positive
        Fit ``log(theta)`` (positive parameters); False fits theta directly.
    param_names
        Names used by :meth:`MLEResult.summary`.
    gtol
        Convergence: gradient norm on the fitted scale, relative to ``max(1, |loglik|)``.
    """
    import jax
    import jax.numpy as jnp

    from ..float64 import require_float64
    from ..graph import Graph
    from ..jax_model import Model
    from ..structure import Structure
    from .laplace import find_mode
    from .likelihood import (
        iid_loglik,
        observations,
        on_fitted_scale,
        resolve_model,
        zero_density_observations,
    )

    require_float64("ptdcore.fit_mle")
    if not isinstance(model, Graph | Structure | Model):
        raise TypeError(f"fit_mle needs a ptdcore Graph, Structure or model, got {type(model)}")
    fn, has_moments = resolve_model(model, 0, backend)
    x = observations(data)
    theta0 = np.asarray(theta0, dtype=np.float64)
    P = fn.nr_params
    if theta0.shape != (P,):
        raise ValueError(f"theta0 must have shape ({P},), got {theta0.shape}")
    if positive and np.any(theta0 <= 0):
        raise ValueError(f"theta0 must be positive (positive=True), got {theta0.tolist()}")
    names = [f"theta[{j}]" for j in range(P)] if param_names is None else list(param_names)
    if len(names) != P:
        raise ValueError(f"param_names has {len(names)} names for {P} parameters")
    bad = zero_density_observations(fn, has_moments, theta0, x)
    if bad.size:
        raise ValueError(
            f"data[{bad[0]}] = {float(x[bad[0]])!r} has zero (or non-finite) density at theta0"
        )
    loglik = iid_loglik(fn, has_moments, x)
    on_scale = on_fitted_scale(loglik, positive)

    z0 = np.log(theta0) if positive else theta0
    result = find_mode(on_scale, z0, gtol=gtol, max_iter=max_iter)
    theta = np.exp(result.x) if positive else np.asarray(result.x)
    H = np.asarray(jax.hessian(loglik)(jnp.asarray(theta)))  # natural scale
    score = np.asarray(jax.grad(loglik)(jnp.asarray(theta)))
    at_bound = _at_lower_bound(score, H) if positive else np.zeros(P, dtype=bool)
    free = np.flatnonzero(~at_bound)
    cov = np.full((P, P), np.nan)
    se = np.full(P, np.nan)
    if at_bound.any():
        warnings.warn(
            "estimate at its bound 0: "
            + ", ".join(f"{names[j]} = {theta[j]:.3g}" for j in np.flatnonzero(at_bound))
            + " (the likelihood still increases toward 0); their standard errors are NaN and "
            "the others are conditional on them",
            RuntimeWarning,
            stacklevel=2,
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
            stacklevel=2,
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


def _at_lower_bound(score: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Parameters whose likelihood still rises toward 0: negative natural-scale score worth
    more than :data:`BOUND_SCORE` over one marginal standard deviation ``1/sqrt(-H_jj)``."""
    curvature = -np.diag(H)
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.where(curvature > 0, 1.0 / np.sqrt(np.abs(curvature)), np.inf)
    return (score < 0) & (-score * sd > BOUND_SCORE)
