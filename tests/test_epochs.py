"""Epochs (contract section 8): piecewise-constant parameters in time.

References: closed forms in mpmath (a piecewise exponential), dense 50-digit
matrix exponentials composed across breaks, the reference backend (dense
exponentials and Van Loan block integrals, JAX autodiff; an algorithm independent
of the engine's), and the homogeneous model itself when all epochs agree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from conftest import ENGINE_BACKENDS, require_backend

import ptdcore
from ptdcore import Graph, coalescent
from ptdcore.testing import random_graph

DPS = 40


def exponential() -> Graph:
    return Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1)


def _piecewise_exponential(rates, breaks, t):
    """Density, sf, cdf and the moments E[T], E[T^2] of a rate that changes at the breaks."""
    rates = [mpmath.mpf(r) for r in rates]
    starts = [mpmath.mpf(0)] + [mpmath.mpf(b) for b in breaks]

    def sf(x):
        x, acc = mpmath.mpf(x), mpmath.mpf(0)
        for e, rate in enumerate(rates):
            end = starts[e + 1] if e + 1 < len(rates) else mpmath.inf
            acc += rate * (min(x, end) - starts[e]) if x > starts[e] else 0
        return mpmath.exp(-acc)

    def rate_at(x):
        return rates[sum(1 for s in starts[1:] if x >= s)]

    m1 = mpmath.quad(sf, [*starts, mpmath.inf])
    m2 = 2 * mpmath.quad(lambda x: x * sf(x), [*starts, mpmath.inf])
    t = mpmath.mpf(t)
    return rate_at(t) * sf(t), sf(t), 1 - sf(t), (m1, m2)


def test_piecewise_exponential_against_closed_form():
    rates, breaks = [1.3, 0.2, 2.5], [0.4, 1.1]
    times = np.array([0.01, 0.3, 0.4, 0.9, 1.1, 1.7, 4.0])
    m = ptdcore.model(exponential(), nr_moments=2, epochs=3)
    theta = jnp.array(rates)[:, None]
    pdf, moments = (np.asarray(a) for a in m(theta, times, jnp.array(breaks)))
    sf = np.asarray(m.sf(theta, times, jnp.array(breaks)))
    cdf = np.asarray(m.cdf(theta, times, jnp.array(breaks)))
    with mpmath.workdps(DPS):
        for q, t in enumerate(times):
            f, s, c, _ = _piecewise_exponential(rates, breaks, t)
            assert abs(float(pdf[q]) - f) <= 1e-13 * f
            assert abs(float(sf[q]) - s) <= 1e-13 * s
            assert abs(float(cdf[q]) - c) <= 1e-13 * c
        exact = _piecewise_exponential(rates, breaks, 0.0)[3]
    np.testing.assert_allclose(moments, [float(x) for x in exact], rtol=1e-13)


def test_piecewise_exponential_gradients_in_theta_and_breaks():
    rates, breaks = [1.3, 0.2, 2.5], [0.4, 1.1]
    times = np.array([0.3, 0.9, 1.7])  # away from the breaks (the density jumps there)
    m = ptdcore.model(exponential(), nr_moments=2, epochs=3)

    def outputs(x):
        th, b = x[:3, None], x[3:]
        return jnp.concatenate([m(th, times, b)[0], m(th, times, b)[1], m.cdf(th, times, b)])

    x = jnp.array(rates + breaks)
    J = np.asarray(jax.jacfwd(outputs)(x))
    Jr = np.asarray(jax.jacrev(outputs)(x))
    np.testing.assert_allclose(J, Jr, rtol=1e-14, atol=1e-15)
    with mpmath.workdps(DPS):

        def exact(*args):
            r, b = list(args[:3]), list(args[3:])
            rows = [_piecewise_exponential(r, b, t) for t in times]
            return [row[0] for row in rows] + list(rows[0][3]) + [row[2] for row in rows]

        x = [float(v) for v in x]
        for p in range(5):
            for row in range(J.shape[0]):
                d = mpmath.diff(
                    lambda v, row=row, p=p: exact(*[v if i == p else x[i] for i in range(5)])[row],
                    x[p],
                )
                assert abs(J[row, p] - float(d)) <= 1e-9 * max(1.0, abs(float(d))), (row, p)


def _cases():
    g = random_graph(4, nr_states=5, nr_params=2).structure().with_epochs(3)
    yield "random(5 states, 3 epochs)", g, [0.7, 1.2, 2.0, 0.3, 1.1, 0.9, 0.4, 1.5]
    s = coalescent.structured((2, 2)).structure().with_epochs(2)
    yield "structured((2, 2)), migration 0.2 -> 3", s, [1.0, 0.2, 0.5, 3.0, 0.8]
    s = coalescent.kingman(8).structure().with_epochs(3)
    yield "kingman(8), bottleneck", s, [1.0, 10.0, 1.0, 0.3, 0.35]


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
@pytest.mark.parametrize("output", ["density", "cdf", "sf"])
@pytest.mark.parametrize("name, structure, row", list(_cases()), ids=lambda x: str(x)[:30])
def test_every_engine_backend_against_reference(backend, output, name, structure, row):
    require_backend(backend)
    s = structure
    times = np.array([0.05, 0.3, 0.45, 1.0, 1.6, 3.0])
    theta = np.array([row])
    ref = ptdcore.get_backend("reference").compute_pmf_and_moments(
        s, theta, times, 2, jacobian=True, output=output
    )
    got = ptdcore.get_backend(backend).compute_pmf_and_moments(
        s, theta, times, 2, jacobian=True, output=output
    )
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12)
    for d, r in ((got[2], ref[2]), (got[3], ref[3])):
        np.testing.assert_allclose(d, r, rtol=1e-10, atol=1e-12 * np.abs(r).max())


def _mp_epoch_density(structure, rows, breaks, t):
    """50-digit alpha prod expm(S_e D_e) expm(S_e' (t - b)) s_e' for a structure's epochs."""
    n = structure.nr_states

    def matrices(theta):
        w = structure.weights(theta)
        S, s = mpmath.zeros(n, n), mpmath.zeros(n, 1)
        for e, (i, j) in enumerate(
            zip(structure.src.tolist(), structure.dst.tolist(), strict=True)
        ):
            S[i, i] -= mpmath.mpf(w[e])
            if j < 0:
                s[i, 0] += mpmath.mpf(w[e])
            else:
                S[i, j] += mpmath.mpf(w[e])
        return S, s

    pi = mpmath.matrix([list(map(mpmath.mpf, structure.alpha))])
    start = mpmath.mpf(0)
    for e, theta in enumerate(rows):
        S, s = matrices(theta)
        end = mpmath.mpf(breaks[e]) if e < len(breaks) else mpmath.inf
        if mpmath.mpf(t) < end:
            return (pi * mpmath.expm(S * (mpmath.mpf(t) - start)) * s)[0]
        pi = pi * mpmath.expm(S * (end - start))
        start = end
    raise AssertionError("unreachable")


def test_stiff_epoch_against_dense_50_digit_reference():
    """Migration 1e5 in the first epoch: the state at the break comes from the ladder."""
    g = coalescent.structured((2, 2))
    rows = [[1.0, 1e5], [1.0, 0.5]]
    breaks = [1.2]
    times = np.array([0.3, 1.0, 1.5, 3.0])
    pdf, _ = ptdcore.model(g, nr_moments=0, epochs=2)(jnp.array(rows), times, jnp.array(breaks))
    pdf = np.asarray(pdf)
    with mpmath.workdps(50):
        for q, t in enumerate(times):
            f = _mp_epoch_density(g.structure(), rows, breaks, t)
            assert abs(float(pdf[q]) - f) <= 1e-12 * f, (t, pdf[q], float(f))


def test_equal_epochs_give_the_homogeneous_model():
    g = coalescent.structured((2, 1))
    theta = jnp.array([1.3, 0.7])
    times = jnp.array([0.1, 0.6, 1.4, 5.0])
    hom = ptdcore.model(g, nr_moments=3)(theta, times)
    ep = ptdcore.model(g, nr_moments=3, epochs=3)(
        jnp.stack([theta] * 3), times, jnp.array([0.5, 1.2])
    )
    np.testing.assert_allclose(ep[0], hom[0], rtol=1e-13)
    np.testing.assert_allclose(ep[1], hom[1], rtol=1e-13)


def test_discrete_epochs_against_reference():
    g = Graph.from_edges(
        [1.0, 0.0], [(0, 1, 0.0, [0.5]), (1, -1, 0.0, [0.3]), (0, -1, 0.1, [0.0])], nr_params=1,
        discrete=True,
    )  # fmt: skip
    s = g.structure().with_epochs(2)
    row = np.array([[1.0, 2.5, 4.0]])  # theta 1.0 for steps 0..3, then 2.5
    times = np.array([0.0, 1.0, 3.0, 4.0, 5.0, 9.0])
    for output in ("density", "cdf", "sf"):
        ref = ptdcore.get_backend("reference").compute_pmf_and_moments(
            s, row, times, 3, jacobian=True, output=output
        )
        got = ptdcore.get_backend("pybind11").compute_pmf_and_moments(
            s, row, times, 3, jacobian=True, output=output
        )
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-13)
        np.testing.assert_allclose(got[2][..., :2], ref[2][..., :2], rtol=1e-11, atol=1e-15)
        assert np.all(np.isnan(got[2][..., 2]))  # whole-step breaks: no derivative
        # moments: summation by parts against the reference's direct sum over steps
        np.testing.assert_allclose(got[1], ref[1], rtol=1e-12)
        np.testing.assert_allclose(got[3][..., :2], ref[3][..., :2], rtol=1e-10)
        assert np.all(np.isnan(got[3][..., 2]))


def test_discrete_epoch_moments_of_a_geometric_closed_form():
    """Leave with probability p0 per step before step b, p1 after: E[N] and E[N^2]."""
    g = Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1, discrete=True)
    p0, p1, b = 0.3, 0.6, 4
    m = ptdcore.model(g, nr_moments=2, epochs=2)
    moments = m(jnp.array([[p0], [p1]]), jnp.zeros(0), jnp.array([float(b)]))[1]
    with mpmath.workdps(DPS):
        q0, q1 = 1 - mpmath.mpf(p0), 1 - mpmath.mpf(p1)
        pmf = [q0 ** (k - 1) * p0 for k in range(1, b + 1)]
        pmf += [q0**b * q1 ** (k - b - 1) * p1 for k in range(b + 1, 400)]
        exact = [sum(k * f for k, f in zip(range(1, 400), pmf, strict=True)),
                 sum(k * k * f for k, f in zip(range(1, 400), pmf, strict=True))]  # fmt: skip
    np.testing.assert_allclose(moments, [float(x) for x in exact], rtol=1e-13)


def test_bad_epoch_inputs_are_named():
    m = ptdcore.model(exponential(), nr_moments=1, epochs=3)
    theta = jnp.ones((3, 1))
    times = jnp.array([1.0])
    with pytest.raises(ValueError, match=r"shape \(3, 1\)"):
        m(jnp.ones((2, 1)), times, jnp.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"breaks must have shape \(2,\)"):
        m(theta, times, jnp.array([1.0]))
    with pytest.raises(ValueError, match="increasing"):
        m(theta, times, jnp.array([2.0, 1.0]))
    with pytest.raises(ValueError, match="increasing"):
        m(theta, times, jnp.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="pass breaks"):
        m(theta, times)
    with pytest.raises(ValueError, match="breaks are for models with epochs"):
        ptdcore.model(exponential())(jnp.ones(1), times, jnp.array([1.0]))
    with pytest.raises(ValueError, match="whole number"):
        ptdcore.model(exponential(), epochs=1.5)
    with_rewards = ptdcore.model(
        coalescent.kingman_graph(4, reward="total_branch_length"), nr_moments=2, epochs=2
    )
    with pytest.raises(NotImplementedError, match="only the moments of Y"):
        with_rewards(jnp.ones((2, 1)), times, jnp.array([1.0]))
    with pytest.raises(NotImplementedError, match="sampling Y"):
        with_rewards.sample(np.ones((2, 1)), 3, breaks=np.array([1.0]))
    # traced invalid breaks: NaN for that particle only
    out = jax.vmap(lambda b: m(theta, times, b)[0])(jnp.array([[1.0, 2.0], [2.0, 1.0]]))
    assert np.all(np.isfinite(out[0])) and np.all(np.isnan(out[1]))


def test_sampling_with_epochs_against_the_exact_distribution():
    from scipy import stats

    m = ptdcore.model(coalescent.kingman(6), nr_moments=0, epochs=3)
    theta, breaks = np.array([[1.0], [10.0], [0.5]]), np.array([0.3, 0.5])
    draws = np.sort(m.sample(theta, 20000, seed=5, breaks=breaks))
    cdf = np.asarray(m.cdf(jnp.asarray(theta), jnp.asarray(draws), jnp.asarray(breaks)))
    assert stats.kstest(draws, lambda x: np.interp(x, draws, cdf)).pvalue > 1e-3
    # discrete: leave state 0 with probability 0.2 per step, then 0.7 from step 3 on
    g = Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1, discrete=True)
    md = ptdcore.model(g, nr_moments=0, epochs=2)
    theta_d, breaks_d = np.array([[0.2], [0.7]]), np.array([3.0])
    draws = md.sample(theta_d, 20000, seed=6, breaks=breaks_d)
    support = np.arange(1, 12)
    pmf = np.asarray(
        md(jnp.asarray(theta_d), jnp.asarray(support, float), jnp.asarray(breaks_d))[0]
    )
    observed = np.array([np.sum(draws == k) for k in support])
    expected = 20000 * pmf
    keep = expected > 5
    chi2 = np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep])
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3
    np.testing.assert_allclose(pmf[:3], [0.2, 0.16, 0.128], rtol=1e-13)  # steps 1-3: 0.2
    np.testing.assert_allclose(pmf[3], 0.8**3 * 0.7, rtol=1e-13)  # step 4 leaves from step 3


def test_quantiles_with_epochs():
    m = ptdcore.model(coalescent.kingman(6), nr_moments=1, epochs=3)
    theta, breaks = jnp.array([[1.0], [10.0], [0.5]]), jnp.array([0.3, 0.5])
    levels = jnp.array([0.05, 0.1, 0.5, 0.9, 0.99])
    q = m.quantile(theta, levels, breaks)
    np.testing.assert_allclose(m.cdf(theta, q, breaks), levels, rtol=1e-13)
    # implicit derivative in the first break against a central difference of the solve
    grad = jax.grad(lambda b: m.quantile(theta, 0.5, b))(breaks)
    h = jnp.array([1e-6, 0.0])
    central = (m.quantile(theta, 0.5, breaks + h) - m.quantile(theta, 0.5, breaks - h)) / 2e-6
    np.testing.assert_allclose(grad[0], central, rtol=1e-7)
    assert grad[1] == 0.0  # the median falls before the second break


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
def test_moments_of_rewards_over_epochs_against_reference(backend):
    """E[Y^k], k <= 3, of the total branch length under a bottleneck: the engine's block
    chain [v, u_1, u_2] with transposed solves against the reference's dense Van Loan
    integrals; and the first two against reward_moments with one column."""
    require_backend(backend)
    g = coalescent.kingman_graph(5, reward="total_branch_length")
    s = g.structure().with_epochs(3)
    row = np.array([[1.0, 6.0, 0.7, 0.2, 0.5]])
    ref = ptdcore.get_backend("reference").compute_pmf_and_moments(
        s, row, np.zeros(0), 3, jacobian=True
    )
    got = ptdcore.get_backend(backend).compute_pmf_and_moments(
        s, row, np.zeros(0), 3, jacobian=True
    )
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12)
    np.testing.assert_allclose(got[3], ref[3], rtol=1e-10, atol=1e-13 * np.abs(ref[3]).max())
    theta, breaks = jnp.array([[1.0], [6.0], [0.7]]), jnp.array([0.2, 0.5])
    mean, cross = ptdcore.reward_moments(g, np.asarray(g.rewards)[:, None], epochs=3)(theta, breaks)
    np.testing.assert_allclose([mean[0], cross[0, 0]], got[1][0, :2], rtol=1e-13)
    equal = ptdcore.model(g, nr_moments=3, epochs=3)(jnp.ones((3, 1)), jnp.zeros(0), breaks)[1]
    hom = ptdcore.model(g, nr_moments=3)(jnp.ones(1), jnp.zeros(0))[1]
    np.testing.assert_allclose(equal, hom, rtol=1e-13)


CLOSED_IN_EPOCH_0 = Graph.from_edges(
    [1, 0, 0],
    [(0, -1, 1.0, [0]), (0, 1, 1.0, [0]), (1, 2, 1.0, [0]), (2, 1, 1.0, [0]), (2, -1, 0.0, [1])],
    nr_params=1,
)


@pytest.mark.parametrize("name", ENGINE_BACKENDS)
def test_a_class_closed_in_a_finite_epoch_only_has_finite_moments(name):
    """States 1 and 2 form a class that is closed in epoch 0 (theta = 0) and opens at the
    break t = 1 (theta = 1): T is finite, and so are its moments (they used to be NaN).
    Values from the issue (ball arithmetic); derivatives in theta and in the break
    against the reference backend (dense matrix exponentials, no solve in epoch 0)."""
    backend = ptdcore.get_backend(require_backend(name))
    structure = CLOSED_IN_EPOCH_0.structure().with_epochs(2)
    row = [[0.0, 1.0, 1.0]]  # theta_0 = 0, theta_1 = 1, break 1
    out = backend.compute_pmf_and_moments(structure, row, [0.5, 2.0], 4, jacobian=True)
    want = [2.1353352832366, 10.866516086702, 84.91989112425, 888.4393488957]
    np.testing.assert_allclose(out.moments[0], want, rtol=1e-12)
    ref = ptdcore.get_backend("reference").compute_pmf_and_moments(
        structure, row, [0.5, 2.0], 4, jacobian=True
    )
    np.testing.assert_allclose(out.moments, ref.moments, rtol=1e-11)
    np.testing.assert_allclose(out.dmoments, ref.dmoments, rtol=1e-9, atol=1e-9)
    # closed in the open-ended last epoch instead: mass is trapped for ever
    trapped = backend.compute_pmf_and_moments(structure, [[1.0, 0.0, 1.0]], [0.5], 2)
    assert np.isposinf(trapped.moments).all()


def _certified_epoch_moments(structure, thetas, breaks, K):
    pytest.importorskip("flint")
    from ptdcore.testing.certified import certified_epoch_moments

    return certified_epoch_moments(structure, thetas, breaks, K)


def test_moments_over_short_slow_epochs_keep_their_digits():
    """Kingman n = 10, four epochs (theta 100, 0.05, 4, 1; breaks 0.02, 0.5, 2): E[T^4]
    was off by 2e-9 (a difference of nearly equal terms over the short slow epoch); now
    within 1e-13 of certified ball arithmetic (on the 9-state lineage-count chain, an
    independent state space with the same T)."""
    from ptdcore.coalescent import kingman_tmrca_graph

    thetas, breaks = [[100.0], [0.05], [4.0], [1.0]], [0.02, 0.5, 2.0]
    mid, rad = _certified_epoch_moments(kingman_tmrca_graph(10).structure(), thetas, breaks, 4)
    structure = coalescent.kingman_graph(10).structure().with_epochs(4)
    for name in ENGINE_BACKENDS:
        backend = ptdcore.get_backend(require_backend(name))
        row = [np.concatenate([np.ravel(thetas), breaks])]
        got = backend.compute_pmf_and_moments(structure, row, [], 4).moments[0]
        assert np.all(np.abs(got - mid) <= rad + 1e-13 * np.abs(mid)), (name, got / mid - 1)


@pytest.mark.parametrize("seed", range(10))
def test_epoch_moments_of_random_models_against_certified_values(seed):
    """Random cyclic models, three epochs of random lengths (0.01 to 3) and rates: E[T^k],
    k <= 4, within 1e-13 of certified values."""
    rng = np.random.default_rng(seed)
    graph = random_graph(100 + seed, nr_states=4, nr_params=2)
    thetas = rng.uniform(0.02, 5.0, (3, 2))
    breaks = np.cumsum(rng.uniform(0.01, 3.0, 2))
    mid, rad = _certified_epoch_moments(graph.structure(), thetas, breaks, 4)
    row = [np.concatenate([thetas.ravel(), breaks])]
    got = ptdcore.get_backend("ffi").compute_pmf_and_moments(
        graph.structure().with_epochs(3), row, [], 4
    )
    err = np.abs(got.moments[0] - mid) - rad
    assert np.all(err <= 1e-13 * np.abs(mid)), (err / np.abs(mid), thetas, breaks)
