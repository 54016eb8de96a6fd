"""The reference backend's epoch models: dense exponentials per epoch, JAX autodiff.

Independent of the engine's algorithm (``cpp/include/ptdcore/epochs.hpp``): the
state at each break is ``pi_{e+1} = pi_e expm(S_e D_e)``; densities, sf and cdf use
``expm`` of the epoch's matrix (the cdf the augmented ``[[S, s], [0, 0]]``); each
finite epoch's part of ``E[T^k]`` comes from Van Loan's block exponential
``expm([[S, I, 0], [0, 0, I], [0, 0, 0]] D)``, whose upper blocks are
``int_0^D (D - u)^i / i! e^{S u} du``, and the last epoch's from dense solves.
Derivatives in theta and in the breaks are JAX's own (breaks of discrete models are
whole steps: their derivatives are NaN).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ptdcore.errors import ModelError

from .linalg import expm, map_over_times, matrix_power

if TYPE_CHECKING:
    from ptdcore.structure import Structure


DISCRETE_HORIZON = 3000
"""Steps summed for the moments of discrete models with epochs (tests use fast chains)."""


MAX_EPOCH_MOMENT = 170
"""Highest moment over epochs (170! is the largest factorial in float64)."""


def make_epoch_function(
    structure: Structure, nr_moments: int, matrices: Any, output: str = "density"
) -> Any:
    """``f(row (E P + E - 1,), times (T,)) -> (pmf, moments)`` for an epoch structure;
    ``pmf`` holds ``output`` ("density", "cdf" or "sf") at the times."""
    import jax
    import jax.numpy as jnp

    E, P, n, K = structure.epochs, structure.base_params, structure.nr_states, nr_moments
    discrete = structure.discrete
    alpha0 = np.asarray(structure.alpha)
    if K > MAX_EPOCH_MOMENT:
        raise ModelError(
            f"the reference backend computes moments over epochs up to order "
            f"{MAX_EPOCH_MOMENT} (binomial sums of factorials), got nr_moments={K}"
        )

    @jax.custom_jvp
    def whole_steps(b: Any) -> Any:  # discrete breaks: no derivative
        return b

    @whole_steps.defjvp
    def _(primals: Any, tangents: Any) -> Any:
        return primals[0], tangents[0] * jnp.nan

    def chain_integral(A: Any, z0: Any, D: Any) -> tuple[Any, Any]:
        """(int_0^D z0 e^{A t} dt, z0 e^{A D}) by Van Loan's expm([[A, I], [0, 0]] D);
        D None: the whole half-line by a dense solve (z at the end 0)."""
        N = A.shape[0]
        if D is None:
            return jnp.linalg.solve(-A.T, z0), jnp.zeros(N)
        F = expm(jnp.block([[A, jnp.eye(N)], [jnp.zeros((N, 2 * N))]]) * D)
        return z0 @ F[:N, N:], z0 @ F[:N, :N]

    def propagate(M: Any, duration: Any) -> Any:
        return matrix_power(M, duration.astype(jnp.int64)) if discrete else expm(M * duration)

    def functional(M: Any, exit_w: Any, pi: Any, absorbed: Any, tau: Any) -> Any:
        if discrete:
            k = tau.astype(jnp.int64)
            aug = jnp.zeros((n + 1, n + 1)).at[:n, :n].set(M).at[:n, n].set(exit_w).at[n, n].set(1)
            if output == "cdf":
                return absorbed + pi @ matrix_power(aug, k)[:n, n]
            if output == "sf":
                return pi @ matrix_power(M, k).sum(axis=1)
            return pi @ matrix_power(M, jnp.maximum(k - 1, 0)) @ exit_w
        aug = jnp.zeros((n + 1, n + 1)).at[:n, :n].set(M).at[:n, n].set(exit_w)
        if output == "cdf":
            return absorbed + pi @ expm(aug * tau)[:n, n]
        if output == "sf":
            return pi @ expm(M * tau).sum(axis=1)
        return pi @ expm(M * tau) @ exit_w

    def finite_epoch_moments(M: Any, exit_w: Any, pi: Any, a: Any, D: Any) -> Any:
        # int_0^D (a + u)^k pi e^{Su} s du with (a + u) = (a + D) - (D - u)
        blocks = K + 2
        big = jnp.zeros((blocks * n, blocks * n)).at[:n, :n].set(M)
        for i in range(1, blocks):
            big = big.at[(i - 1) * n : i * n, i * n : (i + 1) * n].set(jnp.eye(n))
        X = expm(big * D)
        # V_i = int_0^D (D - u)^i e^{Su} du = i! X[0, i + 1]
        v = [float(math.factorial(i)) * (pi @ X[:n, (i + 1) * n : (i + 2) * n] @ exit_w)
             for i in range(K + 1)]  # fmt: skip
        end = a + D
        return jnp.stack([
            sum(float(math.comb(k, i)) * end ** (k - i) * (-1) ** i * v[i] for i in range(k + 1))
            for k in range(1, K + 1)
        ])  # fmt: skip

    def last_epoch_moments(M: Any, pi: Any, a: Any) -> Any:
        r, J = pi, [pi.sum()]
        for j in range(1, K + 1):
            r = j * jnp.linalg.solve(-M.T, r)  # j! pi U^j: the factorial taken step by step
            J.append(r.sum())
        return jnp.stack([
            sum(float(math.comb(k, j)) * a ** (k - j) * J[j] for j in range(k + 1))
            for k in range(1, K + 1)
        ])  # fmt: skip

    def reward_moments(Ms: list, D: list) -> Any:
        # [v, u_i] evolves by A_i = [[S, diag(r_i)], [0, S]]; int z dt over a finite epoch
        # from Van Loan's expm([[A, I], [0, 0]] D), over the last by a dense solve
        R = jnp.asarray(np.asarray(structure.rewards).reshape(n, -1))
        m = R.shape[1]
        if K not in (m, m + m * m):  # (K = m: the means, cut below)
            return jnp.full(K, jnp.nan)
        v, u = jnp.asarray(alpha0), [jnp.zeros(n)] * m
        mean, C = jnp.zeros(m), jnp.zeros((m, m))
        for e, M in enumerate(Ms):
            new_u = []
            for i in range(m):
                A = jnp.block([[M, jnp.diag(R[:, i])], [jnp.zeros((n, n)), M]])
                z0 = jnp.concatenate([v, u[i]])
                integral, z_end = chain_integral(A, z0, D[e] if e + 1 < len(Ms) else None)
                new_u.append(z_end[n:])
                C = C.at[i].add(integral[n:] @ R)
                if i == 0:
                    mean = mean + integral[:n] @ R
            v, u = z_end[:n], new_u
        return jnp.concatenate([mean, (C + C.T).ravel()])[:K]

    def reward_power_moments(Ms: list, D: list) -> Any:
        # z = [v, u_1 .. u_{K-1}], u_l = E[Y^l / l!; X_t], along the block generator with
        # S on the diagonal and diag(r) above; E[Y^k] = k! int u_{k-1} . r dt
        r = jnp.asarray(np.asarray(structure.rewards))
        N = K * n
        z = jnp.concatenate([jnp.asarray(alpha0), jnp.zeros(N - n)])
        moments = jnp.zeros(K)
        for e, M in enumerate(Ms):
            A = jnp.kron(jnp.eye(K), M) + jnp.kron(jnp.eye(K, k=1), jnp.diag(r))
            integral, z = chain_integral(A, z, D[e] if e + 1 < len(Ms) else None)
            moments = moments + jnp.stack([
                float(math.factorial(k)) * (integral[(k - 1) * n : k * n] @ r)
                for k in range(1, K + 1)
            ])  # fmt: skip
        return moments

    def f(row: Any, times: Any) -> tuple[Any, Any]:
        row = jnp.asarray(row, dtype=jnp.float64)
        times = jnp.asarray(times, dtype=jnp.float64)
        thetas = row[: E * P].reshape(E, P)
        breaks = row[E * P :]
        if discrete:
            breaks = whole_steps(breaks)
        valid = jnp.all(jnp.isfinite(breaks)) & jnp.all(jnp.diff(breaks, prepend=0.0) > 0)
        if discrete:
            valid &= jnp.all(breaks == jnp.floor(breaks))
        safe_breaks = jnp.where(valid, breaks, jnp.arange(1.0, E))
        starts = jnp.concatenate([jnp.zeros(1), safe_breaks])
        Ms, exits, pis, absorbed = [], [], [jnp.asarray(alpha0)], [1.0 - alpha0.sum()]
        for e in range(E):
            M, exit_w, ok = matrices(thetas[e])
            valid &= ok
            Ms.append(M)
            exits.append(exit_w)
            if e + 1 < E:
                D = safe_breaks[e] - starts[e]
                pis.append(pis[e] @ propagate(M, D))
                absorbed.append(functional(M, exit_w, pis[e], absorbed[e], D) if output == "cdf"
                                else 0.0)  # fmt: skip
        by_step = discrete and output == "density"

        def one(t: Any) -> Any:
            ok = jnp.isfinite(t) & (t >= 0)
            if discrete:
                ok &= t == jnp.floor(t)
            tt = jnp.where(ok, t, 0.0)
            epoch = jnp.sum(tt > safe_breaks) if by_step else jnp.sum(tt >= safe_breaks)
            values = jnp.stack([
                functional(Ms[e], exits[e], pis[e], absorbed[e], tt - starts[e]) for e in range(E)
            ])  # fmt: skip
            value = values[epoch]
            if by_step:
                value = jnp.where(tt == 0, 1.0 - alpha0.sum(), value)
            return jnp.where(ok, value, jnp.nan)

        pmf = map_over_times(one, times, n + 1)
        if structure.reward_matrix:
            durations = [safe_breaks[e] - starts[e] for e in range(E - 1)]
            moments = reward_moments(Ms, durations)
            pmf = jnp.full(times.shape, jnp.nan)
        elif structure.rewards is not None:  # moments of Y only
            durations = [safe_breaks[e] - starts[e] for e in range(E - 1)]
            moments = reward_power_moments(Ms, durations) if K else jnp.zeros(0)
            pmf = jnp.full(times.shape, jnp.nan)
        elif K == 0:
            moments = jnp.zeros(0)
        elif discrete:  # sum_n ((n + 1)^k - n^k) P(N > n), stepping n up to DISCRETE_HORIZON
            step_of = jnp.concatenate([safe_breaks, jnp.array([jnp.inf])])
            ks = jnp.arange(1, K + 1)

            def body(t: Any, carry: Any) -> Any:
                v, acc = carry
                tf = t.astype(jnp.float64)
                acc = acc + ((tf + 1) ** ks - tf**ks) * v.sum()
                epoch = jnp.sum(tf >= step_of[:-1])
                T_now = jnp.stack(Ms)[epoch]
                return v @ T_now, acc

            _, moments = jax.lax.fori_loop(
                0, DISCRETE_HORIZON, body, (jnp.asarray(alpha0), jnp.zeros(K))
            )
        else:
            moments = last_epoch_moments(Ms[-1], pis[-1], starts[-1])
            for e in range(E - 1):
                D = safe_breaks[e] - starts[e]
                moments = moments + finite_epoch_moments(Ms[e], exits[e], pis[e], starts[e], D)
        mask = jnp.where(valid, 1.0, jnp.nan)
        return pmf * mask, moments * mask

    return f
