"""ptdcore.sfs: observed spectra against direct counts of the genotypes, folding against
its definition, the likelihoods against scipy's distributions, and a fit of msprime data
that recovers the truth within its standard errors."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import ptdcore
from ptdcore import sfs

jax.config.update("jax_enable_x64", True)


def test_from_tskit_counts_the_genotypes():
    msprime = pytest.importorskip("msprime")
    dm = msprime.Demography.island_model([1000, 1000], 1e-3)
    sets = [msprime.SampleSet(k, population=p, ploidy=1) for p, k in ((0, 4), (1, 3))]
    ts = msprime.sim_ancestry(
        sets, demography=dm, sequence_length=1e5, recombination_rate=1e-8, random_seed=3,
    )  # fmt: skip
    ts = msprime.sim_mutations(ts, rate=1e-7, random_seed=4, discrete_genome=False)
    sets = [ts.samples(population=0), ts.samples(population=1)]
    obs = sfs.from_tskit(ts, sets)
    G = ts.genotype_matrix()  # infinite sites: 0 ancestral, 1 derived
    expected = np.zeros((5, 4))
    for row in G:
        expected[row[sets[0]].sum(), row[sets[1]].sum()] += 1
    assert obs.shape == (5, 4) and obs.mask[0, 0] and obs.mask[4, 3]
    np.testing.assert_array_equal(obs.filled(0), np.where(sfs.corners((5, 4)), 0, expected))
    assert ts.num_sites > 50
    pooled = sfs.from_tskit(ts)
    np.testing.assert_array_equal(
        pooled.filled(0)[1:7], np.bincount(G.sum(axis=1), minlength=8)[1:7]
    )


def test_fold_by_definition():
    x = np.arange(1.0, 8.0)  # n = 6
    np.testing.assert_array_equal(sfs.fold(x), [1 + 7, 2 + 6, 3 + 5, 4, 0, 0, 0])
    joint = np.arange(20.0).reshape(5, 4)
    folded = sfs.fold(joint)
    assert folded.sum() == joint.sum()
    for i in range(5):
        for j in range(4):
            ci, cj = 4 - i, 3 - j
            if i + j < ci + cj:
                assert folded[i, j] == joint[i, j] + joint[ci, cj]
            elif i + j > ci + cj:
                assert folded[i, j] == 0
    # JAX arrays fold the same way, and differentiably
    np.testing.assert_array_equal(sfs.fold(jnp.asarray(joint)), folded)
    g = jax.grad(lambda a: sfs.fold(a)[1, 0])(jnp.asarray(joint))
    assert g[1, 0] == 1 and g[3, 3] == 1 and g.sum() == 2
    masked = sfs.fold(np.ma.MaskedArray(x, mask=sfs.corners((7,))))
    assert masked.mask.tolist() == [True, False, False, False, True, True, True]


def test_poisson_and_multinomial_against_scipy():
    rng = np.random.default_rng(0)
    expected = rng.uniform(0.5, 3.0, size=9)
    observed = rng.poisson(40 * expected)
    mask = np.zeros(9, dtype=bool)
    mask[[0, 8]] = True
    obs = np.ma.MaskedArray(observed, mask=mask)
    ll = sfs.loglik(jnp.asarray(expected), obs, kind="poisson", scale=40.0)
    want = stats.poisson.logpmf(observed[1:8], 40 * expected[1:8]).sum()
    np.testing.assert_allclose(ll, want, rtol=1e-12)
    ll = sfs.loglik(expected, obs, kind="multinomial")
    p = expected[1:8] / expected[1:8].sum()
    np.testing.assert_allclose(ll, stats.multinomial.logpmf(observed[1:8], observed[1:8].sum(), p),
                               rtol=1e-12)  # fmt: skip
    # the multinomial does not see the scale
    np.testing.assert_allclose(sfs.loglik(7 * expected, obs), ll, rtol=1e-12)


def test_impossible_entries_warn_and_give_minus_infinity():
    expected = np.array([0.0, 2.0, 1.0, 0.0])
    observed = np.array([3, 5, 2, 1])
    with pytest.warns(RuntimeWarning, match=r"\(0,\), \(3,\)"):
        assert sfs.loglik(expected, observed) == -np.inf
    masked = np.ma.MaskedArray(observed, mask=[True, False, False, True])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(sfs.loglik(expected, masked))
    with pytest.warns(RuntimeWarning, match="expected zero"):  # also under jit
        out = jax.jit(lambda e: sfs.loglik(e, observed))(jnp.asarray(expected))
        jax.effects_barrier()
    assert out == -np.inf
    assert np.isnan(sfs.loglik(np.array([0.0, -1.0, 1.0, 0.0]), masked))
    with pytest.raises(ValueError, match="scale"):
        sfs.loglik(expected, masked, kind="poisson")
    with pytest.raises(ValueError, match="shape"):
        sfs.loglik(expected[:3], masked)
    with pytest.raises(ValueError, match="kind"):
        sfs.loglik(expected, masked, kind="dirichlet")


@pytest.fixture(scope="module")
def two_epoch_data():
    """msprime data of a size change (N = 2000 then 500 before 300 generations ago),
    the SFS of 200 independent 1-kb loci, 12 genomes."""
    msprime = pytest.importorskip("msprime")
    demes = pytest.importorskip("demes")
    b = demes.Builder(time_units="generations")
    b.add_deme("A", epochs=[dict(start_size=500, end_time=300), dict(start_size=2000)])
    graph = b.resolve()
    dm = msprime.Demography.from_demes(graph)
    spectra = []
    reps = msprime.sim_ancestry(
        [msprime.SampleSet(12, population="A", ploidy=1)], demography=dm, sequence_length=1e3,
        num_replicates=400, random_seed=11,
    )  # fmt: skip
    for seed, ts in enumerate(reps, start=1):
        ts = msprime.sim_mutations(ts, rate=2e-6, random_seed=seed)
        spectra.append(sfs.from_tskit(ts).filled(0))
    return graph, np.array(spectra)


def test_fit_recovers_the_truth_with_standard_errors(two_epoch_data):
    from ptdcore import demography

    graph, spectra = two_epoch_data
    d = demography.from_demes(graph, {"A": 12})
    observed = np.ma.MaskedArray(spectra.sum(axis=0), mask=sfs.corners((13,)))
    scale = 2e-6 * 1e3 * len(spectra)  # mutation rate x sequence length x loci
    names = d.parameter_names
    fitted = [names.index("A.epochs[0].start_size"), names.index("A.epochs[1].start_size")]

    def loglik(log_sizes, obs):
        values = jnp.asarray(d.values).at[np.array(fitted)].set(jnp.exp(log_sizes))
        return sfs.loglik(d.expected_sfs(values), obs, kind="poisson", scale=scale)

    truth = np.log([500.0, 2000.0])
    res = ptdcore.fit_mle(loglik, np.log([1000.0, 1000.0]), observed=observed)
    assert res.converged
    z = (res.estimate - truth) / res.stderr
    assert np.all(np.abs(z) < 4), (res.estimate, res.stderr)
    # Godambe errors from a bootstrap over loci: the sites of one locus share its tree, so
    # the composite likelihood's honest errors are larger than the Poisson ones, not smaller
    rng = np.random.default_rng(1)
    boots = [
        np.ma.MaskedArray(spectra[rng.integers(0, len(spectra), len(spectra))].sum(axis=0),
                          mask=sfs.corners((13,)))
        for _ in range(30)
    ]  # fmt: skip
    se = res.godambe(boots)
    assert se.cov.shape == (2, 2)
    assert np.all((se > 0.8 * res.stderr) & (se < 5.0 * res.stderr)), (se, res.stderr)


def test_gradients_are_finite_with_zero_corners():
    """Expected corners are zero (masked): the gradient of either likelihood is the closed
    form on the other entries and 0 on the corners, not NaN."""
    expected = jnp.array([0.0, 2.0, 1.0, 0.5, 0.0])
    counts = np.array([0, 7, 3, 0, 0])
    observed = np.ma.MaskedArray(counts, mask=sfs.corners((5,)))
    use = ~observed.mask
    g = np.asarray(jax.grad(lambda e: sfs.loglik(e, observed))(expected))
    e = np.asarray(expected)
    want = np.where(use, counts / np.where(use, e, 1) - counts.sum() / e[use].sum(), 0.0)
    np.testing.assert_allclose(g, want, rtol=1e-12)
    g = np.asarray(jax.grad(lambda e: sfs.loglik(e, observed, kind="poisson", scale=2.0))(expected))
    want = np.where(use, counts / np.where(use, e, 1) - 2.0, 0.0)
    np.testing.assert_allclose(g, want, rtol=1e-12)
