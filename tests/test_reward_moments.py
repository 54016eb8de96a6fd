"""Reward matrices (contract section 9): means and cross moments of several rewards.

References: Fu (1995)'s closed-form SFS covariances for the Kingman coalescent,
PhaseGen (an independent exact library) for the structured coalescent, msprime
simulations, and the reference backend (dense solves, JAX autodiff).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ENGINE_BACKENDS, require_backend

import ptdcore
from ptdcore import coalescent
from ptdcore.structure import Structure


def fu_branch_covariance(n: int) -> np.ndarray:
    """Cov(L_i, L_j) of the branch lengths subtending i and j samples (coalescent units,
    pair rate 1): 4 sigma_ij of Fu (1995), Theor. Pop. Biol. 48, eqs. (2)-(3)."""

    def a(k: int) -> float:
        return sum(1.0 / j for j in range(1, k))

    def beta(i: int) -> float:
        return 2 * n / ((n - i + 1) * (n - i)) * (a(n + 1) - a(i)) - 2 / (n - i)

    sigma = np.zeros((n - 1, n - 1))
    for i in range(1, n):
        if 2 * i < n:
            sigma[i - 1, i - 1] = beta(i + 1)
        elif 2 * i == n:
            sigma[i - 1, i - 1] = 2 * (a(n) - a(i)) / (n - i) - 1 / i**2
        else:
            sigma[i - 1, i - 1] = beta(i) - 1 / i**2
        for j in range(1, i):
            if i + j < n:
                v = (beta(i + 1) - beta(i)) / 2
            elif i + j == n:
                v = (a(n) - a(i)) / (n - i) + (a(n) - a(j)) / (n - j)
                v -= (beta(i) + beta(j + 1)) / 2 + 1 / (i * j)
            else:
                v = (beta(j) - beta(j + 1)) / 2 - 1 / (i * j)
            sigma[i - 1, j - 1] = sigma[j - 1, i - 1] = v
    return 4 * sigma


@pytest.mark.parametrize("n", [2, 3, 5, 8, 12])
def test_kingman_sfs_against_fu_1995(n):
    graph, rewards = coalescent.kingman_sfs(n)
    c = 1.7
    mean, cross = ptdcore.reward_moments(graph, rewards)(jnp.array([c]))
    i = np.arange(1, n)
    np.testing.assert_allclose(mean, 2 / (i * c), rtol=1e-13)
    cov = np.asarray(cross) - np.outer(mean, mean)
    expected = fu_branch_covariance(n) / c**2
    scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    assert np.all(np.abs(cov - expected) <= 1e-12 * scale)


def test_structured_sfs_against_phasegen():
    pg = pytest.importorskip("phasegen")
    graph, rewards = coalescent.structured_sfs((2, 2))
    mean, cross = ptdcore.reward_moments(graph, rewards)(jnp.array([1.0, 0.5]))
    demography = pg.Demography(
        pop_sizes={"a": 1, "b": 1}, migration_rates={("a", "b"): 0.5, ("b", "a"): 0.5}
    )
    coal = pg.Coalescent(n=pg.LineageConfig({"a": 2, "b": 2}), demography=demography)
    np.testing.assert_allclose(mean, coal.sfs.mean.data[1:4], rtol=1e-10)
    cov = np.asarray(cross) - np.outer(mean, mean)
    np.testing.assert_allclose(cov, coal.sfs.cov.data[1:4, 1:4], rtol=1e-9)


def _models():
    g, r = coalescent.kingman_sfs(6)
    yield "kingman_sfs(6)", g.structure().with_reward_matrix(r), np.array([[0.7], [1.9]])
    g, r = coalescent.structured_sfs((2, 1), shared_coalescence=False, symmetric_migration=False)
    theta = np.array([[1.0, 0.6, 0.4, 2.0], [0.3, 1.1, 1.5, 0.05]])
    yield "structured_sfs((2, 1))", g.structure().with_reward_matrix(r), theta


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
@pytest.mark.parametrize("name, structure, theta", list(_models()), ids=lambda x: str(x)[:22])
def test_every_engine_backend_against_reference(backend, name, structure, theta):
    require_backend(backend)
    m = structure.reward_columns
    K = m + m * m
    ref = ptdcore.get_backend("reference").compute_pmf_and_moments(
        structure, theta, np.zeros(0), K, jacobian=True
    )
    got = ptdcore.get_backend(backend).compute_pmf_and_moments(
        structure, theta, np.zeros(0), K, jacobian=True
    )
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12)
    scale = np.abs(ref[3]).max()
    np.testing.assert_allclose(got[3], ref[3], rtol=1e-10, atol=1e-13 * scale)


def test_gradients_jit_vmap_and_hessians():
    graph, rewards = coalescent.kingman_sfs(5)
    rm = ptdcore.reward_moments(graph, rewards)
    # mean_j = 2 / (j c): d/dc = -mean / c; cross ~ 1/c^2: d/dc = -2 cross / c
    c = jnp.array([1.3])
    g_mean = jax.grad(lambda th: rm(th)[0][2])(c)
    np.testing.assert_allclose(g_mean, [-2 / (3 * 1.3**2)], rtol=1e-13)
    g_cross = jax.grad(lambda th: rm(th)[1][0, 1])(c)
    np.testing.assert_allclose(g_cross, -2 * rm(c)[1][0, 1] / 1.3, rtol=1e-13)
    batch = jax.jit(jax.vmap(rm))(jnp.array([[1.0], [2.0]]))
    np.testing.assert_allclose(batch[0][1], batch[0][0] / 2, rtol=1e-13)  # means ~ 1/c
    # d2/dc2 of 2 / (j c) is 4 / (j c^3); of cross ~ 1/c^2 it is 6 cross / c^2
    h_mean = jax.hessian(lambda th: rm(th)[0][2])(c)
    np.testing.assert_allclose(h_mean, [[4 / (3 * 1.3**3)]], rtol=1e-13)
    h_cross = jax.hessian(lambda th: rm(th)[1][0, 1])(c)
    np.testing.assert_allclose(h_cross, [[6 * rm(c)[1][0, 1] / 1.3**2]], rtol=1e-12)
    # over epochs (second derivatives from the reference backend's algorithm): with the
    # same c in both epochs the model is the one above whatever the break, so the four
    # theta blocks of the Hessian add up to its closed form, d2/db2 vanishes and the
    # break's mixed entries cancel; elsewhere, central differences of the engine's exact
    # gradient (an independent algorithm)
    rm_epochs = ptdcore.reward_moments(graph, rewards, epochs=2)

    def mean_over_epochs(x):
        return rm_epochs(x[:2].reshape(2, 1), x[2:])[0][2]

    h = jax.hessian(mean_over_epochs)(jnp.array([1.3, 1.3, 0.5]))
    np.testing.assert_allclose(h[:2, :2].sum(), 4 / (3 * 1.3**3), rtol=1e-12)
    assert abs(h[2, 2]) < 1e-12 and abs(h[2, 0] + h[2, 1]) < 1e-12 * abs(h[2, 0])
    x = np.array([1.3, 0.4, 0.5])
    h = np.asarray(jax.hessian(mean_over_epochs)(jnp.asarray(x)))
    grad = jax.grad(mean_over_epochs)
    step = 1e-5
    differences = np.stack([
        (np.asarray(grad(jnp.asarray(x + step * e))) - np.asarray(grad(jnp.asarray(x - step * e))))
        / (2 * step) for e in np.eye(3)
    ])  # fmt: skip
    np.testing.assert_allclose(h, differences, rtol=0, atol=1e-8 * np.abs(h).max())


@pytest.mark.filterwarnings("ignore:the 'legacy' backend:DeprecationWarning")
@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
@pytest.mark.parametrize("name, structure, theta", list(_models()), ids=lambda x: str(x)[:22])
def test_engine_hessians_against_reference_autodiff(backend, name, structure, theta):
    """Exact second derivatives of every mean and cross moment (several parameters,
    migration cycles) against JAX's own differentiation of the dense reference."""
    require_backend(backend)

    def flat(rm):
        return lambda th: jnp.concatenate([rm(th)[0], rm(th)[1].ravel()])

    rewards = np.asarray(structure.rewards).reshape(structure.nr_states, -1)
    base = dataclasses.replace(structure, reward_matrix=False, rewards=None)
    got = jax.hessian(flat(ptdcore.reward_moments(base, rewards, backend=backend)))
    ref = jax.hessian(flat(ptdcore.reward_moments(base, rewards, backend="reference")))
    for row in theta:
        h_ref = np.asarray(ref(jnp.asarray(row)))
        np.testing.assert_allclose(
            np.asarray(got(jnp.asarray(row))), h_ref, rtol=1e-9, atol=1e-12 * np.abs(h_ref).max()
        )


def test_closed_class_gives_nan_for_that_row_only():
    # 0 -> 1 at rate 1; 1 -> 0 at rate 1; 1 exits at rate theta: closed at theta = 0
    g = ptdcore.Graph.from_edges(
        [1.0, 0.0], [(0, 1, 1.0, [0.0]), (1, 0, 1.0, [0.0]), (1, -1, 0.0, [1.0])], nr_params=1
    )
    rm = ptdcore.reward_moments(g, np.eye(2))
    out = jax.vmap(rm)(jnp.array([[0.0], [2.0]]))
    assert np.all(np.isnan(out[0][0])) and np.all(np.isnan(out[1][0]))
    # theta = 2: 1.5 visits to each state (return with probability 1/3), 1 and 1/3 each
    np.testing.assert_allclose(out[0][1], [1.5, 0.5], rtol=1e-14)


def test_bad_rewards_are_named():
    graph, _ = coalescent.kingman_sfs(4)
    with pytest.raises(ValueError, match=r"shape \(nr_states, m\)"):
        ptdcore.reward_moments(graph, np.ones(graph.nr_states))
    bad = np.ones((graph.nr_states, 2))
    bad[3, 1] = -1.0
    with pytest.raises(ValueError, match=r"reward -1.0 for state 3 .* \(column 1\)"):
        ptdcore.reward_moments(graph, bad)
    with pytest.raises(ValueError, match="whole number"):
        ptdcore.reward_moments(graph, np.ones((graph.nr_states, 1)), epochs=0)
    discrete = ptdcore.Graph.from_edges([1.0], [(0, -1, 0.5, [0.0])], nr_params=1, discrete=True)
    with pytest.raises(NotImplementedError, match="discrete"):
        ptdcore.reward_moments(discrete, np.ones((1, 1)))


def test_reward_matrix_structure_round_trips_through_json():
    graph, rewards = coalescent.kingman_sfs(4)
    s = graph.structure().with_reward_matrix(rewards)
    back = Structure.from_json(s.to_json())
    assert back == s and back.reward_matrix and back.reward_columns == 3
    assert s.content_hash != graph.structure().content_hash


def _epoch_models():
    g, r = coalescent.kingman_sfs(5)
    s = g.structure().with_reward_matrix(r).with_epochs(3)
    yield "kingman_sfs(5), bottleneck", s, [1.0, 8.0, 0.7, 0.2, 0.5]
    g, r = coalescent.structured_sfs((2, 1))
    s = g.structure().with_reward_matrix(r).with_epochs(2)
    yield "structured_sfs((2, 1)), 2 epochs", s, [1.0, 0.3, 2.0, 1.5, 0.6]
    # no migration in the first epoch: lineages in both demes form a class closed in that
    # epoch only (no solve there; the moments stay finite)
    yield "structured_sfs((2, 1)), closed first epoch", s, [1.0, 0.0, 2.0, 1.5, 0.6]
    g, r = coalescent.structured_sfs((2, 2))
    s = g.structure().with_reward_matrix(r).with_epochs(3)
    yield "structured_sfs((2, 2)), closed middle epoch", s, [1.0, 0.5, 4.0, 0.0, 0.7, 1.3, 0.2, 0.9]
    g, r = coalescent.structured_sfs((1, 1))
    s = g.structure().with_reward_matrix(r).with_epochs(2)
    yield "structured_sfs((1, 1)), frozen first epoch", s, [1.0, 0.0, 1.0, 0.5, 0.8]


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
@pytest.mark.parametrize("name, structure, row", list(_epoch_models()), ids=lambda x: str(x)[:44])
@pytest.mark.parametrize("means_alone", [False, True], ids=["cross", "means"])
def test_epochs_every_engine_backend_against_reference(backend, name, structure, row,
                                                       means_alone):  # fmt: skip
    """Reference: dense Van Loan integrals of the augmented [v, u_i] chain per epoch.
    Both engine layouts: means and cross moments, and the means alone."""
    require_backend(backend)
    m = structure.reward_columns
    theta = np.array([row])
    args = (structure, theta, np.zeros(0), m if means_alone else m + m * m)
    ref = ptdcore.get_backend("reference").compute_pmf_and_moments(*args, jacobian=True)
    got = ptdcore.get_backend(backend).compute_pmf_and_moments(*args, jacobian=True)
    assert np.all(np.isfinite(ref[1])) and np.all(np.isfinite(ref[3]))
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12)
    np.testing.assert_allclose(got[3], ref[3], rtol=1e-10, atol=1e-13 * np.abs(ref[3]).max())


def test_epochs_with_equal_rows_give_the_homogeneous_moments():
    graph, rewards = coalescent.kingman_sfs(6)
    hom = ptdcore.reward_moments(graph, rewards)(jnp.array([1.3]))
    rm = ptdcore.reward_moments(graph, rewards, epochs=3)
    ep = rm(jnp.array([[1.3]] * 3), jnp.array([0.2, 0.7]))
    np.testing.assert_allclose(ep[0], hom[0], rtol=1e-13)
    np.testing.assert_allclose(ep[1], hom[1], rtol=1e-13)
    # a common scale c of all epochs, with breaks scaled by 1/c, scales Y by 1/c
    grad_b = jax.grad(lambda b: rm(jnp.array([[1.0], [4.0], [1.0]]), b)[0].sum())
    assert np.all(np.isfinite(grad_b(jnp.array([0.2, 0.7]))))
    scaled = rm(jnp.array([[2.0], [8.0], [2.0]]), jnp.array([0.1, 0.35]))
    base = rm(jnp.array([[1.0], [4.0], [1.0]]), jnp.array([0.2, 0.7]))
    np.testing.assert_allclose(scaled[0], base[0] / 2, rtol=1e-13)
    np.testing.assert_allclose(scaled[1], base[1] / 4, rtol=1e-13)


@pytest.mark.filterwarnings("ignore:the 'legacy' backend:DeprecationWarning")
@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
def test_means_alone_against_the_reference_with_derivatives(backend):
    """rm.mean: the engine's one-solve route against the reference backend's dense
    solves, values, gradients and Hessians (contract section 9)."""
    require_backend(backend)
    graph, rewards = coalescent.structured_sfs((2, 1))
    rm = ptdcore.reward_moments(graph, rewards, backend=backend)
    ref = ptdcore.reward_moments(graph, rewards, backend="reference")
    theta = jnp.array([1.0, 0.6, 0.4, 2.0])[: rm.nr_params]
    np.testing.assert_allclose(rm.mean(theta), ref.mean(theta), rtol=1e-12)
    np.testing.assert_allclose(rm.mean(theta), rm(theta)[0], rtol=1e-13)
    jac, jac_ref = jax.jacfwd(rm.mean)(theta), jax.jacfwd(ref.mean)(theta)
    np.testing.assert_allclose(jac, jac_ref, rtol=1e-10, atol=1e-13 * np.abs(jac_ref).max())
    hes, hes_ref = (
        jax.hessian(lambda t: rm.mean(t)[0])(theta),
        jax.hessian(lambda t: ref.mean(t)[0])(theta),
    )
    np.testing.assert_allclose(hes, hes_ref, rtol=1e-8, atol=1e-12 * np.abs(hes_ref).max())


def test_means_alone_over_three_epochs_against_the_reference_and_the_full_layout():
    """The engine's means-alone route over epochs (one transposed solve per epoch) against
    the reference backend's dense algebra and the engine's own full layout (means and cross
    moments, the augmented chains): values and Jacobians in the rates and the breaks."""
    graph, rewards = coalescent.structured_sfs((2, 2))
    rm = ptdcore.reward_moments(graph, rewards, epochs=3)
    ref = ptdcore.reward_moments(graph, rewards, epochs=3, backend="reference")
    assert rm.nr_params == 2  # per epoch: the pair rate and the migration rate
    rows = jnp.array([[1.0, 0.5], [4.0, 0.1], [0.7, 1.3]])
    breaks = jnp.array([0.2, 0.9])
    ours = rm.mean(rows, breaks)
    np.testing.assert_allclose(ours, ref.mean(rows, breaks), rtol=1e-12)
    np.testing.assert_allclose(ours, rm(rows, breaks)[0], rtol=1e-13)
    for argnum in (0, 1):
        jac = jax.jacfwd(rm.mean, argnums=argnum)(rows, breaks)
        jac_ref = jax.jacfwd(ref.mean, argnums=argnum)(rows, breaks)
        jac_full = jax.jacfwd(lambda t, b: rm(t, b)[0], argnums=argnum)(rows, breaks)
        np.testing.assert_allclose(jac, jac_ref, rtol=1e-10, atol=1e-13 * np.abs(jac_ref).max())
        np.testing.assert_allclose(jac, jac_full, rtol=1e-11, atol=1e-14 * np.abs(jac_full).max())


def test_means_alone_over_epochs_and_under_vmap():
    graph, rewards = coalescent.kingman_sfs(6)
    rm = ptdcore.reward_moments(graph, rewards, epochs=2)
    ref = ptdcore.reward_moments(graph, rewards, epochs=2, backend="reference")
    theta, breaks = jnp.array([[3.0], [1.0]]), jnp.array([0.3])
    np.testing.assert_allclose(rm.mean(theta, breaks), ref.mean(theta, breaks), rtol=1e-12)
    grad = jax.grad(lambda b: rm.mean(theta, b).sum())(breaks)
    grad_ref = jax.grad(lambda b: ref.mean(theta, b).sum())(breaks)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-10)
    homogeneous = ptdcore.reward_moments(graph, rewards)
    many = jax.vmap(homogeneous.mean)(jnp.array([[0.5], [1.0], [2.0]]))
    np.testing.assert_allclose(many[1] * 2.0, many[0], rtol=1e-13)  # E[xi] scales as 1/c
