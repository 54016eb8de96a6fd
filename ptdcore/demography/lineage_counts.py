"""How many of a panmictic sample's lineages are left after some coalescent time, and the
expected time a sample spends with each number of lineages under a piecewise-constant size.

Kingman's lineage count is a pure-death chain: from k lineages to k - 1 at rate
lambda_k = C(k, 2) per unit of coalescent time. Its distribution p(u) is carried forwards
by *adaptive uniformisation*: over a step h with the fastest live state's rate L
(``h L <= THETA``),

    p(u + h) = e^{-L h} p sum_j (B h)^j / j!,   B = Q + L I >= 0 entrywise,

a sum of non-negative terms (no cancellation: each step keeps every p_k to a few ulps
relative, however small), truncated where the Poisson(L h) tail is below 1e-17. The top
state is dropped once its probability is below :data:`DROP` (in all, less than n x DROP),
so the steps lengthen as lineages coalesce: from n lineages to two in 12 steps (n = 20) to 72
(n = 1,000), and the last two exactly. Cost O(n) per term; no n x n matrix anywhere
(n = 1,000 in a few milliseconds).

Derivatives are exact: dp/du = p Q (:func:`counts_at` is a ``jax.custom_jvp`` whose
tangent calls it again), so ``grad`` and ``hessian`` of every quantity below are those
of the exact distribution at the computed one.

With sizes N_e between coalescent times u_e (u_0 = 0, the last epoch open), the time with
k lineages is, in the model's time unit (a pair coalesces at rate 1 / (ploidy N)),

    E[T_k] = ploidy / C(k, 2) sum_e N_e (G_k(u_e) - G_k(u_{e+1})),  G_k(u) = P(K(u) >= k),

a sum of non-negative terms; the tails G are exact to about 1e-14 absolute (tested
against Tavare's closed form with 300 digits), so E[T_k] to about 1e-14 relative times the
ratio of the largest to the smallest size.
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any

import numpy as np

THETA = 32.0
"""The uniformisation rate times the step: the step's Poisson mean."""

TERMS = 91
"""Terms of each step's series: the Poisson(32) tail past 91 is below 1e-17."""

DROP = 1e-25
"""A top state whose probability is below this is dropped (set to zero)."""


def pair_counts(n: int) -> np.ndarray:
    """lambda_k = C(k, 2) for k = 1..n (index k - 1)."""
    k = np.arange(1, n + 1, dtype=np.float64)
    return k * (k - 1.0) / 2.0


def _times_q(P: Any, lam: Any) -> Any:
    """P Q for the pure-death generator Q (rows of P: distributions over counts 1..n)."""
    import jax.numpy as jnp

    outflow = P * lam
    return jnp.concatenate([outflow[..., 1:], jnp.zeros_like(outflow[..., :1])], -1) - outflow


def _advance(lam: Any, carry: tuple[Any, Any], u: Any) -> tuple[tuple[Any, Any], Any]:
    """Carry (u0, p(u0)) forwards to u (no step when u <= u0 or u is NaN)."""
    import jax
    import jax.numpy as jnp

    index = jnp.arange(lam.size)

    def more(c: tuple[Any, Any]) -> Any:
        return c[0] < u

    def step(c: tuple[Any, Any]) -> tuple[Any, Any]:
        u0, p = c
        top = jnp.max(jnp.where(p > DROP, index, 0))
        p = jnp.where(index <= top, p, 0.0)
        rest = u - u0
        last_two = top <= 1  # two lineages or fewer left: exactly
        rate = jnp.where(last_two, 1.0, lam[top])
        h = jnp.where(last_two, 0.0, jnp.minimum(THETA / rate, rest))
        keep, move = (rate - lam) * h, jnp.append(lam[1:] * h, 0.0)

        def horner(i: Any, y: Any) -> Any:  # y <- p + y B h / j, j = TERMS..1
            z = y * keep + jnp.append(y[1:], 0.0) * move
            return p + z / (TERMS - i).astype(p.dtype)

        by_series = jax.lax.fori_loop(0, TERMS, horner, p) * jnp.exp(-rate * h)
        gone = p[1] * -jnp.expm1(-rest)
        exact = p - jnp.where(index == 1, gone, 0.0) + jnp.where(index == 0, gone, 0.0)
        p = jnp.where(last_two, exact, by_series)
        u_next = jnp.where(last_two | (h >= rest), u, u0 + h)
        return u_next, p

    carry = jax.lax.while_loop(more, step, carry)
    return carry, carry[1]


def counts_at(n: int, times: Any) -> Any:
    """P[e, k - 1] = P(k of n lineages are left at coalescent time ``times[e]``).

    ``times`` must be non-decreasing (a time before its predecessor is not stepped to:
    its row repeats the predecessor's; callers mark such values invalid). Derivatives of
    every order in ``times`` are exact (dP/du = P Q).
    """
    return _counts_function()(n, times)


@cache
def _counts_function() -> Any:
    """The ``custom_jvp`` behind :func:`counts_at`, made on first use (jax is imported
    lazily)."""
    import jax
    import jax.numpy as jnp

    @partial(jax.custom_jvp, nondiff_argnums=(0,))
    def counts(n: int, times: Any) -> Any:
        lam = jnp.asarray(pair_counts(n), times.dtype)
        p0 = jnp.zeros(n, times.dtype).at[n - 1].set(1.0)
        start = (jnp.zeros((), times.dtype), p0)
        return jax.lax.scan(partial(_advance, lam), start, times)[1]

    @counts.defjvp
    def _(n: int, primals: tuple[Any], tangents: tuple[Any]) -> tuple[Any, Any]:
        (times,), (dt,) = primals, tangents
        P = counts(n, times)
        return P, _times_q(P, jnp.asarray(pair_counts(n), times.dtype)) * dt[:, None]

    return counts


def time_with_k_lineages(n: int, sizes: Any, times: Any, ploidy: int) -> Any:
    """E[T_k] for k = 2..n (the model's time unit), a sample of n in one panmictic deme of
    size ``sizes[e]`` from coalescent time ``times[e - 1]`` to ``times[e]`` (times: the
    K - 1 boundaries in coalescent units, non-decreasing; the last epoch is open)."""
    import jax.numpy as jnp

    P = counts_at(n, times) if times.size else jnp.zeros((0, n), sizes.dtype)
    # G[e, k - 1] = P(K(u_e) >= k), with G = 1 at u = 0 and 0 at infinity
    G = jnp.flip(jnp.cumsum(jnp.flip(P, -1), -1), -1)
    G = jnp.concatenate([jnp.ones((1, n), sizes.dtype), G, jnp.zeros((1, n), sizes.dtype)])
    occupied = (sizes @ (G[:-1] - G[1:]))[1:]
    return ploidy * occupied / jnp.asarray(pair_counts(n)[1:], sizes.dtype)
