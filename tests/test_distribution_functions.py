"""cdf, sf, quantile and sample (contract section 7) against closed forms and 50-digit values."""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from conftest import ALL_BACKENDS, require_backend
from references import mp_hypoexponential
from scipy import stats

import ptdcore
from ptdcore import Graph
from ptdcore.coalescent import kingman_graph, kingman_tmrca_graph

DPS = 50


def model(graph, backend="pybind11", nr_moments=2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # legacy
        return ptdcore.model(graph, nr_moments=nr_moments, backend=require_backend(backend))


def hypo_graph():
    edges = [(0, 1, 0.0, [1.0, 0.0]), (1, -1, 0.0, [0.0, 1.0])]
    return Graph.from_edges([1.0, 0.0], edges, nr_params=2)


def mp_hypo_sf(rates, t):
    """P(T > t) for a sum of exponentials with distinct rates, at DPS digits."""
    return mp_hypoexponential(rates, t, survival=True, dps=DPS)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_sf_and_cdf_closed_forms_on_every_backend(backend):
    m = model(hypo_graph(), backend)
    theta = np.array([0.7, 2.3])
    times = np.array([0.0, 0.05, 0.5, 2.0, 8.0])
    sf = np.asarray(m.sf(theta, times))
    cdf = np.asarray(m.cdf(theta, times))
    with mpmath.workdps(DPS):
        expected = [mp_hypo_sf(theta, t) for t in times]
    np.testing.assert_allclose(sf, [float(x) for x in expected], rtol=1e-12)
    np.testing.assert_allclose(cdf, [float(1 - x) for x in expected], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("backend", ["ffi", "pybind11", "cffi", "legacy"])
def test_far_tails_are_relatively_accurate(backend):
    """sf down to 1e-80 (right tail) and cdf down to 1e-30 (left tail), not 1 - other."""
    m = model(hypo_graph(), backend)
    theta = np.array([0.7, 2.3])
    right = np.array([60.0, 150.0, 260.0])
    left = np.array([1e-15, 1e-9, 1e-4])
    sf = np.asarray(m.sf(theta, right))
    cdf = np.asarray(m.cdf(theta, left))
    for t, got in zip(right, sf, strict=True):
        want = mp_hypo_sf(theta, t)
        assert want < 1e-17 and abs(got - want) <= 1e-12 * want, (t, got, float(want))
    for t, got in zip(left, cdf, strict=True):
        with mpmath.workdps(DPS):  # a*b*t^2/2 - ..., exactly
            a, b, tt = (mpmath.mpf(x) for x in (*theta, t))
            want = 1 - (b * mpmath.exp(-a * tt) - a * mpmath.exp(-b * tt)) / (b - a)
        assert abs(got - want) <= 1e-12 * want, (t, got, float(want))


def test_kingman_level_shortcut_sf_and_cdf():
    """Kingman n=8 on the SFS space (level shortcut): TMRCA is hypoexponential."""
    m = model(kingman_graph(8))
    rates = [k * (k - 1) / 2 for k in range(2, 9)]
    times = np.array([0.01, 0.3, 1.0, 4.0, 40.0])
    sf = np.asarray(m.sf(np.array([1.0]), times))
    cdf = np.asarray(m.cdf(np.array([1.0]), times))
    for q, t in enumerate(times):
        want = mp_hypo_sf(rates, t)
        assert abs(sf[q] - want) <= 1e-12 * want
        assert abs(cdf[q] - (1 - want)) <= 1e-12 * (1 - want)


def test_stiff_ladder_sf_and_cdf():
    """Two states, rate 1e6 then 1: the squaring ladder's sf and cdf."""
    g = Graph.from_edges([1.0, 0.0], [(0, 1, 0.0, [1.0]), (1, -1, 1.0, [0.0])], nr_params=1)
    m = model(g)
    theta = 1e6
    times = np.array([1e-7, 1e-3, 0.5, 5.0, 60.0])
    sf = np.asarray(m.sf(np.array([theta]), times))
    cdf = np.asarray(m.cdf(np.array([theta]), times))
    for q, t in enumerate(times):
        want = mp_hypo_sf([theta, 1.0], t)
        assert abs(sf[q] - want) <= 1e-12 * want, (t, sf[q], float(want))
        assert abs(cdf[q] - (1 - want)) <= 1e-12 * (1 - want), (t, cdf[q], float(1 - want))


def test_rewards_sf_of_total_branch_length():
    """Kingman n=3 total branch length: Y ~ Exp(1) + Exp(1/2)."""
    m = model(kingman_graph(3, reward="total_branch_length"))
    times = np.array([0.2, 1.0, 5.0, 30.0])
    sf = np.asarray(m.sf(np.array([1.0]), times))
    for q, t in enumerate(times):
        want = mp_hypo_sf([1.0, 0.5], t)
        assert abs(sf[q] - want) <= 1e-12 * want


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_discrete_negative_binomial_cdf_and_sf(backend):
    r, p = 3, 0.3
    edges = [(i, i + 1 if i + 1 < r else -1, 0.0, [1.0]) for i in range(r)]
    m = model(Graph.from_edges(np.eye(r)[0], edges, nr_params=1, discrete=True), backend)
    steps = np.arange(0.0, 40.0)
    pmf = [math.comb(int(k) - 1, r - 1) * p**r * (1 - p) ** (k - r) if k >= r else 0 for k in steps]
    cdf = np.cumsum(pmf)
    np.testing.assert_allclose(np.asarray(m.cdf(np.array([p]), steps)), cdf, rtol=1e-12)
    np.testing.assert_allclose(
        np.asarray(m.sf(np.array([p]), steps)), 1 - cdf, rtol=1e-10, atol=1e-15
    )


def test_cdf_and_sf_work_under_jit_vmap_and_grad():
    m = model(hypo_graph(), "ffi")
    times = jnp.array([0.5, 2.0])
    thetas = jnp.array([[0.7, 2.3], [1.1, 0.4]])
    sf = jax.jit(jax.vmap(m.sf, in_axes=(0, None)))(thetas, times)
    assert sf.shape == (2, 2)

    def exact_sf(th, t):
        a, b = th[0], th[1]
        return (b * jnp.exp(-a * t) - a * jnp.exp(-b * t)) / (b - a)

    g = jax.grad(lambda th: m.sf(th, times).sum())(thetas[0])
    want = jax.grad(lambda th: exact_sf(th, times).sum())(thetas[0])
    np.testing.assert_allclose(g, want, rtol=1e-10)
    g = jax.grad(lambda th: jnp.log(m.cdf(th, times)).sum())(thetas[1])
    want = jax.grad(lambda th: jnp.log(1 - exact_sf(th, times)).sum())(thetas[1])
    np.testing.assert_allclose(g, want, rtol=1e-10)


# -- quantile -------------------------------------------------------------------------------


def test_quantile_inverts_the_cdf():
    m = model(kingman_graph(6), "ffi")
    theta = jnp.array([1.3])
    q = jnp.array([1e-10, 0.01, 0.25, 0.5, 0.9, 0.999999])
    t = m.quantile(theta, q)
    np.testing.assert_allclose(np.asarray(m.cdf(theta, t)), q, rtol=1e-12)
    assert m.quantile(theta, 0.0) == 0.0
    assert m.quantile(theta, jnp.zeros((2, 2))).shape == (2, 2)


def test_quantile_gradient_against_the_closed_form():
    """Exponential(theta): quantile = -log(1 - q) / theta."""
    g = Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1)
    m = model(g, "ffi")
    for q in (0.1, 0.5, 0.95):
        value, grad = jax.value_and_grad(lambda th, q=q: m.quantile(th, q))(jnp.array([2.0]))
        np.testing.assert_allclose(value, -np.log1p(-q) / 2.0, rtol=1e-13)
        np.testing.assert_allclose(grad[0], np.log1p(-q) / 4.0, rtol=1e-10)
    under_jit = jax.jit(jax.vmap(m.quantile, in_axes=(0, None)))(jnp.array([[1.0], [2.0]]), 0.5)
    np.testing.assert_allclose(under_jit, np.log(2) / np.array([1.0, 2.0]), rtol=1e-13)


def test_quantile_of_a_defective_alpha_and_discrete_models():
    # alpha sums to 0.6: P(T = 0) = 0.4, so every q <= 0.4 has quantile 0
    g = Graph.from_edges([0.6], [(0, -1, 0.0, [1.0])], nr_params=1)
    m = model(g, "pybind11")
    t = m.quantile(jnp.array([1.0]), jnp.array([0.1, 0.4, 0.7]))
    np.testing.assert_allclose(t, [0.0, 0.0, -np.log(1 - 0.3 / 0.6)], rtol=1e-13)
    # geometric(p): the smallest n with 1 - (1 - p)^n >= q
    geo = model(Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1, discrete=True))
    q = np.array([0.05, 0.2, 0.5, 0.99])
    expected = np.ceil(np.log1p(-q) / np.log1p(-0.2))
    np.testing.assert_array_equal(geo.quantile(jnp.array([0.2]), q), expected)


def test_quantile_rejects_levels_outside_zero_one():
    m = model(hypo_graph())
    for bad in (1.0, -0.1, [0.5, 1.2], np.nan):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            m.quantile(jnp.array([1.0, 2.0]), bad)


# -- sample ---------------------------------------------------------------------------------


def test_sample_kingman_tmrca_against_the_exact_cdf():
    m = model(kingman_graph(10))
    draws = m.sample(np.array([1.0]), 1_000_000, seed=11)
    assert draws.shape == (1_000_000,)
    first = np.sort(draws[:20_000])
    ks = stats.kstest(first, lambda t: np.asarray(m.cdf(np.array([1.0]), t)))
    assert ks.pvalue > 1e-3, ks
    mean, second = np.asarray(m(np.array([1.0]), np.zeros(0))[1])
    se = np.sqrt((second - mean**2) / draws.size)
    assert abs(draws.mean() - mean) < 5 * se


def test_sample_is_reproducible_and_independent_of_threads():
    from ptdcore_backends.pybind11 import prepare

    m = model(kingman_graph(5))
    a = m.sample(np.array([0.8]), (3, 40_000), seed=5)
    b = m.sample(np.array([0.8]), (3, 40_000), seed=5)
    np.testing.assert_array_equal(a, b)
    single = prepare(m.structure).sample(np.array([0.8]), 120_000, 5, threads=1)
    np.testing.assert_array_equal(a.ravel(), single)
    assert not np.array_equal(a, m.sample(np.array([0.8]), (3, 40_000), seed=6))


def test_sample_discrete_chi_square_and_rewards_moments():
    r, p = 3, 0.4
    edges = [(i, i + 1 if i + 1 < r else -1, 0.0, [1.0]) for i in range(r)]
    m = model(Graph.from_edges(np.eye(r)[0], edges, nr_params=1, discrete=True))
    draws = m.sample(np.array([p]), 200_000, seed=3).astype(int)
    support = np.arange(r, 25)
    observed = np.array([(draws == k).sum() for k in support])
    expected = draws.size * np.asarray(m(np.array([p]), support.astype(float))[0])
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert stats.chi2.sf(chi2, support.size - 1) > 1e-3
    # rewards: singleton branch length of Kingman n=4, against the exact moments
    mr = model(kingman_graph(4, reward="singleton"))
    y = mr.sample(np.array([1.0]), 400_000, seed=9)
    mean, second = np.asarray(mr(np.array([1.0]), np.zeros(0))[1])
    assert abs(y.mean() - mean) < 5 * np.sqrt((second - mean**2) / y.size)
    assert abs((y**2).mean() - second) < 0.02 * second


def test_sample_errors_and_special_cases():
    m = model(kingman_tmrca_graph(4))
    for size in (-1, 2.5, (3, -2), True):
        with pytest.raises(ValueError, match="size"):
            m.sample(np.array([1.0]), size)
    with pytest.raises(ValueError, match=r"theta must have shape \(1,\)"):
        m.sample(np.array([1.0, 2.0]), 3)
    assert m.sample(np.array([1.0]), seed=1).shape == ()
    assert np.all(np.isnan(m.sample(np.array([-1.0]), 4, seed=1)))
    # a closed cycle at theta = 0 that the chain enters: infinite draws
    edges = [(0, 1, 1.0, [0.0]), (1, 0, 1.0, [0.0]), (1, -1, 0.0, [1.0])]
    closed = model(Graph.from_edges([1.0, 0.0], edges, nr_params=1))
    assert np.all(np.isinf(closed.sample(np.array([0.0]), 10, seed=2)))
