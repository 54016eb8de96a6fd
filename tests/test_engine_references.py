"""The engine against dense scipy and 40-digit mpmath references on small graphs."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from conftest import engine_eval
from references import (
    assert_jacobian_close,
    assert_rel_close,
    discrete_pmf_dense,
    mp_derivative,
    mp_moments,
    mp_pdf,
    mp_pdf_jacobian,
    mp_phase_type_pdf,
    mp_reward_pdf,
    reward_transformed,
)
from scipy.linalg import expm

from ptdcore import Graph
from ptdcore.testing import random_graph

SEEDS = [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_cyclic_pdf_and_moments_vs_mpmath(seed):
    g = random_graph(seed, nr_states=5, nr_params=2)
    theta = np.array([0.7, 1.9])
    times = np.array([0.0, 0.05, 0.4, 1.5, 4.0, 12.0])
    pmf, mom, dpmf, dmom = engine_eval(g, theta, times, 3, jacobian=True)
    assert_rel_close(pmf[0], mp_pdf(g, theta, times), 1e-12, what="pdf")
    assert_rel_close(mom[0], mp_moments(g, theta, 3), 1e-13, what="moments")
    assert_jacobian_close(dpmf[0], mp_pdf_jacobian(g, theta, times), what="dpdf")


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_random_cyclic_moment_jacobian_vs_mpmath(seed):
    import mpmath

    g = random_graph(seed, nr_states=4, nr_params=2)
    theta = np.array([1.1, 0.6])
    _, _, _, dmom = engine_eval(g, theta, [1.0], 2, jacobian=True)
    s = g.structure()
    C = s.coefficient_matrix()

    def moment(k):
        def f(th):
            w = [
                mpmath.mpf(float(c)) + sum(C[e, p] * th[p] for p in range(2))
                for e, c in enumerate(s.constant)
            ]
            n = s.nr_states
            M = mpmath.zeros(n, n)
            for e, wv in enumerate(w):
                i, j = int(s.src[e]), int(s.dst[e])
                M[i, i] += wv
                if j >= 0:
                    M[i, j] -= wv
            x = mpmath.matrix([[1] for _ in range(n)])
            for _ in range(k):
                x = mpmath.lu_solve(M, x)
            return math.factorial(k) * sum(mpmath.mpf(float(s.alpha[i])) * x[i] for i in range(n))

        return f

    for k in (1, 2):
        expected = [mp_derivative(moment(k), theta, p) for p in range(2)]
        assert_rel_close(dmom[0, k - 1], expected, 1e-10, what=f"dmoment {k}")


def test_pdf_vs_scipy_expm_batch(rng):
    g = random_graph(11, nr_states=6, nr_params=3)
    thetas = rng.uniform(0.2, 2.0, (7, 3))
    times = rng.uniform(0, 5, 9)  # unsorted on purpose
    pmf, _ = engine_eval(g, thetas, times, 0)
    for b, theta in enumerate(thetas):
        S, s = g.sub_intensity(theta)
        expected = [g.alpha @ expm(S * t) @ s for t in times]
        assert_rel_close(pmf[b], expected, 1e-11, what=f"row {b}")  # scipy's expm is the weak link


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_rewards_with_zeros_vs_dense_transformation(seed):
    g = random_graph(seed, nr_states=6, nr_params=2, rewards=True, zero_reward_fraction=0.4)
    assert np.any(g.rewards == 0) or seed > 0
    theta = np.array([0.9, 1.4])
    times = np.array([0.02, 0.3, 1.0, 3.0, 9.0])
    pmf, mom, dpmf, _ = engine_eval(g, theta, times, 3, jacobian=True)
    alpha_p, Sp, _ = reward_transformed(g, theta)
    assert_rel_close(pmf[0], mp_phase_type_pdf(alpha_p, Sp, times), 1e-12, what="reward pdf")
    assert_rel_close(
        mom[0], mp_moments(g, theta, 3, rewards=g.rewards), 1e-13, what="reward moments"
    )
    # Jacobian of the transformed density (not linear in theta) by 40-digit differentiation.
    for q, t in enumerate(times[:3]):
        for p in range(2):
            expected = mp_derivative(lambda th, t=t: mp_reward_pdf(g, th, mpmath.mpf(t)), theta, p)
            assert dpmf[0, q, p] == pytest.approx(
                expected, rel=1e-10, abs=1e-12 * np.abs(dpmf).max()
            )


def test_reward_jacobian_vs_van_loan_on_transformed_chain():
    # With all rewards positive the transformation is linear: Van Loan applies exactly.
    g0 = random_graph(7, nr_states=5, nr_params=2)
    r = np.array([0.5, 2.0, 1.0, 3.0, 0.25])
    g = g0.with_rewards(r)
    scaled = Graph.from_edges(
        g0.alpha,
        [
            (int(s), int(d), c / r[s], coefs / r[s])
            for s, d, c, coefs in zip(
                g0.structure().src,
                g0.structure().dst,
                g0.structure().constant,
                g0.structure().coefficient_matrix(),
                strict=True,
            )
        ],
        nr_params=2,
    )
    theta = np.array([0.8, 1.2])
    times = np.array([0.1, 1.0, 4.0])
    pmf, _, dpmf, _ = engine_eval(g, theta, times, 1, jacobian=True)
    assert_rel_close(pmf[0], mp_pdf(scaled, theta, times), 1e-12)
    assert_jacobian_close(dpmf[0], mp_pdf_jacobian(scaled, theta, times))


def test_all_rewards_zero_gives_zero_density():
    g = random_graph(3, nr_states=3, nr_params=1).with_rewards([0.0, 0.0, 0.0])
    pmf, mom = engine_eval(g, [1.0], [0.5, 1.0], 2)
    assert np.all(pmf == 0.0)
    assert np.all(mom == 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_discrete_vs_dense(seed):
    g = random_graph(seed, nr_states=5, nr_params=2, discrete=True)
    theta = np.array([0.6, 0.9])
    ns = np.arange(0, 120)
    pmf, mom, dpmf, dmom = engine_eval(g, theta, ns.astype(float), 3, jacobian=True)
    T, t = g.sub_intensity(theta)
    alpha = g.alpha
    assert_rel_close(pmf[0], discrete_pmf_dense(alpha, T, t, ns), 1e-12, what="discrete pmf")
    # Raw moments by summing the series to convergence (independent of the engine's formula).
    big = np.arange(0, 4000)
    probs = discrete_pmf_dense(alpha, T, t, big[:1]).tolist()
    v = alpha.copy()
    for _ in big[1:]:
        probs.append(v @ t)
        v = v @ T
    probs = np.array(probs)
    series = [np.sum(probs * big.astype(float) ** k) for k in (1, 2, 3)]
    assert_rel_close(mom[0], series, 1e-12, what="discrete moments")
    # Jacobian of the pmf by the product rule on dense matrices.
    for p in range(2):
        unit = np.zeros(2)
        unit[p] = 1.0
        T1, t1 = g.sub_intensity(unit)
        T0, t0 = g.sub_intensity(np.zeros(2))
        dT, dt = T1 - T0, t1 - t0
        expected = []
        for n in ns:
            if n == 0:
                expected.append(0.0)
                continue
            d = alpha @ np.linalg.matrix_power(T, n - 1) @ dt
            for j in range(n - 1):
                d += (
                    alpha
                    @ np.linalg.matrix_power(T, j)
                    @ dT
                    @ np.linalg.matrix_power(T, n - 2 - j)
                    @ t
                )
            expected.append(d)
        assert_jacobian_close(
            np.array(dpmf[0, :, p])[:, None], np.array(expected)[:, None], what="discrete dpmf"
        )
    assert np.all(np.isfinite(dmom))


def test_stiff_chain_vs_mpmath():
    # Fast internal cycling (rate 1e3 each way) with a slow exit: lambda * t up to 2e4.
    g = Graph.from_edges(
        [1.0, 0.0],
        [(0, 1, 0.0, [1.0, 0.0]), (1, 0, 0.0, [1.0, 0.0]), (1, -1, 0.0, [0.0, 1.0])],
        nr_params=2,
    )
    theta = np.array([1000.0, 1.0])
    times = np.array([0.001, 0.1, 1.0, 5.0, 20.0])
    pmf, mom, dpmf, _ = engine_eval(g, theta, times, 2, jacobian=True)
    assert_rel_close(pmf[0], mp_pdf(g, theta, times), 1e-12, what="stiff pdf")
    assert_rel_close(mom[0], mp_moments(g, theta, 2), 1e-13)
    assert_jacobian_close(dpmf[0], mp_pdf_jacobian(g, theta, times), what="stiff dpdf")


def test_far_tail_is_relatively_accurate():
    # Erlang(3, 1) far out (~1e-83 at t = 200) and near 0 (~5e-19 at t = 1e-9), relative 1e-12.
    edges = [(0, 1, 1.0, None), (1, 2, 1.0, None), (2, -1, 1.0, None)]
    g = Graph.from_edges([1.0, 0.0, 0.0], edges, nr_params=0)
    times = np.array([1e-9, 1e-4, 30.0, 60.0, 120.0, 200.0])
    pmf, _ = engine_eval(g, np.zeros((1, 0)), times, 0)
    expected = times**2 / 2 * np.exp(-times)
    np.testing.assert_allclose(pmf[0], expected, rtol=1e-12)


def test_times_in_any_order_and_repeated():
    g = random_graph(4, nr_states=4, nr_params=1)
    times = np.array([3.0, 0.5, 3.0, 0.0, 1.2])
    pmf, _ = engine_eval(g, [1.0], times, 0)
    order = np.argsort(times)
    sorted_pmf, _ = engine_eval(g, [1.0], times[order], 0)
    np.testing.assert_array_equal(pmf[0][order], sorted_pmf[0])
    assert pmf[0, 0] == pmf[0, 2]


def test_level_shortcut_is_taken_and_exact():
    """Level-structured graphs (coalescents) use the lumped-level series: check it exactly."""
    from ptdcore_backends.pybind11 import prepare

    from ptdcore.coalescent import kingman_graph

    diamond = Graph.from_edges(
        [1.0, 0.0, 0.0, 0.0],
        [
            (0, 1, 0.0, [1.0, 0.0]),
            (0, 2, 0.5, [0.0, 1.0]),
            (1, 3, 0.0, [0.5, 0.0]),  # level 1: both states leave at 0.5 + 0.5 th0 + th1
            (1, -1, 0.5, [0.0, 1.0]),
            (2, 3, 0.25, [0.0, 0.0]),
            (2, -1, 0.25, [0.5, 1.0]),
            (3, -1, 0.0, [1.0, 1.0]),
        ],
        nr_params=2,
    )
    for g, theta in ((diamond, np.array([0.7, 1.9])), (kingman_graph(6), np.array([1.3]))):
        assert prepare(g.structure()).level_structured
        times = np.array([0.0, 0.05, 0.4, 1.5, 4.0, 12.0])
        pmf, _, dpmf, _ = engine_eval(g, theta, times, 1, jacobian=True)
        assert_rel_close(pmf[0], mp_pdf(g, theta, times), 1e-12, what="level pdf")
        assert_jacobian_close(dpmf[0], mp_pdf_jacobian(g, theta, times), what="level dpdf")


def test_level_shortcut_not_taken_when_rates_differ_within_a_level():
    from ptdcore_backends.pybind11 import prepare

    g = Graph.from_edges(
        [1.0, 0.0, 0.0],
        [(0, 1, 1.0, None), (0, 2, 1.0, None), (1, -1, 1.0, None), (2, -1, 2.0, None)],
        nr_params=0,
    )
    assert not prepare(g.structure()).level_structured
    pmf, _ = engine_eval(g, np.zeros((1, 0)), [0.5, 2.0], 0)
    assert_rel_close(pmf[0], mp_pdf(g, np.zeros(0), [0.5, 2.0]), 1e-12)
