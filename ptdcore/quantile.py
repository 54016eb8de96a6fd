"""Quantiles of a ptdcore model: a safeguarded Newton solve of cdf(t) = q in JAX.

``quantile(q)`` is the smallest ``t`` with ``cdf(t) >= q`` for ``q`` in ``[0, 1)``:

- continuous models: Newton steps on ``cdf(t) - q`` with the density as derivative,
  kept inside a bracket that bisection shrinks when a step would leave it; stops when
  ``|cdf(t) - q| <= 1e-14 max(q, tiny)`` or the bracket is a few ulps wide. Its
  derivative in theta is exact, by the implicit function theorem:
  ``dt/dtheta = -(d cdf / d theta) / pdf(t)``.
- discrete models: a doubling search and integer bisection; the result is a whole
  number of steps, piecewise constant in theta (derivative zero).
- ``q <= P(T = 0) = 1 - sum(alpha)`` (the atom of a defective alpha) gives 0;
  ``q`` outside ``[0, 1)`` raises ``ValueError`` (traced ``q`` gives NaN there).
- a theta at which mass can be trapped (``E[T] = inf``): the bracket doubles from 1
  until the cdf reaches ``q`` or stops growing; a level at or above the mass that can
  ever be absorbed (the cdf's limit) gives ``inf``, every level below it its finite
  quantile.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_DOUBLINGS = 1100
MAX_STEPS = 200
RTOL = 1e-14


def make_quantile(cdf: Any, pdf: Any, mean: Any, discrete: bool) -> Any:
    """``quantile(theta, q)`` for scalar q from ``cdf(theta, t)``, ``pdf(theta, t)`` (scalars)."""
    import jax
    import jax.numpy as jnp

    def bracket(theta: Any, q: Any) -> tuple[Any, Any, Any]:
        """(0, hi, reached): cdf(hi) >= q where ``reached``; where no time reaches q,
        reached is False (and hi a placeholder, 1)."""
        m = mean(theta)
        trapped = ~jnp.isfinite(m)
        start = jnp.where(trapped, 1.0, jnp.maximum(m, 1.0 if discrete else 1e-300))

        def cond(c: Any) -> Any:
            hi, i = c
            return ~trapped & (cdf(theta, hi) < q) & (i < MAX_DOUBLINGS) & jnp.isfinite(hi)

        hi, _ = jax.lax.while_loop(cond, lambda c: (c[0] * 2.0, c[1] + 1), (start, 0))

        # trapped mass: double until the cdf stops growing, at its limit (the mass that
        # can ever be absorbed); a level at or above it is never reached. (No cdf is
        # evaluated here for a theta without trapped mass.)
        def grows(c: Any) -> Any:
            hi, _, grew, i = c
            return trapped & grew & (i < MAX_DOUBLINGS) & jnp.isfinite(hi)

        def double(c: Any) -> Any:
            hi, value, _, i = c
            at = jnp.where(value < 0.0, hi, 2.0 * hi)  # (value -1: not evaluated yet)
            following = cdf(theta, at)
            return at, following, following > value, i + 1

        hi, limit, _, _ = jax.lax.while_loop(grows, double, (hi, -1.0, True, 0))
        reached = jnp.where(trapped, q < limit, jnp.isfinite(hi))
        return jnp.zeros_like(hi), jnp.where(reached, hi, 1.0), reached

    def solve_discrete(theta: Any, q: Any) -> Any:
        lo, hi, reached = bracket(theta, q)  # cdf(hi) >= q; the smallest whole n with it

        def cond(c: Any) -> Any:
            lo, hi = c
            return hi - lo > 1.0

        def body(c: Any) -> Any:
            lo, hi = c
            mid = jnp.floor((lo + hi) / 2.0)
            ok = cdf(theta, mid) >= q
            return jnp.where(ok, lo, mid), jnp.where(ok, mid, hi)

        lo, hi = jax.lax.while_loop(cond, body, (lo - 1.0, jnp.floor(hi)))
        return jnp.where(reached, hi, jnp.inf)

    def solve_continuous(theta: Any, q: Any) -> Any:
        lo, hi, reached = bracket(theta, q)
        tiny = jnp.finfo(jnp.float64).tiny

        def cond(c: Any) -> Any:
            lo, hi, t, err, i = c
            converged = (jnp.abs(err) <= RTOL * jnp.maximum(q, tiny)) | (hi - lo <= 4e-16 * hi)
            return ~converged & (i < MAX_STEPS)

        def body(c: Any) -> Any:
            lo, hi, t, err, i = c
            lo = jnp.where(err < 0, t, lo)
            hi = jnp.where(err >= 0, t, hi)
            step = t - err / pdf(theta, t)
            inside = jnp.isfinite(step) & (step > lo) & (step < hi)
            t_new = jnp.where(inside, step, 0.5 * (lo + hi))
            return lo, hi, t_new, cdf(theta, t_new) - q, i + 1

        t0 = 0.5 * (lo + hi)
        _, _, t, _, _ = jax.lax.while_loop(cond, body, (lo, hi, t0, cdf(theta, t0) - q, 0))
        return jnp.where(reached, t, jnp.inf)

    @jax.custom_jvp
    def quantile(theta: Any, q: Any) -> Any:
        theta = jnp.asarray(theta, dtype=jnp.float64)
        q = jnp.asarray(q, dtype=jnp.float64)
        atom = cdf(theta, jnp.zeros(()))
        valid = (q >= 0) & (q < 1)
        qq = jnp.where(valid, q, 0.5)
        t = (solve_discrete if discrete else solve_continuous)(theta, qq)
        t = jnp.where(qq <= atom, 0.0, t)
        return jnp.where(valid, t, jnp.nan)

    @quantile.defjvp
    def quantile_jvp(primals: Any, tangents: Any) -> Any:
        theta, q = primals
        dtheta, dq = tangents
        t = quantile(theta, q)
        if discrete:
            return t, jnp.zeros_like(t)
        _, dcdf = jax.jvp(lambda th: cdf(th, t), (theta,), (dtheta,))
        density = pdf(theta, t)
        dt = (jnp.asarray(dq, dtype=jnp.float64) - dcdf) / density
        return t, jnp.where(t > 0, jnp.where(jnp.isfinite(t), dt, jnp.nan), 0.0)

    return quantile


def check_levels(q: Any) -> None:
    """Raise for concrete q outside [0, 1) (traced q gives NaN there instead)."""
    import jax

    if isinstance(q, jax.core.Tracer):
        return
    values = np.asarray(q, dtype=np.float64)
    bad = ~((values >= 0) & (values < 1))
    if bad.any():
        raise ValueError(
            f"quantile levels q must lie in [0, 1); got {values[bad].ravel()[:5].tolist()}"
        )
