"""ptdcore.coalescent against a real simulator: msprime (with tskit).

Haploid samples in populations of size 1 make msprime's pair coalescence rate 1 per
unit time, ptdcore's coalescent units (theta c = 1); ``island_model`` moves each
lineage to each other deme at rate m, as ``structured`` does. Means are compared at
4.5 standard errors of the simulated mean (a false alarm about once in 150,000).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import ptdcore
from ptdcore import coalescent

msprime = pytest.importorskip("msprime")

REPLICATES = 4000
Z = 4.5


def _simulate(
    samples, migration: float, seed: int, demography=None
) -> tuple[np.ndarray, np.ndarray]:
    """TMRCA and branch-length SFS (bins 1..n-1) of REPLICATES single trees."""
    if demography is None and len(samples) == 1:
        demography = msprime.Demography.isolated_model([1.0])
    elif demography is None:
        demography = msprime.Demography.island_model([1.0] * len(samples), migration)
    sample_sets = {f"pop_{d}": a for d, a in enumerate(samples) if a > 0}
    n = sum(samples)
    tmrca, sfs = [], []
    for ts in msprime.sim_ancestry(
        samples=sample_sets, demography=demography, ploidy=1, num_replicates=REPLICATES,
        random_seed=seed,
    ):  # fmt: skip
        tree = ts.first()
        tmrca.append(tree.time(tree.root))
        afs = ts.allele_frequency_spectrum(mode="branch", polarised=True, span_normalise=True)
        sfs.append(afs[1:n])
    return np.asarray(tmrca), np.asarray(sfs)


def _assert_within_standard_errors(exact, simulated):
    mean = simulated.mean(axis=0)
    se = simulated.std(axis=0, ddof=1) / np.sqrt(simulated.shape[0])
    assert np.all(np.abs(mean - exact) <= Z * se), (exact, mean, se)


def test_kingman_tmrca_and_sfs_against_msprime():
    n = 7
    tmrca, sfs = _simulate((n,), 0.0, seed=11)
    moments = ptdcore.model(coalescent.kingman(n), nr_moments=2)(jnp.array([1.0]), jnp.zeros(0))[1]
    _assert_within_standard_errors(moments[0], tmrca)
    graph, rewards = coalescent.kingman_sfs(n)
    mean, cross = ptdcore.reward_moments(graph, rewards)(jnp.array([1.0]))
    _assert_within_standard_errors(np.asarray(mean), sfs)
    # second moments: the products of the simulated bins
    products = (sfs[:, :, None] * sfs[:, None, :]).reshape(REPLICATES, -1)
    _assert_within_standard_errors(np.asarray(cross).ravel(), products)


@pytest.mark.parametrize("samples, migration", [((2, 2), 0.5), ((3, 1), 2.0)])
def test_structured_tmrca_and_sfs_against_msprime(samples, migration):
    tmrca, sfs = _simulate(samples, migration, seed=12)
    theta = jnp.array([1.0, migration])
    moments = ptdcore.model(coalescent.structured(samples), nr_moments=2)(theta, jnp.zeros(0))[1]
    _assert_within_standard_errors(moments[0], tmrca)
    _assert_within_standard_errors(moments[1], tmrca**2)
    graph, rewards = coalescent.structured_sfs(samples)
    mean, cross = ptdcore.reward_moments(graph, rewards)(theta)
    _assert_within_standard_errors(np.asarray(mean), sfs)
    products = (sfs[:, :, None] * sfs[:, None, :]).reshape(REPLICATES, -1)
    _assert_within_standard_errors(np.asarray(cross).ravel(), products)


def _assert_cdf_within_standard_errors(exact, simulated, times):
    for t, p in zip(times, exact, strict=True):
        frac = np.mean(simulated <= t)
        se = np.sqrt(max(p * (1 - p), 1e-4) / simulated.size)
        assert abs(frac - p) <= Z * se, (t, p, frac, se)


def test_kingman_tmrca_and_sfs_under_a_bottleneck_against_msprime():
    """Size 1, then 0.1 between times 0.3 and 0.5 (pair rate 1 / size), then 1 again."""
    n = 6
    demography = msprime.Demography.isolated_model([1.0])
    demography.add_population_parameters_change(time=0.3, initial_size=0.1)
    demography.add_population_parameters_change(time=0.5, initial_size=1.0)
    tmrca, sfs = _simulate((n,), 0.0, seed=13, demography=demography)
    m = ptdcore.model(coalescent.kingman(n), nr_moments=2, epochs=3)
    theta, breaks = jnp.array([[1.0], [10.0], [1.0]]), jnp.array([0.3, 0.5])
    graph, rewards = coalescent.kingman_sfs(n)
    mean, cross = ptdcore.reward_moments(graph, rewards, epochs=3)(theta, breaks)
    _assert_within_standard_errors(np.asarray(mean), sfs)
    products = (sfs[:, :, None] * sfs[:, None, :]).reshape(REPLICATES, -1)
    _assert_within_standard_errors(np.asarray(cross).ravel(), products)
    moments = m(theta, jnp.zeros(0), breaks)[1]
    _assert_within_standard_errors(moments[0], tmrca)
    _assert_within_standard_errors(moments[1], tmrca**2)
    times = np.array([0.2, 0.4, 0.6, 1.5])
    _assert_cdf_within_standard_errors(np.asarray(m.cdf(theta, times, breaks)), tmrca, times)


def test_structured_tmrca_with_a_migration_change_against_msprime():
    demography = msprime.Demography.island_model([1.0, 1.0], 0.2)
    demography.add_migration_rate_change(time=1.0, rate=3.0)
    tmrca, _ = _simulate((2, 2), 0.2, seed=14, demography=demography)
    m = ptdcore.model(coalescent.structured((2, 2)), nr_moments=2, epochs=2)
    theta, breaks = jnp.array([[1.0, 0.2], [1.0, 3.0]]), jnp.array([1.0])
    moments = m(theta, jnp.zeros(0), breaks)[1]
    _assert_within_standard_errors(moments[0], tmrca)
    _assert_within_standard_errors(moments[1], tmrca**2)
    times = np.array([0.5, 1.0, 2.0, 4.0])
    _assert_cdf_within_standard_errors(np.asarray(m.cdf(theta, times, breaks)), tmrca, times)
