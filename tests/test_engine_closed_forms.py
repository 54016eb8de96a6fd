"""The engine against closed forms: Erlang, hyperexponential, Kingman, geometric, neg. binomial."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import engine_eval
from references import assert_jacobian_close, assert_rel_close, hypoexponential_pdf
from scipy import stats

from ptdcore import Graph
from ptdcore.coalescent import kingman_graph, kingman_tmrca_graph


def erlang_graph(k: int) -> Graph:
    edges = [(i, i + 1 if i + 1 < k else -1, 0.0, [1.0]) for i in range(k)]
    return Graph.from_edges(np.eye(k)[0], edges, nr_params=1)


@pytest.mark.parametrize("k", [1, 2, 5, 12])
@pytest.mark.parametrize("rate", [0.3, 1.0, 7.5])
def test_erlang_pdf_moments_and_jacobian(k, rate):
    times = np.array([0.0, 0.01, 0.5, 1.0, 3.0, 10.0, 40.0]) / rate
    pmf, mom, dpmf, dmom = engine_eval(erlang_graph(k), [rate], times, 3, jacobian=True)
    expected = stats.gamma.pdf(times, a=k, scale=1 / rate)
    assert_rel_close(pmf[0], expected, 1e-12, what="Erlang pdf")
    # d/d rate of rate^k t^(k-1) e^{-rate t} / (k-1)! = pdf * (k / rate - t)
    assert_jacobian_close(dpmf[0], (expected * (k / rate - times))[:, None], what="Erlang dpdf")
    raw = np.array([math.gamma(k + j) / math.gamma(k) / rate**j for j in (1, 2, 3)])
    assert_rel_close(mom[0], raw, 1e-13, what="Erlang moments")
    assert_rel_close(dmom[0, :, 0], -np.arange(1, 4) * raw / rate, 1e-13, what="Erlang dmoments")


def test_hyperexponential_two_parameters():
    p = 0.3
    g = Graph.from_edges(
        [p, 1 - p], [(0, -1, 0.0, [1.0, 0.0]), (1, -1, 0.0, [0.0, 1.0])], nr_params=2
    )
    lam = np.array([0.5, 4.0])
    t = np.linspace(0, 12, 25)
    pmf, mom, dpmf, dmom = engine_eval(g, lam, t, 2, jacobian=True)
    e1, e2 = np.exp(-lam[0] * t), np.exp(-lam[1] * t)
    assert_rel_close(pmf[0], p * lam[0] * e1 + (1 - p) * lam[1] * e2, 1e-12)
    expected = np.stack([p * e1 * (1 - lam[0] * t), (1 - p) * e2 * (1 - lam[1] * t)], axis=-1)
    assert_jacobian_close(dpmf[0], expected)
    assert_rel_close(
        mom[0],
        [p / lam[0] + (1 - p) / lam[1], 2 * (p / lam[0] ** 2 + (1 - p) / lam[1] ** 2)],
        1e-13,
    )
    assert_rel_close(dmom[0, 0], [-p / lam[0] ** 2, -(1 - p) / lam[1] ** 2], 1e-13)


def kingman_tmrca_moments(n, theta):
    rates = np.array([k * (k - 1) / 2 * theta for k in range(2, n + 1)])
    mean = np.sum(1 / rates)
    var = np.sum(1 / rates**2)
    return mean, var + mean**2


@pytest.mark.parametrize("n", [2, 3, 5, 10, 20, 30])
def test_kingman_sfs_tmrca_moments(n):
    theta = 0.7
    _, mom, _, dmom = engine_eval(kingman_graph(n), [theta], [1.0], 2, jacobian=True)
    m1, m2 = kingman_tmrca_moments(n, theta)
    assert_rel_close(mom[0], [m1, m2], 1e-13, what=f"Kingman n={n} moments")
    # E[T] ~ 1/theta, E[T^2] ~ 1/theta^2
    assert_rel_close(dmom[0, :, 0], [-m1 / theta, -2 * m2 / theta], 1e-13)


def test_kingman_n30_size():
    g = kingman_graph(30)
    assert g.nr_states == 5603  # partitions of 30, less the absorbing one
    assert g.nr_edges > 48000


@pytest.mark.parametrize("n", [3, 5, 7])
def test_kingman_tmrca_density_is_hypoexponential(n):
    theta = 1.3
    rates = [k * (k - 1) / 2 * theta for k in range(2, n + 1)]
    times = np.array([0.05, 0.3, 1.0, 2.5, 6.0, 15.0])
    expected = np.array([hypoexponential_pdf(rates, t) for t in times])
    for graph in (kingman_graph(n), kingman_tmrca_graph(n)):
        pmf, _ = engine_eval(graph, [theta], times, 0)
        assert_rel_close(pmf[0], expected, 1e-12, what=f"Kingman TMRCA n={n}")


@pytest.mark.parametrize("n", [2, 4, 6])
def test_total_branch_length_density_and_moments(n):
    # L = sum_k k T_k with k T_k ~ Exp((k - 1) theta / 2): hypoexponential.
    theta = 0.8
    rates = [(k - 1) * theta / 2 for k in range(2, n + 1)]
    times = np.array([0.1, 1.0, 3.0, 8.0, 20.0])
    g = kingman_graph(n, reward="total_branch_length")
    pmf, mom = engine_eval(g, [theta], times, 2)
    expected = np.array([hypoexponential_pdf(rates, t) for t in times])
    assert_rel_close(pmf[0], expected, 1e-12, what="total branch length pdf")
    h1 = sum(1 / i for i in range(1, n))
    h2 = sum(1 / i**2 for i in range(1, n))
    mean = 2 * h1 / theta
    assert_rel_close(mom[0], [mean, 4 * h2 / theta**2 + mean**2], 1e-13)


@pytest.mark.parametrize("n", [4, 6, 10])
def test_singleton_branch_length_mean(n):
    # E[xi_1] = theta_mut / 1 in mutation units: the singleton length has mean 2 / rate.
    theta = 1.7
    g = kingman_graph(n, reward="singleton")
    assert np.any(g.rewards == 0)
    _, mom = engine_eval(g, [theta], [1.0], 1)
    assert_rel_close(mom[0], [2 / theta], 1e-13)


@pytest.mark.parametrize("p", [0.05, 0.3, 0.9])
def test_geometric(p):
    g = Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1, discrete=True)
    ns = np.arange(0, 60)
    pmf, mom, dpmf, dmom = engine_eval(g, [p], ns, 3, jacobian=True)
    expected = np.where(ns >= 1, (1 - p) ** np.maximum(ns - 1, 0) * p, 0.0)
    assert_rel_close(pmf[0], expected, 1e-12)
    dexp = np.where(
        ns >= 1,
        (1 - p) ** np.maximum(ns - 1, 0) - (ns - 1) * p * (1 - p) ** np.maximum(ns - 2, 0),
        0.0,
    )
    dexp[1] = 1.0
    assert_jacobian_close(dpmf[0], dexp[:, None])
    assert_rel_close(
        mom[0], [1 / p, (2 - p) / p**2, (p**2 - 6 * p + 6) / p**3], 1e-13, what="geometric moments"
    )
    assert_rel_close(
        dmom[0, :, 0], [-1 / p**2, (p - 4) / p**3, -(p**2 - 12 * p + 18) / p**4], 1e-12
    )


@pytest.mark.parametrize("r", [1, 3, 6])
def test_negative_binomial(r):
    p = 0.35
    edges = [(i, i + 1 if i + 1 < r else -1, 0.0, [1.0]) for i in range(r)]
    g = Graph.from_edges(np.eye(r)[0], edges, nr_params=1, discrete=True)
    ns = np.arange(0, 80)
    pmf, mom = engine_eval(g, [p], ns, 2)
    # number of trials to the r-th success
    expected = stats.nbinom.pmf(ns - r, r, p)
    assert_rel_close(pmf[0], expected, 1e-12)
    mean = r / p
    assert_rel_close(mom[0], [mean, r * (1 - p) / p**2 + mean**2], 1e-13)


def test_discrete_defective_alpha_gives_mass_at_zero():
    g = Graph.from_edges([0.6], [(0, -1, 0.5, None)], nr_params=0, discrete=True)
    pmf, mom = engine_eval(g, np.zeros((1, 0)), [0, 1, 2], 1)
    assert_rel_close(pmf[0], [0.4, 0.3, 0.15], 1e-15)
    assert_rel_close(mom[0], [0.6 * 2.0], 1e-15)


@pytest.mark.parametrize("name", ["ffi", "pybind11", "cffi", "legacy"])
def test_moments_past_the_factorial_overflow(name):
    """E[T^k] = k!/2^k for an exponential of rate 2: 4.1e257 at k = 171, where k! alone
    overflows (every engine backend returned inf); its derivative -k E[T^k]/2 too."""
    import mpmath
    from conftest import require_backend

    import ptdcore

    backend = ptdcore.get_backend(require_backend(name))
    exponential = Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1)
    out = backend.compute_pmf_and_moments(
        exponential.structure(), [[2.0]], [1.0], 175, jacobian=True
    )
    for k in (20, 170, 171, 175):
        want = float(mpmath.factorial(k) / mpmath.mpf(2) ** k)
        assert abs(out.moments[0, k - 1] / want - 1) < 1e-12
        assert abs(out.dmoments[0, k - 1, 0] / (-k * want / 2) - 1) < 1e-12


@pytest.mark.parametrize("name", ["ffi", "pybind11", "cffi", "legacy"])
def test_values_at_very_large_times(name):
    """A fast phase (rate 1) then a slow one (rate 1e-20): at t = 1e20 the density is
    b exp(-b t) a / (a - b) ~ 3.7e-21, representable (it was NaN past lambda t ~ 1e18);
    Kingman's density at 1e17 underflows to 0 (was NaN)."""
    from conftest import require_backend

    import ptdcore

    backend = ptdcore.get_backend(require_backend(name))
    a, b = 1.0, 1e-20
    stiff = Graph.from_edges([1.0, 0.0], [(0, 1, 0.0, [1.0]), (1, -1, b, None)], nr_params=1)
    times = np.array([1e19, 1e20, 3e20])
    out = backend.compute_pmf_and_moments(stiff.structure(), [[a]], times, 0, jacobian=True)
    want = a * b / (a - b) * (np.exp(-b * times) - np.exp(-a * times))
    assert_rel_close(out.pmf[0], want, 1e-12)
    kingman = backend.compute_pmf_and_moments(kingman_graph(6).structure(), [[1.0]], [1e17], 0)
    assert kingman.pmf[0, 0] == 0.0
