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
