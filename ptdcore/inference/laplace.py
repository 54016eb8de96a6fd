"""The mode of a log density and the Laplace approximation around it.

:func:`find_mode` maximises a scalar JAX function with its exact gradient and exact
Hessian (scipy's trust-region Newton method, ``trust-exact``); it is the optimiser of
``fit_mle`` and of SVGD's Laplace start. Where the Hessian is not available (a backend
with first derivatives only, or an epoch model larger than the reference backend takes
for its second derivatives), the mode is found by BFGS on the exact
gradient and the Hessian at the mode is the central difference of the exact gradient
(:data:`HESSIAN_STEP`), which the result says (``exact_hessian``).

:func:`laplace` turns the mode into the Gaussian ``N(mode, inv(-H))`` (Tierney & Kadane
1986) that SVGD starts from and uses as its metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

HESSIAN_STEP = 1e-5
"""Relative step of the central differences of the exact gradient (where no exact Hessian
exists): truncation error ~1e-10, rounding ~1e-11 of the gradient's scale."""


@dataclass(frozen=True)
class Mode:
    """The result of :func:`find_mode`."""

    x: np.ndarray
    """The maximiser."""
    value: float
    """The maximum."""
    gradient_norm: float
    """Norm of the exact gradient at ``x``."""
    gradient: np.ndarray
    """The exact gradient at ``x``."""
    hessian: np.ndarray
    """The Hessian at ``x`` (exact unless ``exact_hessian`` is False)."""
    exact_hessian: bool
    iterations: int
    message: str


def find_mode(f: Any, x0: Any, *, gtol: float = 1e-8, max_iter: int = 200) -> Mode:
    """Maximise the scalar JAX function ``f`` from ``x0`` (exact gradient and Hessian)."""
    import jax
    import jax.numpy as jnp
    from scipy.optimize import minimize

    from .quick_jit import quick_jit

    x0 = np.asarray(x0, dtype=np.float64)

    def negative(x: Any) -> Any:
        return -f(x)

    def with_gradient(x: Any) -> tuple[Any, Any]:
        value, grad = jax.value_and_grad(negative)(x)
        return grad, (value, grad)

    # value, gradient and Hessian from one compiled function (each compilation of a model
    # costs a good part of a second, one evaluation milliseconds: compiled for speed of
    # compilation, quick_jit), kept for the last point
    # (the optimiser asks for the value and gradient, then the Hessian, at one point)
    all_three = quick_jit(jax.jacfwd(with_gradient, has_aux=True))
    value_and_gradient = quick_jit(jax.value_and_grad(negative))
    last: dict[str, Any] = {}

    def derivatives(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        if "x" not in last or not np.array_equal(last["x"], x):
            H, (v, g) = all_three(jnp.asarray(x))
            last.update(x=np.array(x), out=(float(v), np.asarray(g), np.asarray(H)))
        v, g, H = last["out"]
        return v, g.copy(), H.copy()  # (the optimiser may write into what it is given)

    def first_order(x: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = value_and_gradient(x)
        return float(v), np.asarray(g)

    exact = True
    try:
        derivatives(x0)
    except NotImplementedError:  # (no second derivatives for this model)
        exact = False
    fun = (lambda x: derivatives(x)[:2]) if exact else first_order

    def gradient(x: Any) -> Any:
        return fun(x)[1]

    def hess(x: np.ndarray) -> np.ndarray:
        return derivatives(x)[2]

    options = {"gtol": gtol, "maxiter": max_iter}
    common = {"fun": fun, "x0": x0, "jac": True}
    if exact:
        result = minimize(**common, hess=hess, method="trust-exact", options=options)
        result.x = _newton_polish(derivatives, np.asarray(result.x))
        result.fun = derivatives(result.x)[0]
        H = -hess(np.asarray(result.x))
    else:
        result = minimize(**common, method="BFGS", options=options)
        H = -_difference_hessian(gradient, np.asarray(result.x))
    g = -np.asarray(gradient(result.x))
    return Mode(
        x=np.asarray(result.x, dtype=np.float64),
        value=float(-result.fun),
        gradient_norm=float(np.linalg.norm(g)),
        gradient=g,
        hessian=H,
        exact_hessian=exact,
        iterations=int(result.nit),
        message=str(result.message),
    )


POLISH_STEPS = 3
"""Newton steps on the exact gradient after the trust region stops."""


def _newton_polish(derivatives: Any, x: np.ndarray) -> np.ndarray:
    """Newton steps x - H^-1 g while they shrink the gradient and H is positive definite.

    The trust region accepts a step by the change of the value, which near the optimum is
    below the value's rounding (a log-likelihood of thousands of counts cancels to 1e-12),
    so it may stop with a gradient far above its tolerance; the gradient itself is smooth
    there, and Newton's steps on it converge quadratically."""
    _, g, H = derivatives(x)
    for _ in range(POLISH_STEPS):
        try:
            np.linalg.cholesky(H)
        except np.linalg.LinAlgError:
            break
        trial = x - np.linalg.solve(H, g)
        _, g_trial, H_trial = derivatives(trial)
        if not np.linalg.norm(g_trial) < np.linalg.norm(g):
            break
        x, g, H = trial, g_trial, H_trial
    return x


def _difference_hessian(gradient: Any, x: np.ndarray) -> np.ndarray:
    """Central differences of an exact gradient, symmetrised."""
    d = x.size
    H = np.empty((d, d))
    for j in range(d):
        h = HESSIAN_STEP * max(1.0, abs(x[j]))
        e = np.zeros(d)
        e[j] = h
        H[:, j] = (np.asarray(gradient(x + e)) - np.asarray(gradient(x - e))) / (2 * h)
    return 0.5 * (H + H.T)


@dataclass(frozen=True)
class Laplace:
    """The Gaussian ``N(mode, covariance)`` of a log density at its mode."""

    mode: np.ndarray
    covariance: np.ndarray
    """``inv(-H)``, ``H`` the Hessian of the log density at the mode."""
    factor: np.ndarray
    """Lower Cholesky factor of the covariance: ``mode + factor @ u`` for ``u ~ N(0, I)``."""
    exact_hessian: bool


def laplace(f: Any, x0: Any, *, gtol: float = 1e-8, max_iter: int = 200) -> Laplace | str:
    """The Laplace approximation of the density ``exp(f)``, or a sentence saying why there
    is none (the mode search failed or ``-H`` is not positive definite at its end)."""
    try:
        mode = find_mode(f, x0, gtol=gtol, max_iter=max_iter)
    except (FloatingPointError, ValueError, np.linalg.LinAlgError) as exc:
        return f"the mode search failed ({type(exc).__name__}: {exc})"
    if not (np.all(np.isfinite(mode.x)) and np.isfinite(mode.value)):
        return "the mode search ended at a non-finite point or value"
    if not mode.gradient_norm <= max(1e-4, 1e3 * gtol) * max(1.0, abs(mode.value)):
        return (
            f"the mode search did not converge ({mode.message}; gradient {mode.gradient_norm:.3g})"
        )
    try:
        np.linalg.cholesky(-mode.hessian)  # negative definite
    except np.linalg.LinAlgError:
        return "the Hessian at the mode is not negative definite (a flat or boundary direction)"
    covariance = np.linalg.inv(-mode.hessian)
    return Laplace(mode.x, covariance, np.linalg.cholesky(covariance), mode.exact_hessian)
