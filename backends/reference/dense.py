"""The reference algorithm: dense linear algebra in pure JAX, independent of the C++ engine.

For one theta:

- the dense sub-intensity matrix ``S`` (continuous) or sub-transition matrix ``T``
  (discrete) and the exit vector, built from the structure's edge list;
- continuous density ``alpha expm(S t) s``, one exponential per time, by scaling and
  squaring of a degree-18 Taylor polynomial (:func:`expm`; JAX's own ``expm`` was
  measured 1.7e-11 off on a diagonal 3 x 3 matrix, too loose for an oracle);
- discrete mass ``P(N = n) = alpha T^(n - 1) t`` by binary powering of ``T``;
- moments by dense solves: ``E[T^k] = k! alpha (U diag(r))^k 1``, ``U = (-S)^-1``;
  discrete factorial moments ``k! alpha T^(k-1) (I - T)^-k 1`` turned into raw
  moments with Stirling numbers of the second kind;
- rewards: the dense reward transformation (Bladt & Nielsen, Thm 8.1.2) for the
  density of ``Y``;
- survival ``alpha expm(S t) 1`` and distribution function ``atom + alpha int_0^t
  expm(S u) s du``, the integral as the corner block of the exponential of
  ``[[S, s], [0, 0]] t`` (discrete: the corner of ``[[T, t], [0, 1]]^n``);
- derivatives: JAX's own (forward or reverse mode, any order).

Nothing here calls or mirrors the engine (uniformisation, squaring ladder, GTH, level
shortcut); it is the independent side of the equivalence harness.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ptdcore.structure import Structure
from ptdcore.tolerances import DISCRETE_SUM_TOLERANCE

from .epochs import make_epoch_function
from .linalg import expm, map_over_times, matrix_power, stirling2


def make_function(structure: Structure, nr_moments: int, output: str = "density") -> Any:
    """``f(theta (P,), times (T,)) -> (pmf (T,), moments (K,))`` in pure JAX; ``pmf`` holds
    ``output`` at the times: the density ("density"), ``P(T <= t)`` ("cdf") or
    ``P(T > t)`` ("sf")."""
    import jax
    import jax.numpy as jnp

    n, K = structure.nr_states, nr_moments
    discrete = structure.discrete
    src = np.asarray(structure.src)
    dst = np.asarray(structure.dst)
    const = np.asarray(structure.constant)
    coef = structure.coefficient_matrix()  # (E, P)
    alpha0 = np.asarray(structure.alpha)
    rewards = None if structure.rewards is None else np.asarray(structure.rewards)
    internal = (dst >= 0) & (dst != src)
    exits = dst < 0
    selfloop = dst == src
    s2 = stirling2(K)

    def matrices(theta: Any) -> tuple[Any, Any, Any]:
        w = jnp.asarray(const) + jnp.asarray(coef) @ theta
        valid = jnp.all(jnp.isfinite(theta)) & jnp.all(jnp.isfinite(w)) & jnp.all(w >= 0)
        out = jnp.zeros(n).at[src[~selfloop]].add(w[~selfloop])
        M = jnp.zeros((n, n)).at[src[internal], dst[internal]].add(w[internal])
        exit_w = jnp.zeros(n).at[src[exits]].add(w[exits])
        if discrete:
            stay = jnp.zeros(n).at[src[selfloop]].add(w[selfloop])
            valid &= jnp.all(out + stay <= 1 + DISCRETE_SUM_TOLERANCE)
            M = M + jnp.diag(1.0 - out)
        else:
            M = M - jnp.diag(out)
        return M, exit_w, valid

    def never_absorbed(M: Any, exit_w: Any, alpha: Any) -> Any:
        """Whether a state that mass can reach (through positive weights) cannot reach
        absorption: then T is infinite with positive probability."""
        adjacency = jax.lax.stop_gradient((M > 0) & ~jnp.eye(n, dtype=bool)).astype(M.dtype)

        def widen(_: Any, sets: tuple[Any, Any]) -> tuple[Any, Any]:
            reached, leaves = sets
            reached = jnp.minimum(reached + reached @ adjacency, 1.0)
            leaves = jnp.minimum(leaves + adjacency @ leaves, 1.0)
            return reached, leaves

        start = (jax.lax.stop_gradient(alpha > 0).astype(M.dtype),
                 jax.lax.stop_gradient(exit_w > 0).astype(M.dtype))  # fmt: skip
        reached, leaves = jax.lax.fori_loop(0, n, widen, start)
        return jnp.any((reached > 0) & (leaves == 0))

    def moments_of(M: Any, alpha: Any, exit_w: Any) -> Any:
        if K == 0:
            return jnp.zeros(0)
        # E[T^k] = inf where mass can be trapped (as the engine says); NaN for Y (rewards),
        # which may stay finite there
        trapped = never_absorbed(M, exit_w, alpha)
        infinite = jnp.where(trapped, jnp.inf if rewards is None else jnp.nan, 1.0)
        safe = jnp.where(trapped, -jnp.eye(n), M)  # no singular solve, even unselected
        return infinite * jnp.where(trapped, 1.0, finite_moments_of(safe, alpha))

    def finite_moments_of(M: Any, alpha: Any) -> Any:
        A = jnp.eye(n) - M if discrete else -M  # I - T, or -S
        r = jnp.ones(n) if rewards is None else jnp.asarray(rewards)
        x = jnp.ones(n)
        raw = []
        for k in range(1, K + 1):
            # x = k! (A^-1 diag(r))^k 1, the factor k taken at each step: k! alone
            # overflows from k = 171 where the moment itself may be representable
            x = k * jnp.linalg.solve(A, r * x)
            if discrete:  # factorial moment: k! alpha T^(k-1) (I - T)^-k 1
                z = x
                for _ in range(k - 1):
                    z = M @ z
                raw.append(alpha @ z)
            else:
                raw.append(alpha @ x)
        raw = jnp.stack(raw)
        if not discrete:
            return raw
        return jnp.stack([jnp.dot(jnp.asarray(s2[k, 1 : k + 1]), raw[:k]) for k in range(1, K + 1)])

    def transformed(M: Any, exit_w: Any, alpha: Any) -> tuple[Any, Any, Any]:
        """Dense reward transformation: (alpha', S', s') of Y on the positive-reward states.

        alpha' sums to less than 1 when Y has an atom at 0 (absorption before any
        positive reward); that atom is not part of the density."""
        r = np.asarray(rewards)
        pos, zero = np.flatnonzero(r > 0), np.flatnonzero(r == 0)
        Spp = M[np.ix_(pos, pos)]
        alpha_p = alpha[pos]
        exit_p = exit_w[pos]
        if zero.size:
            Spz, Szp, Szz = M[np.ix_(pos, zero)], M[np.ix_(zero, pos)], M[np.ix_(zero, zero)]
            # (-Szz)^-1 [Szp, s_z]: where mass entering the zero-reward states goes next
            solved = jnp.linalg.solve(-Szz, jnp.concatenate([Szp, exit_w[zero][:, None]], axis=1))
            Spp = Spp + Spz @ solved[:, :-1]
            exit_p = exit_p + Spz @ solved[:, -1]
            alpha_p = alpha_p + alpha[zero] @ solved[:, :-1]
        scale = jnp.asarray(r[pos])
        # the exit flows directly (not minus the row sums, which would cancel)
        return alpha_p, Spp / scale[:, None], exit_p / scale

    def density(M: Any, exit_w: Any, alpha: Any, times: Any) -> Any:
        if rewards is not None:
            alpha, M, exit_w = transformed(M, exit_w, alpha)
        atom = jnp.maximum(0.0, 1.0 - alpha.sum())
        m = M.shape[0]
        # [[S, s], [0, 0]]: its exponential's corner column is int_0^t expm(S u) s du
        augmented = jnp.zeros((m + 1, m + 1)).at[:m, :m].set(M).at[:m, m].set(exit_w)

        def one(t: Any) -> Any:
            ok = jnp.isfinite(t) & (t >= 0)
            tt = jnp.where(ok, t, 0.0)
            if output == "cdf":
                value = atom + alpha @ expm(augmented * tt)[:m, m]
            elif output == "sf":
                value = alpha @ expm(M * tt).sum(axis=1)
            else:
                value = alpha @ expm(M * tt) @ exit_w
            return jnp.where(ok, value, jnp.nan)

        return map_over_times(one, times, m + 1)

    def mass(M: Any, exit_w: Any, alpha: Any, times: Any) -> Any:
        atom = jnp.maximum(0.0, 1.0 - alpha.sum())
        # [[T, t], [0, 1]]^k: its corner column is sum_{j < k} T^j t
        augmented = jnp.zeros((n + 1, n + 1)).at[:n, :n].set(M).at[:n, n].set(exit_w)
        augmented = augmented.at[n, n].set(1.0)

        def one(t: Any) -> Any:
            ok = jnp.isfinite(t) & (t >= 0) & (t == jnp.floor(t))
            k = jnp.where(ok, t, 0.0).astype(jnp.int64)
            if output == "cdf":
                p = atom + alpha @ matrix_power(augmented, k)[:n, n]
            elif output == "sf":
                p = alpha @ matrix_power(M, k).sum(axis=1)
            else:
                steps = jnp.maximum(k - 1, 0)
                p = jnp.where(t == 0, atom, alpha @ matrix_power(M, steps) @ exit_w)
            return jnp.where(ok, p, jnp.nan)

        return map_over_times(one, times, n + 1)

    def reward_moments_of(M: Any, alpha: Any) -> Any:
        # E[Y_j] = alpha U r_j, E[Y_i Y_j] = alpha U (r_i o U r_j + r_j o U r_i), U = (-S)^-1
        R = jnp.asarray(rewards.reshape(n, -1))
        m = R.shape[1]
        if K not in (m, m + m * m):  # another layout asked for: NaN, as the engine gives
            return jnp.full(K, jnp.nan)
        X = jnp.linalg.solve(-M, R)
        a = jnp.linalg.solve(-M.T, alpha)
        C = R.T @ (a[:, None] * X)
        return jnp.concatenate([alpha @ X, (C + C.T).ravel()])[:K]  # (K = m: the means)

    if structure.epochs > 1:
        return make_epoch_function(structure, nr_moments, matrices, output)

    def f(theta: Any, times: Any) -> tuple[Any, Any]:
        theta = jnp.asarray(theta, dtype=jnp.float64)
        times = jnp.asarray(times, dtype=jnp.float64)
        M, exit_w, valid = matrices(theta)
        alpha = jnp.asarray(alpha0)
        if structure.reward_matrix:  # no times: NaN for any given
            pmf = jnp.full(times.shape, jnp.nan)
            moments = reward_moments_of(M, alpha)
        else:
            pmf = (mass if discrete else density)(M, exit_w, alpha, times)
            moments = moments_of(M, alpha, exit_w)
        # invalid theta: NaN values and NaN derivatives (a product, not jnp.where,
        # whose derivative would be a silent zero)
        mask = jnp.where(valid, 1.0, jnp.nan)
        return pmf * mask, moments * mask

    return f
