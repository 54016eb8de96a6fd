"""Exact second derivatives on every engine backend (contract section 7)."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ENGINE_BACKENDS, require_backend

import ptdcore
from ptdcore import Graph
from ptdcore.coalescent import kingman_graph, kingman_tmrca_graph
from ptdcore.testing import random_graph


def model(graph, backend, nr_moments=2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # legacy
        return ptdcore.model(graph, nr_moments=nr_moments, backend=require_backend(backend))


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
def test_hessian_of_the_kingman_log_likelihood_against_the_closed_form(backend):
    """The Kingman TMRCA is hypoexponential with rates C(k, 2) theta: log f in closed form."""
    n = 6
    m = model(kingman_graph(n), backend)
    data = jnp.array([0.4, 0.9, 1.3, 2.2, 3.5])
    rates = jnp.array([k * (k - 1) / 2 for k in range(2, n + 1)])

    def exact(th):
        lam = rates * th[0]
        coef = jnp.array(
            [jnp.prod(jnp.array([lam[j] / (lam[j] - lam[i]) for j in range(len(rates)) if j != i]))
             for i in range(len(rates))]
        )  # fmt: skip
        pdf = (coef[:, None] * lam[:, None] * jnp.exp(-lam[:, None] * data)).sum(axis=0)
        return jnp.log(pdf).sum()

    theta = jnp.array([1.3])
    got = jax.hessian(lambda th: jnp.log(m(th, data)[0]).sum())(theta)
    np.testing.assert_allclose(got, jax.hessian(exact)(theta), rtol=1e-9)


def central_difference_of_gradient(grad, theta, h=1e-5):
    cols = []
    for p in range(theta.size):
        e = np.zeros(theta.size)
        e[p] = h
        cols.append((np.asarray(grad(theta + e)) - np.asarray(grad(theta - e))) / (2 * h))
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
@pytest.mark.parametrize("output", ["pmf", "moments", "cdf", "sf"])
def test_hessians_of_every_output_against_the_reference_and_differences(backend, output):
    g = random_graph(31, nr_states=5, nr_params=3)
    m, ref = model(g, backend), model(g, "reference")
    times = jnp.array([0.2, 0.9, 2.4])
    theta = jnp.array([0.8, 1.4, 0.6])

    def function_of(mod):
        if output == "pmf":
            return lambda th: jnp.log(mod(th, times)[0]).sum()
        if output == "moments":
            return lambda th: mod(th, times)[1][1] / mod(th, times)[1][0]
        return lambda th: jnp.log(getattr(mod, output)(th, times)).sum()

    f, fr = function_of(m), function_of(ref)
    H = np.asarray(jax.jit(jax.hessian(f))(theta))
    np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(H, np.asarray(jax.hessian(fr)(theta)), rtol=1e-9, atol=1e-12)
    fd = central_difference_of_gradient(jax.jit(jax.grad(f)), np.asarray(theta))
    np.testing.assert_allclose(H, fd, rtol=1e-8, atol=1e-9)
    H2 = np.asarray(jax.jit(jax.jacfwd(jax.jacrev(f)))(theta))
    np.testing.assert_allclose(H2, H, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
def test_discrete_and_reward_hessians_against_the_reference(backend):
    times = jnp.array([1.0, 2.0, 5.0, 9.0])
    theta = jnp.array([0.3, 0.5])
    for g in (
        random_graph(8, nr_states=4, nr_params=2, discrete=True),
        kingman_tmrca_graph(5).with_rewards(lambda s: float(s[0])),  # rewards > 0
    ):
        th = theta if g.nr_params == 2 else theta[:1] + 0.7
        m, ref = model(g, backend), model(g, "reference")

        def f(mod, th):
            pmf, moments = mod(th, times)
            return jnp.log(pmf).sum() + moments[1]

        np.testing.assert_allclose(
            jax.hessian(lambda t, m=m: f(m, t))(th), jax.hessian(lambda t, r=ref: f(r, t))(th),
            rtol=1e-9, atol=1e-12,
        )  # fmt: skip


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
@pytest.mark.parametrize("output", ["pmf", "cdf", "sf"])
def test_zero_reward_models_through_the_second_order_reward_transformation(backend, output):
    """Zero rewards make the transformed rates rational in theta: their second
    derivatives are carried through the elimination (against the reference)."""
    g = random_graph(5, nr_states=6, nr_params=2, rewards=True)
    assert (np.asarray(g.structure().rewards) == 0).any()
    m, ref = model(g, backend), model(g, "reference")
    times = jnp.array([0.3, 1.0, 2.5])

    def f(mod):
        if output == "pmf":
            return lambda th: jnp.log(mod(th, times)[0]).sum() + mod(th, times)[1][1]
        return lambda th: jnp.log(getattr(mod, output)(th, times)).sum()

    theta = jnp.array([0.9, 1.3])
    np.testing.assert_allclose(
        jax.hessian(f(m))(theta), jax.hessian(f(ref))(theta), rtol=1e-9, atol=1e-12
    )


def test_a_backend_without_second_derivatives_says_so():
    class FirstOrderOnly(ptdcore.Backend):
        name = "first-order-only"

        def compute_pmf_and_moments(self, structure, theta, times, nr_moments, *, jacobian=False):
            return ptdcore.get_backend("pybind11").compute_pmf_and_moments(
                structure, theta, times, nr_moments, jacobian=jacobian
            )

    g = Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1)
    m = ptdcore.model(g, nr_moments=1, backend=FirstOrderOnly())
    times = jnp.array([0.5])
    assert jax.grad(lambda th: m(th, times)[0][0])(jnp.array([2.0])).shape == (1,)
    with pytest.raises(NotImplementedError, match="does not provide second derivatives"):
        jax.hessian(lambda th: m(th, times)[0][0])(jnp.array([2.0]))


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
def test_hessians_over_epochs_and_breaks_against_the_closed_form(backend):
    """An exponential whose rate is a before the break br and b after: density, cdf and
    the first two moments in closed form, and their Hessians in (a, b, br) by JAX on the
    closed form (contract section 7 over epochs; issue 24 item 6)."""
    g = Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # legacy
        m = ptdcore.model(g, nr_moments=2, backend=require_backend(backend), epochs=2)
    times = jnp.array([0.3, 0.7, 1.5, 2.5])

    def closed(x):
        a, b, br = x
        late = jnp.exp(-a * br - b * (times - br))
        pdf = jnp.where(times < br, a * jnp.exp(-a * times), b * late)
        cdf = 1.0 - jnp.where(times < br, jnp.exp(-a * times), late)
        s = jnp.exp(-a * br)
        first = (1 - s) / a + s / b
        second = 2 * (1 - s * (1 + a * br)) / a**2 + 2 * s * (br / b + 1 / b**2)
        return pdf, cdf, jnp.stack([first, second])

    def ours(x):
        theta, breaks = jnp.stack([x[:1], x[1:2]]), x[2:]
        pdf, moments = m(theta, times, breaks)
        return pdf, m.cdf(theta, times, breaks), moments

    for x in (jnp.array([1.3, 0.6, 1.0]), jnp.array([0.2, 4.0, 2.0])):
        for got, want in zip(jax.hessian(ours)(x), jax.hessian(closed)(x), strict=True):
            assert np.abs(np.asarray(got) - np.asarray(want)).max() <= 1e-10 * np.abs(want).max()
