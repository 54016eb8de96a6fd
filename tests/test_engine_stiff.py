"""Stiff and long-time cases, against closed forms and 50-digit dense references.

The engine chooses between the uniformisation series and the squaring ladder per
theta (cpp/include/ptdcore/method.hpp); these cases are the ones where the series
alone loses accuracy (rounding growing with lambda t) or cannot run (lambda t beyond
~4e6), so they exercise the ladder.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from conftest import engine_eval
from references import mp_hypoexponential

from ptdcore import Graph
from ptdcore.coalescent import structured_graph

DPS = 50


def two_state_chain() -> Graph:
    """State 0 leaves at rate theta to state 1, which is absorbed at rate 1."""
    return Graph.from_edges([1.0, 0.0], [(0, 1, 0.0, [1.0]), (1, -1, 1.0, [0.0])], nr_params=1)


def _two_state_exact(theta: float, t: float) -> tuple[mpmath.mpf, mpmath.mpf]:
    th, t = mpmath.mpf(theta), mpmath.mpf(t)
    a, b = mpmath.exp(-t), mpmath.exp(-th * t)
    f = th / (th - 1) * (a - b)
    df = -(a - b) / (th - 1) ** 2 + th / (th - 1) * t * b
    return f, df


@pytest.mark.parametrize("theta", [1e4, 1e5, 1e6, 1e7])
def test_two_state_chain_density_and_derivative_when_stiff(theta):
    times = np.array([1e-7, 1e-5, 1e-3, 0.1, 0.5, 1.0, 2.0, 3.3, 5.0])
    pmf, mom, dpmf, _ = engine_eval(two_state_chain(), [theta], times, 2, jacobian=True)
    with mpmath.workdps(DPS):
        for q, t in enumerate(times):
            f, df = _two_state_exact(theta, t)
            assert abs(pmf[0, q] - f) <= 1e-12 * f, (theta, t, pmf[0, q], float(f))
            # d/dtheta is -exp(-t) / theta^2 here, the sum of O(f / theta) terms that
            # nearly cancel: relative 1e-10, or 1e-15 of the natural scale f / theta.
            tol = 1e-10 * abs(df) + 1e-15 * f / theta
            assert abs(dpmf[0, q, 0] - df) <= tol, (theta, t, dpmf[0, q, 0], float(df))
    expected = [1 / theta + 1, 2 * (1 / theta**2 + 1 / theta + 1)]
    np.testing.assert_allclose(mom[0], expected, rtol=1e-14)


def test_two_state_chain_far_beyond_the_series_limit():
    """lambda t up to 6e9: no NaN cut-off, and the value is exact down to 1e-261."""
    theta = 1e7
    times = np.array([5.0, 30.0, 600.0])
    pmf, _ = engine_eval(two_state_chain(), [theta], times, 0)
    with mpmath.workdps(DPS):
        for q, t in enumerate(times):
            f, _ = _two_state_exact(theta, t)
            assert abs(pmf[0, q] - f) <= 1e-12 * f


@pytest.mark.parametrize("theta2", [0.3, 1.0, 7.0])
def test_stiff_three_state_chain(theta2):
    g = Graph.from_edges(
        [1.0, 0.0, 0.0],
        [(0, 1, 20000.0, [0.0]), (1, 2, 150.0, [0.0]), (2, -1, 0.0, [1.0])],
        nr_params=1,
    )
    times = np.array([1e-4, 0.01, 0.5, 3.0, 9.0, 40.0])
    pmf, _ = engine_eval(g, [theta2], times, 0)
    with mpmath.workdps(DPS):
        for q, t in enumerate(times):
            f = mp_hypoexponential([20000.0, 150.0, theta2], t, dps=DPS)
            assert abs(pmf[0, q] - f) <= 1e-12 * f, (t, pmf[0, q], float(f))


def _mp_dense_pdf(structure, theta, times):
    """alpha exp(S t) s by mpmath's expm at DPS digits, from the dense matrix."""
    n = structure.nr_states
    w = structure.weights(theta)
    with mpmath.workdps(DPS):
        S = mpmath.zeros(n, n)
        s = mpmath.zeros(n, 1)
        for e in range(structure.nr_edges):
            i, j = int(structure.src[e]), int(structure.dst[e])
            S[i, i] -= w[e]
            if j >= 0:
                S[i, j] += w[e]
            else:
                s[i] += w[e]
        a = mpmath.matrix([[float(x) for x in structure.alpha]])
        return [(a * mpmath.expm(S * mpmath.mpf(float(t))) * s)[0] for t in times]


@pytest.mark.parametrize("migration", [1e2, 1e4, 1e6])
def test_structured_coalescent_with_fast_migration(migration):
    structure = structured_graph((2, 2)).structure()
    theta = np.array([1.0, migration])
    times = np.array([0.01, 0.3, 1.0, 2.5, 5.0])
    pmf, _, dpmf, _ = engine_eval(structured_graph((2, 2)), theta, times, 2, jacobian=True)
    assert np.all(np.isfinite(pmf)) and np.all(np.isfinite(dpmf))
    for q, f in enumerate(_mp_dense_pdf(structure, theta, times)):
        assert abs(pmf[0, q] - f) <= 1e-12 * f, (migration, times[q], pmf[0, q], float(f))


def test_structured_coalescent_gradient_finite_under_jit():
    import jax
    import jax.numpy as jnp

    import ptdcore

    model = ptdcore.model(structured_graph((2, 2)), nr_moments=2)
    data = jnp.linspace(0.05, 6.0, 50)
    thetas = jnp.array([[1.0, 0.5], [1.0, 1e4], [0.7, 1e6], [1.3, 3e7]])
    loglik = jax.jit(jax.vmap(jax.value_and_grad(lambda th: jnp.log(model(th, data)[0]).sum())))
    values, grads = loglik(thetas)
    assert bool(jnp.all(jnp.isfinite(values))) and bool(jnp.all(jnp.isfinite(grads)))


def test_discrete_geometric_at_ten_million_steps():
    """P(N = n) = (1 - p)^(n - 1) p far beyond the series limit."""
    g = Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1, discrete=True)
    p = 1e-6
    steps = np.array([1.0, 1e3, 1e6, 1e7, 3e7])
    pmf, _, dpmf, _ = engine_eval(g, [p], steps, 1, jacobian=True)
    with mpmath.workdps(DPS):
        pm = mpmath.mpf(p)
        for q, n in enumerate(steps):
            n = mpmath.mpf(n)
            f = (1 - pm) ** (n - 1) * pm
            df = (1 - pm) ** (n - 1) - (n - 1) * (1 - pm) ** (n - 2) * pm
            assert abs(pmf[0, q] - f) <= 1e-12 * f, (steps[q], pmf[0, q], float(f))
            assert abs(dpmf[0, q, 0] - df) <= 1e-10 * abs(df) + 1e-14 * f / p


# -- singular theta: closed classes -------------------------------------------------------


def _closed_cycle_graph(rng: np.random.Generator) -> Graph:
    """State 0 exits at rate 1 or enters a random 4-state cycle whose only exits are theta."""
    edges = [(0, -1, 1.0, [0.0]), (0, 1, 0.5, [0.0])]
    for i in range(1, 5):
        for j in range(1, 5):
            if i != j and (j == i % 4 + 1 or rng.random() < 0.4):
                edges.append((i, j, float(rng.uniform(0.1, 3.0)), [0.0]))
        edges.append((i, -1, 0.0, [float(rng.uniform(0.5, 2.0))]))
    return Graph.from_edges(np.eye(5)[0], edges, nr_params=1)


def test_closed_cycles_give_infinite_moments_and_correct_density():
    rng = np.random.default_rng(7)
    times = np.array([0.0, 0.3, 1.0, 4.0])
    for _ in range(50):
        g = _closed_cycle_graph(rng)
        thetas = np.array([[0.0], [0.8], [0.0], [2.0]])
        pmf, mom, dpmf, dmom = engine_eval(g, thetas, times, 3, jacobian=True)
        for b in (0, 2):  # closed at theta = 0: E[T^k] = inf, derivatives undefined
            assert np.all(np.isposinf(mom[b])), mom[b]
            assert np.all(np.isnan(dmom[b]))
            # the density is still the density: the mass leaving through state 0
            expected = np.exp(-1.5 * times) * 1.0
            np.testing.assert_allclose(pmf[b], expected, rtol=1e-13)
            assert np.all(np.isfinite(dpmf[b]))
        for b in (1, 3):  # the other rows are untouched by their neighbours
            alone = engine_eval(g, thetas[b], times, 3, jacobian=True)
            for got, want in zip((pmf, mom, dpmf, dmom), alone, strict=True):
                np.testing.assert_array_equal(got[b], want[0])
            assert np.all(np.isfinite(mom[b]))


def test_closed_class_out_of_reach_keeps_finite_moments():
    """A cycle closed at theta = 0 that alpha never reaches does not matter."""
    edges = [(0, -1, 2.0, [0.0]), (1, 2, 1.0, [0.0]), (2, 1, 1.0, [0.0]), (2, -1, 0.0, [1.0])]
    g = Graph.from_edges([1.0, 0.0, 0.0], edges, nr_params=1)
    pmf, mom = engine_eval(g, [0.0], [0.5], 2)
    np.testing.assert_allclose(mom[0], [0.5, 0.5], rtol=1e-15)
    np.testing.assert_allclose(pmf[0], [2.0 * np.exp(-1.0)], rtol=1e-14)


def test_nearly_closed_cycle_moments_are_accurate():
    """Exit 1e-9 of the cycle rates: E[T] ~ 1e9, computed without cancellation."""
    edges = [(0, 1, 1.0, [0.0]), (1, 0, 1.0, [0.0]), (1, -1, 0.0, [1.0])]
    g = Graph.from_edges([1.0, 0.0], edges, nr_params=1)
    eps = 1e-9
    _, mom = engine_eval(g, [eps], [], 2)
    with mpmath.workdps(DPS):
        e = mpmath.mpf(eps)
        # E[T] from state 0: 2 / eps + 1 (two unit holding times per return, 1/eps returns)
        M = mpmath.matrix([[1, -1], [-1, 1 + e]])
        x = mpmath.lu_solve(M, mpmath.matrix([1, 1]))
        x2 = mpmath.lu_solve(M, x)
        expected = [x[0], 2 * x2[0]]
    np.testing.assert_allclose(mom[0], [float(v) for v in expected], rtol=1e-13)


# -- rewards: the transformation only where it is needed, failing alone --------------------


def test_failing_reward_transformation_does_not_poison_moments():
    """A zero-reward state closed at theta: the density is NaN, the moments stay exact."""
    edges = [(0, -1, 1.0, [0.0, 0.0]), (0, 1, 0.0, [1.0, 0.0]), (1, -1, 0.0, [0.0, 1.0])]
    g = Graph.from_edges([1.0, 0.0], edges, nr_params=2, rewards=[1.0, 0.0])
    # theta = (0, 0): state 1 out of reach, dropped; the density is exp(-t)
    pmf, mom = engine_eval(g, [0.0, 0.0], [0.0, 1.0], 2)
    np.testing.assert_allclose(pmf[0], [1.0, np.exp(-1.0)], rtol=1e-14)
    np.testing.assert_allclose(mom[0], [1.0, 2.0], rtol=1e-14)
    # theta = (0.5, 0): state 1 reachable and closed: no density of Y from the
    # transformation, and Y's moments are reported NaN (Y may stay finite)
    pmf, mom = engine_eval(g, [0.5, 0.0], [1.0], 2)
    assert np.all(np.isnan(pmf)) and np.all(np.isnan(mom))
    # moments only (no times): no transformation at all, moments exact
    _, mom = engine_eval(g, [0.5, 2.0], np.zeros(0), 2)
    np.testing.assert_allclose(mom[0], [1 / 1.5, 2 / 1.5**2], rtol=1e-14)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("scale", [1e3, 1e5])
def test_random_cyclic_graphs_with_one_stiff_parameter(seed, scale):
    from ptdcore.testing import random_graph

    g = random_graph(seed, nr_states=5, nr_params=2)
    theta = np.array([0.7 * scale, 1.3])
    times = np.array([0.01, 0.5, 2.0, 6.0])
    pmf, _ = engine_eval(g, theta, times, 0)
    for q, f in enumerate(_mp_dense_pdf(g.structure(), theta, times)):
        if f < 1e-290:  # below float64's normal range: the engine gives (near) zero
            assert 0.0 <= pmf[0, q] < 1e-290
            continue
        assert abs(pmf[0, q] - f) <= 1e-12 * f, (times[q], pmf[0, q], float(f))


@pytest.mark.parametrize("output", ["density", "cdf", "sf"])
def test_ladder_jacobian_with_many_parameters_against_reference(output):
    """Seven states (a column tail beyond the four-wide kernel) and six parameters
    (two passes of the vector-matrix kernel), stiff enough for the ladder; the
    Jacobian against the reference backend's autodiff of dense exponentials."""
    from ptdcore import get_backend
    from ptdcore.testing import random_graph

    structure = random_graph(3, nr_states=7, nr_params=6).structure()
    theta = np.array([[2e4, 0.8, 1.1, 0.6, 1.7, 0.9]])
    times = np.array([0.05, 0.4, 1.5, 3.0])
    engine = get_backend("pybind11").compute_pmf_and_moments(
        structure, theta, times, 1, jacobian=True, output=output
    )
    ref = get_backend("reference").compute_pmf_and_moments(
        structure, theta, times, 1, jacobian=True, output=output
    )
    np.testing.assert_allclose(engine[0], ref[0], rtol=1e-11)
    scale = np.abs(ref[2]).max(axis=1, keepdims=True)
    np.testing.assert_allclose(engine[2], ref[2], rtol=1e-9, atol=1e-12 * scale.max())
