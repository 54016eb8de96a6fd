"""Where SVGD's particles start, and the metric its steps use.

Strategies (``SVGD(init=...)``), on the fitted scale ``z`` (``log theta`` for positive
parameters):

- ``"laplace"`` (the default): the mode ``z*`` of the target density in ``z`` (exact
  gradient and Hessian, :func:`ptdcore.inference.laplace.find_mode`) and the Laplace
  covariance ``Sigma = inv(-H)``; particles at ``z* + L q``, ``L L^T = Sigma`` and ``q``
  evenly spread standard normal points (:func:`normal_points`). The steps are taken in
  coordinates scaled by the Laplace standard deviations (``precondition="diagonal"``,
  the default), whitened by the whole covariance (``"full"``), or on ``z`` itself
  (``None``); see docs/svgd.md. Where there is no Laplace approximation (the mode search fails, or
  ``-H`` is not positive definite), the start falls back to a moment-matching estimate
  (:func:`moment_matching`) with unit spread, or to ``"spread"``, with a warning naming
  the reason.
- ``"spread"``: the old start, ``z ~ Normal(log(init_scale), 1)`` independently, plain
  steps in ``z``.
- a callable ``init(n_particles, theta_dim, seed) -> z`` of shape
  ``(n_particles, theta_dim)``: particles where it puts them, plain steps in ``z``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .laplace import Laplace, laplace

STRATEGIES = ("laplace", "spread")
METRICS = ("diagonal", "full", None)


@dataclass(frozen=True)
class Start:
    """Initial particles ``u`` (n, d) and the affine map ``z = center + u @ factor.T`` from
    the coordinates the steps are taken in to the fitted scale."""

    u: np.ndarray
    center: np.ndarray
    factor: np.ndarray
    description: str
    """What was done, for the diagnostics (``init``)."""
    laplace: Laplace | None = None

    @property
    def preconditioned(self) -> bool:
        return not np.array_equal(self.factor, np.eye(self.factor.shape[0]))

    def to_fitted(self, u: np.ndarray) -> np.ndarray:
        """``z`` of particles ``u`` (any leading shape)."""
        return self.center + u @ self.factor.T


def check_strategy(init: Any, precondition: Any = "diagonal") -> None:
    """ValueError for an ``init`` that is neither a known strategy nor a callable, or a
    ``precondition`` that is not one of :data:`METRICS`."""
    if not (callable(init) or init in STRATEGIES):
        raise ValueError(
            f"init must be one of {STRATEGIES} or a callable init(n_particles, theta_dim, "
            f"seed) -> z, got {init!r}"
        )
    if precondition not in METRICS:
        raise ValueError(f"precondition must be one of {METRICS}, got {precondition!r}")


def normal_points(n: int, d: int, seed: int) -> np.ndarray:
    """``n`` points of ``N(0, I_d)`` spread evenly: a Latin hypercube (each coordinate has
    one point in each of ``n`` equal-probability strata, in random order) through the
    normal quantile function, then (with ``n > d``) centred and whitened so that their
    mean is exactly 0 and their covariance exactly I: started at the Laplace approximation,
    the particles have its mean and covariance, which SVGD's fixed point for a Gaussian
    target keeps; reproducible from ``seed``."""
    from scipy.special import ndtri

    rng = np.random.default_rng(seed)
    u = (np.argsort(rng.random((n, d)), axis=0) + rng.random((n, d))) / n
    q = ndtri(u)
    if n <= d:
        return q
    q = q - q.mean(axis=0)
    lower = np.linalg.cholesky(np.atleast_2d(np.cov(q.T, bias=True)))
    return np.linalg.solve(lower, q.T).T


def spread_points(n: int, d: int, seed: int, center: float) -> np.ndarray:
    """The old start: ``center + Normal(0, 1)`` draws from JAX's PRNG with ``seed``."""
    import jax
    import jax.numpy as jnp

    noise = jax.random.normal(jax.random.PRNGKey(seed), (n, d), dtype=jnp.float64)
    return center + np.asarray(noise)


def moment_matching(
    moments_of: Callable[[Any], Any], targets: np.ndarray, z0: np.ndarray, positive: bool
) -> np.ndarray | str:
    """``z`` whose first ``len(targets)`` model moments match ``targets`` in log (least
    squares, exact Jacobian), or a sentence saying why not."""
    import jax
    import jax.numpy as jnp
    from scipy.optimize import least_squares

    from .quick_jit import quick_jit

    log_targets = np.log(targets)

    def residual(z: Any) -> Any:
        theta = jnp.exp(z) if positive else z
        return jnp.log(moments_of(theta)[: targets.size]) - log_targets

    r = quick_jit(residual)
    jac = quick_jit(jax.jacfwd(residual))
    try:
        result = least_squares(lambda z: np.asarray(r(z)), z0, jac=lambda z: np.asarray(jac(z)))
    except (ValueError, FloatingPointError) as exc:
        return f"moment matching failed ({exc})"
    if not (result.success and np.all(np.isfinite(result.x))):
        return f"moment matching failed ({result.message})"
    return np.asarray(result.x)


def choose_start(
    strategy: Any,
    log_density: Callable[[Any], Any],
    n: int,
    d: int,
    seed: int,
    center: float,
    precondition: str | None,
    moments: Callable[[], tuple[Callable[[Any], Any], np.ndarray] | None] | None,
    positive: bool,
) -> Start:
    """The start of a run (see the module doc). ``center`` is the old start's centre on
    the fitted scale; ``moments``, called only for the fallback, gives the model's
    moments as a function of theta and the sample moments (or None)."""
    eye = np.eye(d)
    zero = np.zeros(d)
    if callable(strategy):
        z = np.asarray(strategy(n, d, seed), dtype=np.float64)
        if z.shape != (n, d) or not np.all(np.isfinite(z)):
            raise ValueError(
                f"init(n_particles, theta_dim, seed) must return finite values of shape "
                f"({n}, {d}), got shape {z.shape}"
            )
        return Start(z, zero, eye, "custom")
    spread = spread_points(n, d, seed, center)
    if strategy == "spread":
        return Start(spread, zero, eye, "spread")
    z0 = _finite_start(log_density, np.full(d, center), spread)
    approx = laplace(log_density, z0) if z0 is not None else "no finite log density to start from"
    q = normal_points(n, d, seed)
    if isinstance(approx, Laplace):
        kind = "exact Hessian" if approx.exact_hessian else "differenced exact gradient"
        z = approx.mode + q @ approx.factor.T
        if precondition is None:
            return Start(z, zero, eye, f"laplace ({kind})", approx)
        factor = approx.factor
        if precondition == "diagonal":
            factor = np.diag(np.sqrt(np.diag(approx.covariance)))
        u = np.linalg.solve(factor, (z - approx.mode).T).T
        return Start(u, approx.mode, factor, f"laplace ({kind})", approx)
    reason = approx
    pair = moments() if moments is not None and z0 is not None else None
    if pair is not None:
        matched = moment_matching(pair[0], pair[1], z0, positive)
        if not isinstance(matched, str):
            warnings.warn(
                f"SVGD: no Laplace start ({reason}); particles start around the "
                "moment-matching estimate with unit spread, and steps are not preconditioned",
                RuntimeWarning,
                stacklevel=4,
            )
            return Start(matched + q, zero, eye, f"moments ({reason})")
        reason += "; " + matched
    warnings.warn(
        f"SVGD: no Laplace start ({reason}); particles start spread around init_scale "
        "(init='spread'), and steps are not preconditioned",
        RuntimeWarning,
        stacklevel=4,
    )
    return Start(spread, zero, eye, f"spread ({reason})")


def _finite_start(
    log_density: Callable[[Any], Any], z0: np.ndarray, candidates: np.ndarray
) -> np.ndarray | None:
    """``z0`` where the log density is finite there, else the candidate with the highest
    finite log density, else None."""
    from .quick_jit import quick_jit

    f = quick_jit(log_density)
    if math.isfinite(float(f(z0))):
        return z0
    values = np.array([float(f(z)) for z in candidates])
    finite = np.isfinite(values)
    return candidates[np.argmax(np.where(finite, values, -np.inf))] if finite.any() else None
