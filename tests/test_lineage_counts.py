"""The lineage-count route of one-deme models (``ptdcore.demography.lineage_counts``)
against independent answers: Tavare's (1984) closed form for the number of Kingman
lineages, evaluated with 200-300 digits (mpmath), and the dense lineage-count chain
(Van Loan block exponentials), values and first and second derivatives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

from ptdcore.demography.lineage_counts import counts_at, time_with_k_lineages

demes = pytest.importorskip("demes")
from ptdcore import demography  # noqa: E402
from ptdcore.demography.chain import expected_rewards  # noqa: E402
from ptdcore.demography.model import lumping_weights  # noqa: E402

jax.config.update("jax_enable_x64", True)


def tavare_counts(n: int, u: float, dps: int, order: int = 0) -> list:
    """P(K(u) = j), j = 1..n, for n Kingman lineages at coalescent time u (Tavare 1984,
    an alternating sum: exact only with many digits), or its ``order``-th derivative in u
    (term by term)."""
    with mpmath.workdps(dps):
        u = mpmath.mpf(u)
        p = []
        for j in range(1, n + 1):
            total = mpmath.mpf(1 if j == 1 and order == 0 else 0)
            for k in range(max(j, 2), n + 1):
                rate = mpmath.mpf(k * (k - 1)) / 2
                total += (
                    (-rate) ** order * mpmath.exp(-rate * u) * (2 * k - 1) * (-1) ** (k - j)
                    * mpmath.rf(j, k - 1) * mpmath.ff(n, k)
                    / (mpmath.factorial(j) * mpmath.factorial(k - j) * mpmath.rf(n, k))
                )  # fmt: skip
            p.append(total)
        return p


def tavare_times(n: int, sizes: list[float], breaks: list[float], dps: int) -> np.ndarray:
    """E[T_k], k = 2..n, ploidy 1: sum_e N_e (G_k(u_e) - G_k(u_e+1)) / C(k, 2)."""
    with mpmath.workdps(dps):
        G = [[mpmath.mpf(1)] * n]
        for u in breaks:
            p = tavare_counts(n, u, dps)
            G.append([mpmath.fsum(p[k - 1 :]) for k in range(1, n + 1)])
        G.append([mpmath.mpf(0)] * n)
        out = []
        for k in range(2, n + 1):
            occ = mpmath.fsum(
                mpmath.mpf(N) * (G[e][k - 1] - G[e + 1][k - 1]) for e, N in enumerate(sizes)
            )
            out.append(occ / (k * (k - 1) // 2))
        return np.array([float(x) for x in out])


@pytest.mark.parametrize("n,u", [(5, 1e-3), (40, 0.05), (40, 2.0), (200, 1e-3), (200, 0.3),
                                 (200, 30.0)])  # fmt: skip
def test_lineage_distribution_against_tavare(n, u):
    P = np.asarray(counts_at(n, jnp.array([u])))[0]
    exact = np.array([float(x) for x in tavare_counts(n, u, dps=300)])
    np.testing.assert_allclose(P, exact, rtol=0, atol=2e-14)
    # the upper tails that the expected times are made of
    tails = np.cumsum(P[::-1])[::-1]
    np.testing.assert_allclose(tails, np.cumsum(exact[::-1])[::-1], rtol=0, atol=2e-14)


@pytest.mark.parametrize("n", [30, 150])
def test_expected_times_against_tavare(n):
    sizes, breaks = [1.0, 0.05, 3.0, 0.7], [0.02, 0.4, 1.5]
    got = np.asarray(time_with_k_lineages(n, jnp.array(sizes), jnp.array(breaks), 1))
    np.testing.assert_allclose(got, tavare_times(n, sizes, breaks, dps=250), rtol=1e-12)


def test_derivatives_in_the_times_against_tavare():
    """dP/du and d2P/du2 (the custom rule P Q, P Q^2) against mpmath's derivatives of the
    closed form."""
    n, u = 25, 0.15
    first = np.asarray(jax.jacfwd(lambda t: counts_at(n, t))(jnp.array([u])))[0, :, 0]
    second = np.asarray(
        jax.jacfwd(jax.jacrev(lambda t: counts_at(n, t)[0]))(jnp.array([u]))
    )[:, 0, 0]  # fmt: skip
    d1, d2 = (np.array([float(x) for x in tavare_counts(n, u, 200, order)]) for order in (1, 2))
    assert np.abs(first - d1).max() <= 1e-12 * np.abs(d1).max()
    assert np.abs(second - d2).max() <= 1e-11 * np.abs(d2).max()


def test_one_deme_sfs_against_the_dense_chain():
    """The model's lumped SFS (lineage counts) against the dense lineage-count chain of
    the same model: values, Jacobian and Hessian in sizes and event times."""
    n = 8
    b = demes.Builder(time_units="generations")
    b.add_deme("A", epochs=[dict(start_size=5000, end_time=900), dict(start_size=200, end_time=300),
                            dict(start_size=1500)])  # fmt: skip
    d = demography.from_demes(b.resolve(), {"A": n})
    assert d.lumped
    chain = d._counts_chain
    T = np.zeros((chain.size, n - 1))
    for i, state in enumerate(chain.states):
        T[i, sum(c for _, _, c in state) - 2] = 1.0
    rewards = T @ lumping_weights(n)

    def dense(v):
        return expected_rewards(d.schedule, chain, rewards, v, d.ploidy)

    v = jnp.asarray(d.values)
    np.testing.assert_allclose(d.expected_sfs(v)[1:-1], dense(v)[1:-1], rtol=1e-12)
    J, J_dense = jax.jacrev(d.expected_sfs)(v), jax.jacfwd(dense)(v)
    # each column judged against its largest entry (docs/engine.md)
    assert np.all(np.abs(J - J_dense).max(axis=0) <= 1e-11 * np.abs(J_dense).max(axis=0))
    H = jax.hessian(lambda x: jnp.log(d.expected_sfs(x)[1:-1]).sum())(v)
    H_dense = jax.hessian(lambda x: jnp.log(dense(x)[1:-1]).sum())(v)
    assert np.abs(H - H_dense).max() <= 1e-9 * np.abs(H_dense).max()


def test_a_thousand_samples_is_exact_and_finite():
    """n = 1,000 (no n x n matrix): constant size gives 2N / i exactly through two equal
    epochs, and a bottleneck keeps every entry positive and finite with its gradient."""
    b = demes.Builder(time_units="generations")
    b.add_deme("A", epochs=[dict(start_size=1000, end_time=50), dict(start_size=1000)])
    d = demography.from_demes(b.resolve(), {"A": 1000})
    i = np.arange(1, 1000)
    np.testing.assert_allclose(np.asarray(d.expected_sfs())[1:-1], 4000.0 / i, rtol=1e-12)
    v = jnp.array([1000.0, 20.0, 50.0])
    sfs = np.asarray(d.expected_sfs(v))
    g = np.asarray(jax.grad(lambda x: jnp.log(d.expected_sfs(x)[1:-1]).sum())(v))
    assert np.all(np.isfinite(sfs)) and np.all(sfs[1:-1] > 0) and np.all(np.isfinite(g))


def test_invalid_times_give_nan_not_a_hang():
    b = demes.Builder(time_units="generations")
    b.add_deme("A", epochs=[dict(start_size=1000, end_time=50), dict(start_size=500)])
    d = demography.from_demes(b.resolve(), {"A": 30})
    for bad in ([1000.0, 500.0, -5.0], [1000.0, 0.0, 50.0], [np.nan, 500.0, 50.0],
                [1000.0, 500.0, np.inf]):  # fmt: skip
        assert np.all(np.isnan(np.asarray(d.expected_sfs(jnp.array(bad)))))
