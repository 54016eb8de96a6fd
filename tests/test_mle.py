"""fit_mle: maximum likelihood with standard errors from the exact Hessian."""

from __future__ import annotations

import numpy as np
import pytest

import ptdcore
from ptdcore import Graph
from ptdcore.coalescent import kingman_graph


def exponential():
    return Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1)


def test_exponential_estimate_and_standard_error_in_closed_form():
    data = np.random.default_rng(4).exponential(1 / 2.5, 80)
    fit = ptdcore.fit_mle(exponential(), data, [1.0], param_names=["rate"])
    rate = 1 / data.mean()  # the MLE; observed information n / rate^2
    assert fit.converged
    np.testing.assert_allclose(fit.theta, [rate], rtol=1e-9)
    np.testing.assert_allclose(fit.se, [rate / np.sqrt(data.size)], rtol=1e-8)
    np.testing.assert_allclose(fit.loglik, data.size * np.log(rate) - rate * data.sum(), rtol=1e-12)
    assert "rate" in fit.summary()


def test_kingman_tmrca_against_a_grid_maximum():
    m = ptdcore.model(kingman_graph(5), nr_moments=1)
    data = m.sample(np.array([1.7]), 150, seed=8)
    fit = ptdcore.fit_mle(m, data, [1.0])
    grid = np.linspace(fit.theta[0] * 0.9, fit.theta[0] * 1.1, 2001)
    logliks = [float(np.log(np.asarray(m(np.array([g]), data)[0])).sum()) for g in grid]
    assert abs(grid[int(np.argmax(logliks))] - fit.theta[0]) <= 2 * (grid[1] - grid[0])
    # se against the curvature of the grid log-likelihood (central differences)
    step = grid[1] - grid[0]
    i = int(np.argmax(logliks))
    curvature = (logliks[i + 1] - 2 * logliks[i] + logliks[i - 1]) / step**2
    np.testing.assert_allclose(fit.se[0], 1 / np.sqrt(-curvature), rtol=1e-3)


def test_two_parameters_and_clear_errors():
    edges = [(0, 1, 0.0, [1.0, 0.0]), (1, -1, 0.0, [0.0, 1.0])]
    g = Graph.from_edges([1.0, 0.0], edges, nr_params=2)
    m = ptdcore.model(g, nr_moments=0)
    data = m.sample(np.array([0.8, 3.0]), 400, seed=2)
    fit = ptdcore.fit_mle(g, data, [1.0, 2.0])
    assert fit.converged and np.all(np.isfinite(fit.se)) and fit.cov.shape == (2, 2)
    np.testing.assert_allclose(fit.cov, fit.cov.T, rtol=1e-12)
    with pytest.raises(ValueError, match=r"theta0 must have shape \(2,\)"):
        ptdcore.fit_mle(g, data, [1.0])
    with pytest.raises(ValueError, match="positive"):
        ptdcore.fit_mle(g, data, [1.0, -2.0])
    with pytest.raises(ValueError, match=r"data\[0\] = 0\.0 has zero"):
        ptdcore.fit_mle(g, np.r_[0.0, data], [1.0, 2.0])


def test_an_estimate_at_the_bound_says_so_and_has_no_standard_error():
    """A rate whose MLE is 0 (exponential data, a model with an optional extra phase):
    at_bound, NaN standard error, a warning; the other rate's standard error is the
    exponential's closed form b / sqrt(n) (the model with the bounded rate at 0)."""
    import warnings

    from ptdcore import Graph

    edges = [(0, 1, 0.0, [1.0, 0.0]), (0, -1, 0.0, [0.0, 1.0]), (1, -1, 2.0, None)]
    graph = Graph.from_edges([1.0, 0.0], edges, nr_params=2)
    data = np.random.default_rng(1).exponential(1.0, 300)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = ptdcore.fit_mle(graph, data, [0.5, 0.5], param_names=["extra", "exit"])
    assert result.at_bound.tolist() == [True, False]
    assert result.theta[0] < 1e-8 and np.isnan(result.se[0]) and np.isnan(result.cov[0]).all()
    np.testing.assert_allclose(result.theta[1], 1 / data.mean(), rtol=1e-6)
    np.testing.assert_allclose(result.se[1], result.theta[1] / np.sqrt(data.size), rtol=1e-6)
    assert any("extra" in str(w.message) and "bound" in str(w.message) for w in caught)
    assert "at its bound" in result.summary()
    interior = ptdcore.fit_mle(graph, np.random.default_rng(0).exponential(1.0, 300), [0.5, 0.5])
    assert not interior.at_bound.any() and np.isfinite(interior.se).all()


def test_any_log_likelihood_with_bounds_in_closed_form():
    """fit_mle(loglik, theta0, bounds=...): a normal sample's mean and sd (one open side,
    one bound) and a binomial proportion (two bounds), against their closed forms."""
    import jax.numpy as jnp

    x = np.random.default_rng(6).normal(3.0, 2.0, 200)

    def normal(theta):
        mu, sigma = theta
        return jnp.sum(-0.5 * ((x - mu) / sigma) ** 2 - jnp.log(sigma))

    fit = ptdcore.fit_mle(normal, [0.0, 1.0], bounds=[(None, None), (0, None)])
    mu, sigma = x.mean(), x.std()  # the MLEs
    assert fit.converged and not fit.at_bound.any()
    np.testing.assert_allclose(fit.estimate, [mu, sigma], rtol=1e-9)
    n = x.size
    np.testing.assert_allclose(fit.stderr, [sigma / np.sqrt(n), sigma / np.sqrt(2 * n)], rtol=1e-8)
    assert fit.covariance.shape == (2, 2)
    assert abs(fit.covariance[0, 1]) < 1e-8 * fit.covariance[0, 0]  # (closed form: 0)

    k, trials = 37, 120

    def binomial(theta):
        p = theta[0]
        return k * jnp.log(p) + (trials - k) * jnp.log1p(-p)

    fit = ptdcore.fit_mle(binomial, [0.5], bounds=[(0.0, 1.0)])
    p = k / trials
    assert fit.converged  # (to gtol 1e-8 of the log-likelihood's size: p to ~1e-8)
    np.testing.assert_allclose(fit.estimate, [p], rtol=1e-7)
    np.testing.assert_allclose(fit.stderr, [np.sqrt(p * (1 - p) / trials)], rtol=1e-6)


def test_an_estimate_at_an_upper_bound_says_so():
    import jax.numpy as jnp

    def all_successes(theta):  # k = n: the likelihood rises all the way to p = 1
        return 50 * jnp.log(theta[0])

    with pytest.warns(RuntimeWarning, match=r"estimate at its bound: p = 1"):
        fit = ptdcore.fit_mle(all_successes, [0.5], bounds=[(0.0, 1.0)], param_names=["p"])
    assert fit.at_bound.tolist() == [True] and np.isnan(fit.stderr[0])
    assert fit.estimate[0] > 0.999


def test_log_likelihood_form_errors_name_the_problem():
    import jax.numpy as jnp

    def f(theta):
        return -jnp.sum(theta**2)

    with pytest.raises(ValueError, match=r"theta0 of theta\[0\] = 2\.0 must lie strictly inside"):
        ptdcore.fit_mle(f, [2.0], bounds=[(0.0, 1.0)])
    with pytest.raises(ValueError, match="bounds has 1 pairs for 2 parameters"):
        ptdcore.fit_mle(f, [0.5, 0.5], bounds=[(0.0, 1.0)])
    with pytest.raises(TypeError, match="takes no data"):
        ptdcore.fit_mle(f, [1.0], [0.5])
    with pytest.raises(TypeError, match="log-likelihood of theta"):
        ptdcore.fit_mle("not a model", [1.0], [0.5])


def test_the_optimum_is_reached_where_the_value_is_below_its_rounding():
    """A log-likelihood carrying a large constant (as a multinomial of thousands of counts
    does): near the optimum its changes are below the value's rounding, so a trust region
    judged by the value stalls; the exact gradient still leads to the closed-form optimum
    (Poisson counts c: theta = c, standard errors sqrt(c))."""
    import jax.numpy as jnp

    c = np.array([3.0, 7.0])

    def loglik(theta):
        return 1e9 + jnp.sum(c * jnp.log(theta) - theta)

    fit = ptdcore.fit_mle(loglik, [40.0, 0.5], bounds=[(0, None), (0, None)])
    np.testing.assert_allclose(fit.estimate, c, rtol=1e-12)
    np.testing.assert_allclose(fit.stderr, np.sqrt(c), rtol=1e-10)
    assert fit.converged
