"""Independent references: dense scipy and mpmath computations on small graphs.

None of this calls the engine; it works from the dense matrices of the model.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

DPS = 40


def dense(graph, theta):
    """(alpha, S or T, exit vector) at theta as numpy arrays."""
    M, exit_w = graph.sub_intensity(theta)
    return np.array(graph.alpha, dtype=float), M, exit_w


def dense_derivative(graph, p):
    """d(M)/d theta_p and d(exit)/d theta_p (constant: the weights are linear)."""
    s = graph.structure()
    zero = np.zeros(s.nr_params)
    unit = np.zeros(s.nr_params)
    unit[p] = 1.0
    M0, e0 = graph.sub_intensity(zero)
    M1, e1 = graph.sub_intensity(unit)
    return M1 - M0, e1 - e0


def _mp_matrix(a):
    return mpmath.matrix([[mpmath.mpf(float(x)) for x in row] for row in np.atleast_2d(a)])


def mp_pdf(graph, theta, times):
    """Continuous density alpha exp(S t) s at 40 digits (no rewards)."""
    with mpmath.workdps(DPS):
        alpha, S, s = dense(graph, theta)
        A = _mp_matrix(alpha)
        Sm = _mp_matrix(S)
        sv = _mp_matrix(s).T
        return np.array(
            [float((A * mpmath.expm(Sm * mpmath.mpf(float(t))) * sv)[0]) for t in times]
        )


def mp_pdf_jacobian(graph, theta, times):
    """d pdf / d theta by the Van Loan block exponential, at 40 digits."""
    alpha, S, s = dense(graph, theta)
    n = S.shape[0]
    P = graph.nr_params
    out = np.zeros((len(times), P))
    with mpmath.workdps(DPS):
        A = _mp_matrix(alpha)
        sv = _mp_matrix(s).T
        for p in range(P):
            dS, ds = dense_derivative(graph, p)
            block = np.zeros((2 * n, 2 * n))
            block[:n, :n] = S
            block[:n, n:] = dS
            block[n:, n:] = S
            Bm = _mp_matrix(block)
            dsv = _mp_matrix(ds).T
            for q, t in enumerate(times):
                E = mpmath.expm(Bm * mpmath.mpf(float(t)))
                expS = E[:n, :n]
                dexp = E[:n, n:]
                out[q, p] = float((A * dexp * sv)[0] + (A * expS * dsv)[0])
    return out


def mp_moments(graph, theta, K, rewards=None):
    """k! alpha (U diag(r))^k 1 at 40 digits (continuous)."""
    alpha, S, _ = dense(graph, theta)
    n = S.shape[0]
    r = np.ones(n) if rewards is None else np.asarray(rewards, dtype=float)
    with mpmath.workdps(DPS):
        U = mpmath.inverse(-_mp_matrix(S))
        R = mpmath.diag([mpmath.mpf(float(x)) for x in r])
        A = _mp_matrix(alpha)
        x = mpmath.matrix([[1] for _ in range(n)])
        out = []
        for k in range(1, K + 1):
            x = U * (R * x)
            out.append(float(math.factorial(k) * (A * x)[0]))
        return np.array(out)


def mp_derivative(f, theta, p, dps=DPS):
    """d f / d theta_p by mpmath's high-precision numerical differentiation."""

    def g(x):
        th = [mpmath.mpf(float(v)) for v in theta]
        th[p] = x
        return f(th)

    with mpmath.workdps(dps):
        return float(mpmath.diff(g, mpmath.mpf(float(theta[p]))))


def reward_transformed(graph, theta):
    """Dense reward transformation (Bladt & Nielsen, Thm 8.1.2): (alpha', S', s')."""
    alpha, S, s = dense(graph, theta)
    r = np.asarray(graph.rewards, dtype=float)
    pos = r > 0
    zero = ~pos
    Spp, Spz, Szp, Szz = (
        S[np.ix_(pos, pos)],
        S[np.ix_(pos, zero)],
        S[np.ix_(zero, pos)],
        S[np.ix_(zero, zero)],
    )
    U0 = np.linalg.inv(-Szz) if zero.any() else np.zeros((0, 0))
    Sp = Spp + Spz @ U0 @ Szp
    Sp = Sp / r[pos][:, None]
    alpha_p = alpha[pos] + alpha[zero] @ U0 @ Szp
    return alpha_p, Sp, -Sp.sum(axis=1)


def mp_phase_type_pdf(alpha, S, times):
    """alpha exp(S t) (-S 1) at 40 digits for explicit dense (alpha, S)."""
    with mpmath.workdps(DPS):
        A = _mp_matrix(alpha)
        Sm = _mp_matrix(S)
        sv = -Sm * mpmath.matrix([[1] for _ in range(Sm.rows)])
        return np.array(
            [float((A * mpmath.expm(Sm * mpmath.mpf(float(t))) * sv)[0]) for t in times]
        )


def hypoexponential_pdf(rates, t, dps=DPS):
    """Density of a sum of independent exponentials with distinct rates, as a float."""
    return float(mp_hypoexponential(rates, t, dps=dps))


def discrete_pmf_dense(alpha, T, t, ns):
    """P(N = n) = alpha T^(n-1) t (P(N=0) = 1 - sum alpha), in exact order via numpy."""
    out = []
    for n in ns:
        n = int(n)
        if n == 0:
            out.append(1.0 - alpha.sum())
        else:
            out.append(alpha @ np.linalg.matrix_power(T, n - 1) @ t)
    return np.array(out)


def assert_rel_close(actual, expected, rtol, floor_fraction=1e-12, what="value"):
    """Relative check wherever |expected| >= floor_fraction * max|expected|."""
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = np.max(np.abs(expected)) if expected.size else 0.0
    mask = np.abs(expected) >= floor_fraction * scale
    rel = np.abs(actual[mask] - expected[mask]) / np.abs(expected[mask])
    worst = rel.max() if rel.size else 0.0
    assert worst <= rtol, f"{what}: max relative error {worst:.3e} > {rtol:.1e}"
    # Below the floor the absolute error must still be tiny relative to the maximum.
    if (~mask).any():
        abs_err = np.abs(actual[~mask] - expected[~mask]).max()
        assert abs_err <= rtol * scale, f"{what}: absolute error {abs_err:.3e} below the floor"


def mp_dense(graph, theta):
    """(alpha, S) as mpmath matrices for mpmath-valued theta (differentiable by mpmath.diff)."""
    s = graph.structure()
    C = s.coefficient_matrix()
    n = s.nr_states
    S = mpmath.zeros(n, n)
    for e in range(s.nr_edges):
        w = mpmath.mpf(float(s.constant[e])) + sum(C[e, p] * theta[p] for p in range(s.nr_params))
        i, j = int(s.src[e]), int(s.dst[e])
        S[i, i] -= w
        if j >= 0:
            S[i, j] += w
    return _mp_matrix(s.alpha), S


def mp_reward_pdf(graph, theta, t):
    """Density of the reward-transformed chain, all in mpmath (Bladt & Nielsen Thm 8.1.2)."""
    A, S = mp_dense(graph, theta)
    r = [float(x) for x in graph.rewards]
    pos = [i for i, x in enumerate(r) if x > 0]
    zero = [i for i, x in enumerate(r) if x == 0]

    def sub(M, rows, cols):
        out = mpmath.zeros(len(rows), len(cols))
        for a, i in enumerate(rows):
            for b, j in enumerate(cols):
                out[a, b] = M[i, j]
        return out

    Sp = sub(S, pos, pos)
    ap = sub(A, [0], pos)
    if zero:
        U0 = mpmath.inverse(-sub(S, zero, zero))
        Sp = Sp + sub(S, pos, zero) * U0 * sub(S, zero, pos)
        ap = ap + sub(A, [0], zero) * U0 * sub(S, zero, pos)
    for a, i in enumerate(pos):
        for b in range(len(pos)):
            Sp[a, b] /= r[i]
    ones = mpmath.matrix([[1] for _ in pos])
    exit_rates = -Sp * ones
    return (ap * mpmath.expm(Sp * t) * exit_rates)[0]


def assert_jacobian_close(actual, expected, rtol=1e-10, atol_fraction=1e-12, what="jacobian"):
    """|actual - expected| <= rtol |expected| + atol_fraction * max|expected| per parameter.

    The last axis indexes the parameter. A derivative that is small only because
    large terms cancel is accurate relative to its column's scale, not to itself.
    """
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    a = actual.reshape(-1, actual.shape[-1])
    e = expected.reshape(-1, expected.shape[-1])
    scale = np.abs(e).max(axis=0, keepdims=True)
    err = np.abs(a - e)
    allowed = rtol * np.abs(e) + atol_fraction * scale
    worst = np.max(err / np.where(allowed > 0, allowed, 1.0))
    assert np.all(err <= allowed), f"{what}: error {worst:.2f}x the allowed rtol={rtol:g} bound"


def mp_hypoexponential(rates, t, survival=False, dps=DPS):
    """Density (or, with ``survival``, P(T > t)) of a sum of exponentials with distinct
    rates, by the closed form at ``dps`` digits (as an mpmath number)."""
    with mpmath.workdps(dps):
        rates = [mpmath.mpf(r) for r in rates]
        t = mpmath.mpf(t)
        total = mpmath.mpf(0)
        for i, ri in enumerate(rates):
            coef = mpmath.mpf(1)
            for j, rj in enumerate(rates):
                if j != i:
                    coef *= rj / (rj - ri)
            total += coef * (1 if survival else ri) * mpmath.exp(-ri * t)
        return total


def _mp_engine_model(graph, theta):
    """(alpha, S, [dS_p]) in mpmath with the weights rounded to float64 as the engine
    rounds them (constant, then each coefficient times its parameter, in order): the
    model the engine is given. On stiff graphs a tiny derivative moves by ~1e-11 between
    that model and the exact rational one, which no float64 algorithm can resolve; what
    is compared is the engine's arithmetic. The diagonal is minus the exit minus the
    other rates, exactly (not a float64 row sum)."""
    s = graph.structure()
    n, P = s.nr_states, s.nr_params
    S = mpmath.zeros(n, n)
    dS = [mpmath.zeros(n, n) for _ in range(P)]
    for e in range(s.nr_edges):
        w = float(s.constant[e])
        for k in range(s.coef_ptr[e], s.coef_ptr[e + 1]):
            w += float(s.coef_value[k]) * float(theta[s.coef_index[k]])
        i, j = int(s.src[e]), int(s.dst[e])
        S[i, i] -= w
        if j >= 0:
            S[i, j] += w
        for k in range(s.coef_ptr[e], s.coef_ptr[e + 1]):
            c = mpmath.mpf(float(s.coef_value[k]))
            dS[s.coef_index[k]][i, i] -= c
            if j >= 0:
                dS[s.coef_index[k]][i, j] += c
    return _mp_matrix(s.alpha), S, dS


def mp_moment_derivatives(graph, theta, K, dps=50):
    """E[T^k], their Jacobian (K, P) and Hessian (K, P, P), k = 1..K, at ``dps`` digits
    (:func:`_mp_engine_model`'s model).

    ``x_k = U x_{k-1}`` with ``dU/dtheta_p = U dS_p U`` and ``d2U/dtheta_p dtheta_q =
    U dS_p U dS_q U + U dS_q U dS_p U`` (the rates are linear in theta).
    """
    P = graph.structure().nr_params
    with mpmath.workdps(dps):
        A, S, dS = _mp_engine_model(graph, theta)
        n = S.rows
        U = mpmath.inverse(-S)
        dU = [U * dS[p] * U for p in range(P)]
        d2U = [[_second_derivative_of_inverse(U, dS, p, q) for q in range(P)] for p in range(P)]
        x = mpmath.matrix([[1] for _ in range(n)])
        dx = [mpmath.zeros(n, 1) for _ in range(P)]
        d2x = [[mpmath.zeros(n, 1) for _ in range(P)] for _ in range(P)]
        moments, jac, hess = np.zeros(K), np.zeros((K, P)), np.zeros((K, P, P))
        for k in range(1, K + 1):
            new_d2x = [
                [d2U[p][q] * x + dU[p] * dx[q] + dU[q] * dx[p] + U * d2x[p][q] for q in range(P)]
                for p in range(P)
            ]
            dx, x, d2x = [dU[p] * x + U * dx[p] for p in range(P)], U * x, new_d2x
            f = math.factorial(k)
            moments[k - 1] = float(f * (A * x)[0])
            for p in range(P):
                jac[k - 1, p] = float(f * (A * dx[p])[0])
                for q in range(P):
                    hess[k - 1, p, q] = float(f * (A * d2x[p][q])[0])
        return moments, jac, hess


def _second_derivative_of_inverse(U, dS, p, q):
    """d2U / dtheta_p dtheta_q for rates linear in theta."""
    return U * dS[p] * U * dS[q] * U + U * dS[q] * U * dS[p] * U


def on_log_scale(theta, jac, hess=None):
    """Derivatives in log theta: J_p theta_p and H_pq theta_p theta_q + delta_pq J_p theta_p."""
    theta = np.asarray(theta, dtype=float)
    jl = jac * theta
    if hess is None:
        return jl
    return jl, hess * np.outer(theta, theta) + np.einsum("...p,pq->...pq", jl, np.eye(len(theta)))


def mp_reward_moment_derivatives(graph, rewards, theta, dps=50):
    """Means and cross moments of the reward columns (``ptdcore.reward_moments``'s layout,
    m + m^2), their Jacobian and Hessian at ``dps`` digits (:func:`_mp_engine_model`'s
    model): E[Y_j] = a . r_j and E[Y_i Y_j] = a . (r_i x_j + r_j x_i) with x_j = U r_j
    and a = alpha U, differentiated by the product rule (dx_p = U dS_p x, d2x_pq =
    U (dS_p dx_q + dS_q dx_p), and likewise a from the left)."""
    rewards = np.asarray(rewards, dtype=float)
    m = rewards.shape[1]
    P = graph.structure().nr_params
    with mpmath.workdps(dps):
        A, S, dS = _mp_engine_model(graph, theta)
        n = S.rows
        U = mpmath.inverse(-S)
        r = [mpmath.matrix([[mpmath.mpf(float(v))] for v in rewards[:, j]]) for j in range(m)]

        def column(b):  # x, dx[p], d2x[p][q] of x = U b
            x = U * b
            dx = [U * (dS[p] * x) for p in range(P)]
            d2x = [[U * (dS[p] * dx[q] + dS[q] * dx[p]) for q in range(P)] for p in range(P)]
            return x, dx, d2x

        a = A * U
        da = [(a * dS[p]) * U for p in range(P)]
        d2a = [[(da[p] * dS[q] + da[q] * dS[p]) * U for q in range(P)] for p in range(P)]
        cols = [column(r[j]) for j in range(m)]

        def dot(row, vec):
            return sum(row[k] * vec[k] for k in range(n))

        def pair(row, xi, xj, i, j):  # row . (r_i o x_j + r_j o x_i)
            return sum(row[k] * (r[i][k] * xj[k] + r[j][k] * xi[k]) for k in range(n))

        size = m + m * m
        values, jac, hess = np.zeros(size), np.zeros((size, P)), np.zeros((size, P, P))
        for j in range(m):
            x, dx, d2x = cols[j]
            values[j] = float(dot(A, x))
            for p in range(P):
                jac[j, p] = float(dot(A, dx[p]))
                for q in range(P):
                    hess[j, p, q] = float(dot(A, d2x[p][q]))
        for i in range(m):
            for j in range(m):
                (xi, dxi, d2xi), (xj, dxj, d2xj) = cols[i], cols[j]
                o = m + i * m + j
                values[o] = float(pair(a, xi, xj, i, j))
                for p in range(P):
                    jac[o, p] = float(pair(da[p], xi, xj, i, j) + pair(a, dxi[p], dxj[p], i, j))
                    for q in range(P):
                        hess[o, p, q] = float(
                            pair(d2a[p][q], xi, xj, i, j)
                            + pair(da[p], dxi[q], dxj[q], i, j)
                            + pair(da[q], dxi[p], dxj[p], i, j)
                            + pair(a, d2xi[p][q], d2xj[p][q], i, j)
                        )
        return values, jac, hess


def mp_epoch_mean_jacobian(graph, row, dps=40):
    """E[T] of a two-epoch model (row = theta_0, theta_1, break) and its Jacobian in the
    row at ``dps`` digits: E[T] = alpha U_0 (1 - e^{S_0 b} 1) + alpha e^{S_0 b} U_1 1,
    differentiated by mpmath (the weights exact in the parameters)."""
    s = graph.structure()
    n, P = s.nr_states, s.nr_params

    def generator(theta):
        S = mpmath.zeros(n, n)
        for e in range(s.nr_edges):
            w = mpmath.mpf(float(s.constant[e]))
            for k in range(s.coef_ptr[e], s.coef_ptr[e + 1]):
                w += mpmath.mpf(float(s.coef_value[k])) * theta[s.coef_index[k]]
            i, j = int(s.src[e]), int(s.dst[e])
            S[i, i] -= w
            if j >= 0:
                S[i, j] += w
        return S

    def mean(r):
        S0, S1 = generator(r[:P]), generator(r[P : 2 * P])
        A = _mp_matrix(s.alpha)
        one = mpmath.matrix([[1] for _ in range(n)])
        E0 = mpmath.expm(S0 * r[2 * P])
        return (A * mpmath.inverse(-S0) * (one - E0 * one) + A * E0 * mpmath.inverse(-S1) * one)[0]

    with mpmath.workdps(dps):
        r = [mpmath.mpf(float(x)) for x in row]
        jac = [
            float(
                mpmath.diff(
                    lambda x, p=p: mean([x if q == p else r[q] for q in range(len(r))]), r[p]
                )
            )
            for p in range(len(r))
        ]
        return float(mean(r)), np.array(jac)
