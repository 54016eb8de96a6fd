"""The JAX model on every backend: transforms, batching, errors, aliases, lax.scan at scale."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ALL_BACKENDS, engine_eval, require_backend

import ptdcore
from ptdcore import Graph
from ptdcore.coalescent import kingman_graph
from ptdcore.testing import random_graph

BACKENDS = ALL_BACKENDS


def make_model(graph, nr_moments, backend):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # legacy
        return ptdcore.model(graph, nr_moments=nr_moments, backend=backend)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return require_backend(request.param)


@pytest.fixture(scope="module")
def graph():
    return random_graph(21, nr_states=5, nr_params=2)


THETA = np.array([0.8, 1.3])
TIMES = np.array([0.1, 0.7, 2.0])


def test_value_jit_and_backend_attribute(graph, backend):
    m = make_model(graph, 3, backend)
    assert m.backend.name == backend
    pmf, mom = jax.jit(m)(THETA, TIMES)
    ref_pmf, ref_mom = engine_eval(graph, THETA, TIMES, 3)
    np.testing.assert_allclose(pmf, ref_pmf[0], rtol=1e-14)
    np.testing.assert_allclose(mom, ref_mom[0], rtol=1e-14)


def test_grad_jacfwd_jacrev_match_engine_jacobian(graph, backend):
    m = make_model(graph, 2, backend)
    _, _, dpmf, dmom = engine_eval(graph, THETA, TIMES, 2, jacobian=True)
    np.testing.assert_allclose(jax.jacfwd(lambda th: m(th, TIMES)[0])(THETA), dpmf[0], rtol=1e-13)
    np.testing.assert_allclose(jax.jacrev(lambda th: m(th, TIMES)[1])(THETA), dmom[0], rtol=1e-13)
    w = np.array([0.3, -1.0, 2.0])
    g = jax.grad(lambda th: jnp.dot(w, m(th, TIMES)[0]) + m(th, TIMES)[1][1])(THETA)
    np.testing.assert_allclose(g, w @ dpmf[0] + dmom[0, 1], rtol=1e-13)


def test_vmap_over_theta_times_and_nested(graph, backend):
    m = make_model(graph, 2, backend)
    thetas = np.array([[0.5, 1.0], [1.0, 2.0], [2.0, 0.4]])
    times_b = np.array([[0.1, 0.2, 0.3], [1.0, 1.5, 2.0]])
    ref_pmf, ref_mom = engine_eval(graph, thetas, TIMES, 2)
    pmf, mom = jax.vmap(m, in_axes=(0, None))(thetas, TIMES)
    np.testing.assert_allclose(pmf, ref_pmf, rtol=1e-14)
    np.testing.assert_allclose(mom, ref_mom, rtol=1e-14)
    pmf, mom = jax.vmap(m, in_axes=(None, 0))(THETA, times_b)
    for i in range(2):
        np.testing.assert_allclose(
            pmf[i], engine_eval(graph, THETA, times_b[i], 0)[0][0], rtol=1e-14
        )
    np.testing.assert_allclose(mom, np.broadcast_to(engine_eval(graph, THETA, [], 2)[1], (2, 2)))
    pmf, _ = jax.vmap(m)(thetas[:2], times_b)
    for i in range(2):
        np.testing.assert_allclose(
            pmf[i], engine_eval(graph, thetas[i], times_b[i], 0)[0][0], rtol=1e-14
        )
    nested = jax.jit(jax.vmap(jax.vmap(m, in_axes=(None, 0)), in_axes=(0, None)))(thetas, times_b)
    assert nested[0].shape == (3, 2, 3) and nested[1].shape == (3, 2, 2)
    np.testing.assert_allclose(
        nested[0][2, 1], engine_eval(graph, thetas[2], times_b[1], 0)[0][0], rtol=1e-14
    )


def test_vmap_grad_matches_engine(graph, backend):
    m = make_model(graph, 2, backend)
    thetas = np.array([[0.5, 1.0], [1.0, 2.0], [2.0, 0.4]])

    def loglik(th):
        return jnp.sum(jnp.log(m(th, TIMES)[0]))

    got = jax.jit(jax.vmap(jax.grad(loglik)))(thetas)
    pmf, _, dpmf, _ = engine_eval(graph, thetas, TIMES, 2, jacobian=True)
    want = np.einsum("btp,bt->bp", dpmf, 1 / pmf)
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_invalid_theta_nan_rows_under_vmap(graph, backend):
    m = make_model(graph, 1, backend)
    thetas = jnp.array([[1.0, 1.0], [-5.0, 1.0], [1.0, 2.0]])
    pmf, mom = jax.jit(jax.vmap(m, in_axes=(0, None)))(thetas, TIMES)
    assert np.all(np.isnan(pmf[1])) and np.isnan(mom[1, 0])
    assert np.all(np.isfinite(np.asarray(pmf)[[0, 2]]))


def test_shape_errors_name_the_argument(graph):
    m = make_model(graph, 1, "pybind11")
    with pytest.raises(ValueError, match=r"theta must have shape \(2,\).*got shape \(3,\)"):
        m(jnp.ones(3), TIMES)
    with pytest.raises(ValueError, match=r"times must have shape \(T,\)"):
        m(THETA, jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="finite and >= 0"):
        m(THETA, jnp.array([-1.0]))
    with pytest.raises(NotImplementedError, match="times"):
        jax.grad(lambda t: m(THETA, t)[0].sum())(jnp.array([1.0]))


def test_backend_input_errors(graph):
    b = ptdcore.get_backend("cffi")
    with pytest.raises(ValueError, match=r"theta must have shape \(B, 2\).*got shape \(2,\)"):
        b.compute_pmf_and_moments(graph.structure(), np.ones(2), TIMES, 1)
    with pytest.raises(ValueError, match="nr_moments"):
        b.compute_pmf_and_moments(graph.structure(), np.ones((1, 2)), TIMES, -1)


def test_legacy_selection_warns():
    with pytest.warns(DeprecationWarning, match="migration"):
        ptdcore.model(kingman_graph(3), backend="legacy")


def test_migration_aliases(graph):
    """The seed's functions work for one release, each with the one deprecation warning
    naming its replacement."""
    times = jnp.array([0.5, 1.0])
    replacement = "is deprecated and will be removed in the next release; use ptdcore.model"
    with pytest.warns(DeprecationWarning, match=replacement):
        f = Graph.pmf_and_moments_from_graph(graph, nr_moments=2, backend="cffi")
    pmf, mom = f(THETA, times)
    ref_pmf, ref_mom = engine_eval(graph, THETA, times, 2)
    np.testing.assert_allclose(pmf, ref_pmf[0], rtol=1e-14)
    with pytest.warns(DeprecationWarning, match=replacement):
        pmf_fn = Graph.pmf_from_graph(graph, backend="pybind11")
    np.testing.assert_allclose(pmf_fn(THETA, times), ref_pmf[0], rtol=1e-14)
    with pytest.warns(DeprecationWarning, match=replacement):
        moments_fn = Graph.moments_from_graph(graph, nr_moments=2)
    np.testing.assert_allclose(moments_fn(THETA), ref_mom[0], rtol=1e-14)
    with pytest.warns(DeprecationWarning):
        legacy = Graph.pmf_and_moments_from_graph(graph, nr_moments=2, use_pybind11=False)
    assert legacy.backend.name == "legacy"
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(ValueError, match="discrete=True but the graph is continuous"),
    ):
        Graph.pmf_and_moments_from_graph(graph, discrete=True)


def test_moved_module_paths_warn_and_give_the_new_modules():
    import importlib
    import sys

    from ptdcore._compat import MOVED_MODULES

    for old, new in MOVED_MODULES.items():
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match=f"{old} is deprecated.*use {new}"):
            module = importlib.import_module(old)
        assert module is importlib.import_module(new)
        assert module.__spec__.name == new  # (its relative imports keep working)


def test_discrete_model_through_jax(backend):
    g = Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1, discrete=True)
    m = make_model(g, 2, backend)
    p = 0.3
    pmf, mom = m(jnp.array([p]), jnp.array([1, 2, 3]))
    np.testing.assert_allclose(pmf, [p, p * (1 - p), p * (1 - p) ** 2], rtol=1e-14)
    np.testing.assert_allclose(
        jax.grad(lambda th: m(th, jnp.array([2]))[0][0])(jnp.array([p])), [1 - 2 * p]
    )
    with pytest.raises(ValueError, match="whole numbers"):
        m(jnp.array([p]), jnp.array([1.5]))


def test_seed_failing_scenario_scan_of_vmapped_grads(backend):
    """jit(vmap(grad)) of log-likelihood + moment penalty, 100 particles, 100 scan steps."""
    g = kingman_graph(5)
    m = make_model(g, 2, backend)
    data = jnp.array(np.random.default_rng(0).exponential(1.6, 30))
    target = jnp.array([jnp.mean(data), jnp.mean(data**2)])

    def objective(log_theta):
        theta = jnp.exp(log_theta)
        pmf, mom = m(theta, data)
        return jnp.sum(jnp.log(pmf)) - jnp.sum((mom - target) ** 2)

    grad_all = jax.vmap(jax.grad(objective))

    @jax.jit
    def run(particles):
        def step(p, _):
            return p + 1e-3 * grad_all(p), None

        return jax.lax.scan(step, particles, None, length=100)[0]

    particles = jnp.linspace(-1.0, 1.0, 100)[:, None]
    out = run(particles)
    assert out.shape == (100, 1) and bool(jnp.all(jnp.isfinite(out)))
    assert float(jnp.std(out)) < float(jnp.std(particles))  # the particles contract
