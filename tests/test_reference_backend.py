"""The independent reference backend: closed forms, limits, JAX transforms, and as the oracle."""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ENGINE_BACKENDS, require_backend
from jax.test_util import check_grads

import ptdcore
from ptdcore import Graph
from ptdcore.coalescent import kingman_graph
from ptdcore.testing import random_graph


@pytest.fixture(scope="module")
def reference():
    return ptdcore.get_backend(require_backend("reference"))


def hypoexponential(nr_params=2):
    """State 0 at rate theta_0 to state 1, absorbed at rate theta_1."""
    edges = [(0, 1, 0.0, [1.0, 0.0]), (1, -1, 0.0, [0.0, 1.0])]
    return Graph.from_edges([1.0, 0.0], edges, nr_params=nr_params)


def hypo_pdf(theta, t):
    a, b = theta[0], theta[1]
    return a * b / (b - a) * (jnp.exp(-a * t) - jnp.exp(-b * t))


def test_registered_like_the_others_and_never_the_default(monkeypatch):
    from importlib import metadata

    eps = {ep.name: ep.value for ep in metadata.entry_points(group="ptdcore")}
    assert eps["reference"] == "ptdcore_backends.reference"
    monkeypatch.delenv("PTDCORE_BACKEND", raising=False)
    assert ptdcore.get_backend().name != "reference"
    info = {i.name: i for i in ptdcore.backend_info()}["reference"]
    assert info.capabilities.differentiable and info.capabilities.rtol <= 1e-11


def test_closed_forms(reference):
    theta = np.array([[0.7, 2.3]])
    times = np.array([0.0, 0.1, 1.0, 3.0, 8.0])
    out = reference.compute_pmf_and_moments(
        hypoexponential().structure(), theta, times, 2, jacobian=True
    )
    expected = np.asarray(hypo_pdf(theta[0], times))
    np.testing.assert_allclose(out.pmf[0], expected, rtol=1e-13, atol=1e-16)
    a, b = theta[0]
    np.testing.assert_allclose(
        out.moments[0], [1 / a + 1 / b, 2 * (1 / a**2 + 1 / (a * b) + 1 / b**2)], rtol=1e-14
    )
    jac = jax.jacfwd(hypo_pdf)(jnp.asarray(theta[0]), jnp.asarray(times))
    np.testing.assert_allclose(out.dpmf[0], np.asarray(jac), rtol=1e-12, atol=1e-15)


def test_discrete_negative_binomial(reference):
    r = 3
    edges = [(i, i + 1 if i + 1 < r else -1, 0.0, [1.0]) for i in range(r)]
    g = Graph.from_edges(np.eye(r)[0], edges, nr_params=1, discrete=True)
    p = 0.3
    steps = np.arange(0.0, 30.0)
    out = reference.compute_pmf_and_moments(g.structure(), [[p]], steps, 2)
    expected = [
        math.comb(int(k) - 1, r - 1) * p**r * (1 - p) ** (k - r) if k >= r else 0.0 for k in steps
    ]
    np.testing.assert_allclose(out.pmf[0], expected, rtol=1e-12, atol=1e-300)
    mean = r / p
    np.testing.assert_allclose(out.moments[0], [mean, r * (1 - p) / p**2 + mean**2], rtol=1e-13)


def test_reward_moments_and_density(reference):
    """Total branch length of Kingman n=3: sum of Exp(k (k - 1) / 2) x k, k = 3, 2."""
    g = kingman_graph(3, reward="total_branch_length")
    out = reference.compute_pmf_and_moments(g.structure(), [[1.0]], [0.5, 2.0], 1)
    # rates of Y in each level: (k - 1) / 2 -> 1 (k = 3) and 1/2 (k = 2)
    expected = hypo_pdf(jnp.array([1.0, 0.5]), jnp.array([0.5, 2.0]))
    np.testing.assert_allclose(out.pmf[0], np.asarray(expected), rtol=1e-13)
    np.testing.assert_allclose(out.moments[0], [3.0], rtol=1e-14)


def test_refuses_models_above_its_limit(reference):
    from ptdcore_backends.reference import MAX_STATES

    big = kingman_graph(20)  # 626 states
    assert big.nr_states > MAX_STATES
    with pytest.raises(ValueError, match=f"at most {MAX_STATES} states"):
        reference.compute_pmf_and_moments(big.structure(), [[1.0]], [1.0], 1)


def test_invalid_theta_gives_nan_values_and_nan_gradients():
    require_backend("reference")
    model = ptdcore.model(hypoexponential(), nr_moments=1, backend="reference")
    times = jnp.array([0.5, 1.0])
    pmf, moments = model(jnp.array([-1.0, 2.0]), times)
    assert bool(jnp.all(jnp.isnan(pmf))) and bool(jnp.all(jnp.isnan(moments)))
    grad = jax.grad(lambda th: jnp.log(model(th, times)[0]).sum())(jnp.array([-1.0, 2.0]))
    assert bool(jnp.all(jnp.isnan(grad)))


def test_hessian_of_a_log_likelihood_against_the_closed_form():
    require_backend("reference")
    model = ptdcore.model(hypoexponential(), nr_moments=0, backend="reference")
    data = jnp.array([0.3, 0.9, 1.7, 2.4, 4.0])

    def loglik(th):
        return jnp.log(model(th, data)[0]).sum()

    def exact(th):
        return jnp.log(hypo_pdf(th, data)).sum()

    theta = jnp.array([0.8, 1.9])
    expected = jax.hessian(exact)(theta)
    np.testing.assert_allclose(jax.jit(jax.hessian(loglik))(theta), expected, rtol=1e-10)
    np.testing.assert_allclose(jax.jit(jax.jacfwd(jax.jacrev(loglik)))(theta), expected, rtol=1e-10)


def test_reference_derivatives_are_consistent_to_second_order():
    require_backend("reference")
    model = ptdcore.model(random_graph(4, nr_states=4, nr_params=2), nr_moments=2,
                          backend="reference")  # fmt: skip
    times = jnp.array([0.2, 1.1, 2.5])

    @jax.jit
    def f(th):
        pmf, moments = model(th, times)
        return jnp.concatenate([jnp.log(pmf), moments])

    check_grads(f, (jnp.array([0.9, 1.4]),), order=2, modes=("fwd", "rev"), eps=1e-4)


@pytest.mark.parametrize("name", ENGINE_BACKENDS)
def test_engine_gradients_against_the_reference(name):
    """check_grads-style: each engine backend's exact gradient vs the reference's autodiff."""
    require_backend(name)
    require_backend("reference")
    g = random_graph(17, nr_states=5, nr_params=3)
    times = jnp.array([0.1, 0.6, 1.5, 3.0])
    thetas = jnp.array([[0.5, 1.2, 2.0], [1.7, 0.3, 0.9]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # legacy
        engine = ptdcore.model(g, nr_moments=2, backend=name)
    ref = ptdcore.model(g, nr_moments=2, backend="reference")

    def objective(model):
        def f(th):
            pmf, moments = model(th, times)
            return jnp.log(pmf).sum() + moments[1] / moments[0]

        return f

    got = jax.jit(jax.vmap(jax.grad(objective(engine))))(thetas)
    want = jax.jit(jax.vmap(jax.grad(objective(ref))))(thetas)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    got_j = jax.jacfwd(lambda th: engine(th, times)[0])(thetas[0])
    want_j = jax.jacfwd(lambda th: ref(th, times)[0])(thetas[0])
    np.testing.assert_allclose(got_j, want_j, rtol=1e-10, atol=1e-13)


def test_many_times_are_evaluated_in_chunks_that_agree_with_the_closed_form(reference):
    """More times than one chunk holds: values and gradients of the chunked map match the
    hypoexponential's closed form (the padding of the last chunk is dropped)."""
    from ptdcore_backends.reference.linalg import time_chunk

    times = jnp.linspace(0.05, 6.0, 3 * time_chunk(3) + 5)
    m = ptdcore.model(hypoexponential(), backend="reference")
    theta = jnp.array([0.7, 1.9])
    np.testing.assert_allclose(m(theta, times)[0], hypo_pdf(theta, times), rtol=1e-12)
    loglik = lambda th, f: jnp.sum(jnp.log(f(th)))  # noqa: E731
    got = jax.grad(loglik)(theta, lambda th: m(th, times)[0])
    want = jax.grad(loglik)(theta, lambda th: hypo_pdf(th, times))
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_a_batch_of_rows_is_evaluated_within_the_memory_budget(reference, monkeypatch):
    """With a budget of a few rows, a batch is cut into chunks: same shapes, values equal to
    the closed form, Jacobians equal to the closed form's."""
    import ptdcore_backends.reference as module

    per_row = module.bytes_per_row(hypoexponential().structure(), 7, True)
    monkeypatch.setattr(module, "MEMORY_BUDGET_BYTES", 3 * per_row)
    assert module.rows_per_chunk(hypoexponential().structure(), 7, True) == 3
    thetas = np.column_stack([np.linspace(0.5, 2.0, 8), np.linspace(2.5, 4.0, 8)])
    times = np.linspace(0.1, 3.0, 7)
    out = reference.compute_pmf_and_moments(
        hypoexponential().structure(), thetas, times, 1, jacobian=True
    )
    assert out.pmf.shape == (8, 7) and out.dpmf.shape == (8, 7, 2)
    for row, theta in enumerate(thetas):
        want = hypo_pdf(jnp.asarray(theta), jnp.asarray(times))
        np.testing.assert_allclose(out.pmf[row], want, rtol=1e-12)
        jac = jax.jacfwd(hypo_pdf)(jnp.asarray(theta), jnp.asarray(times))
        np.testing.assert_allclose(out.dpmf[row], jac, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(out.moments[row], [1 / theta[0] + 1 / theta[1]], rtol=1e-13)


def test_high_moments_are_representable_past_the_factorial_overflow(reference):
    """E[T^k] of an exponential with rate 2 is k!/2^k: finite at k = 171 (4.1e257) although
    171! overflows; 25 moments used to raise an OverflowError."""
    import mpmath

    exponential = Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1)
    out = reference.compute_pmf_and_moments(exponential.structure(), [[2.0]], [1.0], 171)
    for k in (1, 25, 100, 170, 171):
        want = float(mpmath.factorial(k) / mpmath.mpf(2) ** k)
        np.testing.assert_allclose(out.moments[0, k - 1], want, rtol=1e-12)
