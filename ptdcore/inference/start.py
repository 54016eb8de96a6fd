"""Where SVGD's particles start, and the metric its steps use.

Strategies (``SVGD(init=...)``), on the fitted scale ``z`` (``log theta`` for positive
parameters):

- ``"laplace"`` (the default): the mode ``z*`` of the target density in ``z`` (exact
  gradient and Hessian, :func:`ptdcore.inference.laplace.find_mode`) and the Laplace
  covariance ``Sigma = inv(-H)``; particles at ``z* + L q``, ``L L^T = Sigma`` and ``q``
  evenly spread standard normal points (:func:`normal_points`). The steps are taken in
  coordinates whitened by the whole covariance (``precondition="full"``), scaled by its
  standard deviations (``"diagonal"``), or on ``z`` itself (``None``); the default
  ``"auto"`` whitens where the Laplace approximation stands and scales where the
  importance start replaced it; see docs/svgd.md. Where the Laplace approximation is poor at its own
  particles (:func:`importance_start`), they are drawn by importance sampling instead,
  and its mean and covariance set the metric. Where there is no Laplace approximation
  (the mode search fails, or ``-H`` is not positive definite), the start falls back to a
  moment-matching estimate (:func:`moment_matching`) with unit spread, or to
  ``"spread"``, with a warning naming the reason.
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
METRICS = ("auto", "diagonal", "full", None)


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


def check_strategy(init: Any, precondition: Any = "auto") -> None:
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
    from .quick_jit import quick_jit

    density = quick_jit(log_density)  # (one point at a time: the start's few evaluations)
    z0 = _finite_start(density, np.full(d, center), spread)
    approx = laplace(log_density, z0) if z0 is not None else "no finite log density to start from"
    q = normal_points(n, d, seed)
    if isinstance(approx, Laplace):
        kind = "exact Hessian" if approx.exact_hessian else "differenced exact gradient"
        z = approx.mode + q @ approx.factor.T
        center, covariance, lower = approx.mode, approx.covariance, approx.factor
        how = f"laplace ({kind})"
        checked = importance_start(log_density, density, approx, q, seed)
        if isinstance(checked, str):
            warnings.warn(
                f"SVGD: the Laplace approximation is a poor start here and {checked}; "
                "particles start from it anyway",
                RuntimeWarning,
                stacklevel=4,
            )
        elif checked is not None:
            z, center, covariance, lower = (
                checked.z,
                checked.mean,
                checked.covariance,
                checked.factor,
            )
            how = f"importance ({checked.description}; laplace by {kind})"
        if precondition is None:
            return Start(z, zero, eye, how, approx)
        if precondition == "auto":  # whitened where the Laplace approximation stands
            precondition = "full" if checked is None else "diagonal"
        factor = lower
        if precondition == "diagonal":
            factor = np.diag(np.sqrt(np.diag(covariance)))
        u = np.linalg.solve(factor, (z - center).T).T
        return Start(u, center, factor, how, approx)
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


LAPLACE_LOG_WEIGHT_SD = 0.5
"""The Laplace start stands where the log density at its particles differs from the
Gaussian's by less than this (standard deviation over the particles of the log ratio);
else the start is drawn by importance sampling (:func:`importance_start`)."""

IMPORTANCE_DRAWS = 2000
"""Proposal draws per round of :func:`importance_start`."""

IMPORTANCE_MIN_ESS = 50.0
"""The effective sample size of the last round below which the importance start gives
up (a warning, and the Laplace start)."""


@dataclass(frozen=True)
class ImportanceStart:
    z: np.ndarray
    mean: np.ndarray
    covariance: np.ndarray
    factor: np.ndarray
    """Lower Cholesky factor of ``covariance``."""
    description: str


def importance_start(
    log_density: Callable[[Any], Any],
    density: Callable[[Any], Any],
    approx: Laplace,
    q: np.ndarray,
    seed: int,
) -> ImportanceStart | str | None:
    """Particles drawn from the target by importance sampling where the Laplace
    approximation is poor; None where it is good; a sentence where sampling failed.
    ``density`` is ``log_density`` compiled for one point (the check's few
    evaluations); the sampling rounds compile ``log_density`` for a batch.

    The check: the log density at the Laplace particles ``mode + L q`` against the
    Gaussian's, ``log w = f(z) + |q|^2 / 2``; it stands where ``sd(log w)`` is at most
    :data:`LAPLACE_LOG_WEIGHT_SD`. A weakly identified parameter (a migration rate whose
    likelihood flattens once the demes mix, so that its posterior is the prior's long tail
    beyond a cliff at the mode) fails it. Then two rounds of importance sampling
    (:data:`IMPORTANCE_DRAWS` draws each): a defensive mixture of Student-t (3 degrees of
    freedom) around the mode with the Laplace covariance scaled by 2 and by 20, then one
    around the weighted mean with the weighted covariance scaled by 1 and by 2; the
    particles are the last round's draws resampled systematically (``n`` equally spaced
    quantiles of the weights), separated by a jitter of 0.05 Laplace standard deviations,
    and moved by one affine map to the weighted mean and covariance exactly."""
    import jax
    import jax.numpy as jnp
    from scipy.special import gammaln

    from .quick_jit import quick_jit

    n, d = q.shape
    z = approx.mode + q @ approx.factor.T
    log_w = np.array([float(density(x)) for x in z]) + 0.5 * np.sum(q**2, axis=1)
    if np.all(np.isfinite(log_w)) and np.std(log_w) <= LAPLACE_LOG_WEIGHT_SD:
        return None
    batch = quick_jit(jax.vmap(log_density))
    spread = float(np.std(log_w)) if np.all(np.isfinite(log_w)) else np.inf
    rng = np.random.default_rng(seed)
    df = 3.0

    def log_t(y: np.ndarray, scale: float) -> np.ndarray:  # d-variate t, scale * I
        quad = np.sum(y**2, axis=1) / scale**2
        return (
            gammaln((df + d) / 2) - gammaln(df / 2) - d / 2 * np.log(df * np.pi)
            - d * np.log(scale) - (df + d) / 2 * np.log1p(quad / df)
        )  # fmt: skip

    center, factor = approx.mode, approx.factor
    for scales in ((2.0, 20.0), (1.0, 2.0)):
        pick = np.where(rng.random(IMPORTANCE_DRAWS) < 0.5, scales[0], scales[1])
        t = rng.standard_normal((IMPORTANCE_DRAWS, d))
        t /= np.sqrt(rng.chisquare(df, IMPORTANCE_DRAWS) / df)[:, None]
        y = t * pick[:, None]
        draws = center + y @ factor.T
        log_q = np.logaddexp(log_t(y, scales[0]), log_t(y, scales[1])) + np.log(0.5)
        log_p = np.asarray(batch(jnp.asarray(draws)))
        log_r = np.where(np.isfinite(log_p), log_p - log_q, -np.inf)
        if not np.any(np.isfinite(log_r)):
            return "importance sampling found no finite log density"
        w = np.exp(log_r - log_r.max())
        w /= w.sum()
        ess = 1.0 / np.sum(w**2)
        center = w @ draws
        covariance = (w[:, None] * (draws - center)).T @ (draws - center)
        try:
            factor = np.linalg.cholesky(covariance)
        except np.linalg.LinAlgError:
            return "importance sampling gave a singular covariance"
    if ess < IMPORTANCE_MIN_ESS:
        return f"importance sampling kept an effective sample size of {ess:.0f} only"
    at = np.minimum(np.searchsorted(np.cumsum(w), (np.arange(n) + rng.random()) / n),
                    IMPORTANCE_DRAWS - 1)  # fmt: skip
    chosen = draws[at] + 0.05 * q @ approx.factor.T
    if n > d:  # the weighted mean and covariance exactly
        c = chosen - chosen.mean(axis=0)
        spread_of_chosen = np.linalg.cholesky(np.atleast_2d(np.cov(c.T, bias=True)))
        whitened = np.linalg.solve(spread_of_chosen, c.T).T
        chosen = center + whitened @ factor.T
    return ImportanceStart(
        chosen, center, covariance, factor,
        f"Laplace log-weight sd {spread:.2g}; effective sample size {ess:.0f} of "
        f"{IMPORTANCE_DRAWS}",
    )  # fmt: skip


def _finite_start(
    density: Callable[[Any], Any], z0: np.ndarray, candidates: np.ndarray
) -> np.ndarray | None:
    """``z0`` where the (compiled) log density is finite there, else the candidate with
    the highest finite log density, else None."""
    if math.isfinite(float(density(z0))):
        return z0
    values = np.array([float(density(z)) for z in candidates])
    finite = np.isfinite(values)
    return candidates[np.argmax(np.where(finite, values, -np.inf))] if finite.any() else None
