"""The engine's sparse route of ptdcore.demography (models whose events only relabel
lineages: size and migration changes, splits, branches) against independent answers: the
dense route (Van Loan exponentials in JAX, the chain mapped at each event time: another
state space and another algorithm), PhaseGen, central differences and msprime
simulations at 10 + 10 samples, where the dense chain cannot be stored."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

demes = pytest.importorskip("demes")
from ptdcore import demography  # noqa: E402
from ptdcore.demography.chain import expected_rewards  # noqa: E402
from ptdcore.demography.engine_chain import EngineChain, relabels_only  # noqa: E402
from ptdcore.demography.examples import (  # noqa: E402
    island,
    isolation_migration,
    split_pulse_migration,
)

jax.config.update("jax_enable_x64", True)


def migration_window() -> demes.Graph:
    """Two demes; A changes size 500 generations ago; they exchange migrants only before
    200 generations ago (so lineages in both demes cannot meet in the first interval)."""
    b = demes.Builder(time_units="generations")
    b.add_deme("A", epochs=[dict(start_size=1000, end_time=500), dict(start_size=300)])
    b.add_deme("B", epochs=[dict(start_size=800)])
    b.add_migration(demes=["A", "B"], rate=5e-4, end_time=200)
    return b.resolve()


def three_demes() -> demes.Graph:
    """An ancestor splits into A and B 1,000 generations ago; C branches from A 400
    generations ago; A shrinks at 300; migration B -> C always, A -> B until 100."""
    b = demes.Builder(time_units="generations")
    b.add_deme("anc", epochs=[dict(start_size=2000, end_time=1000)])
    b.add_deme("A", ancestors=["anc"],
               epochs=[dict(start_size=1000, end_time=300), dict(start_size=200)])  # fmt: skip
    b.add_deme("B", ancestors=["anc"], epochs=[dict(start_size=700)])
    b.add_deme("C", ancestors=["A"], start_time=400, epochs=[dict(start_size=500)])
    b.add_migration(source="B", dest="C", rate=3e-4)
    b.add_migration(source="A", dest="B", rate=1e-4, end_time=100)
    return b.resolve()


MODELS = [
    (migration_window(), {"A": 3, "B": 2}),
    (isolation_migration(), {"A": 3, "B": 3}),
    (three_demes(), {"A": 2, "B": 2, "C": 2}),
]


@pytest.mark.parametrize("graph, samples", MODELS, ids=["window", "split", "branch"])
@pytest.mark.parametrize("kind", ["pooled", "joint"])
def test_engine_route_against_the_dense_route(graph, samples, kind):
    d = demography.from_demes(graph, samples)
    assert relabels_only(d.schedule)
    shape = (sum(samples.values()) + 1,) if kind == "pooled" else d.shape
    sparse = EngineChain(d.schedule, d.counts, kind, shape, d.ploidy, 10**5)
    struct, R = d._sfs_route(kind)

    def dense(v):
        return expected_rewards(d.schedule, struct, R, v, d.ploidy)

    v = jnp.asarray(d.values) * (1.0 + 0.01 * np.arange(d.values.size))  # all distinct
    ours, theirs = np.asarray(sparse.means(v)), np.asarray(dense(v))
    np.testing.assert_allclose(ours, theirs, rtol=1e-11, atol=1e-12 * theirs.max())
    # Jacobians on the log scale, each column judged against its largest entry
    jac = np.asarray(jax.jacfwd(sparse.means)(v)) * np.asarray(v)
    jac_dense = np.asarray(jax.jacfwd(dense)(v)) * np.asarray(v)
    scale = np.abs(jac_dense).max(axis=0)
    assert np.all(scale > 0)
    assert np.abs(jac - jac_dense).max(axis=0).max() <= 1e-10 * scale.max()
    assert np.all(np.abs(jac - jac_dense).max(axis=0) <= 1e-10 * scale)


def test_routes_chosen_per_model():
    pulse = demography.from_demes(split_pulse_migration(), {"A": 2, "B": 2})
    assert not relabels_only(pulse.schedule) and pulse._on_engine("pooled") is None
    small_split = demography.from_demes(isolation_migration(), {"A": 2, "B": 2})
    assert small_split._on_engine("pooled") is None  # several intervals, few states: dense
    one_interval = demography.from_demes(island(), {"A": 3, "B": 3})
    assert one_interval._on_engine("pooled") is not None  # one interval: a solve
    assert "engine" in one_interval.representation


def test_one_interval_against_phasegen_and_its_hessian_against_differences():
    """Island model, 3 + 2: PhaseGen's exact SFS (ploidy 1), and the engine's second
    derivatives (one interval) against central differences of its exact gradient."""
    import logging

    d = demography.from_demes(island(), {"A": 3, "B": 2}, ploidy=1)
    assert d._on_engine("pooled") is not None
    pg = pytest.importorskip("phasegen")
    logging.getLogger("phasegen").setLevel(logging.ERROR)
    theirs = pg.Coalescent(
        n={"A": 3, "B": 2},
        demography=pg.Demography(
            pop_sizes={"A": 1000.0, "B": 1000.0},
            migration_rates={("A", "B"): 5e-4, ("B", "A"): 5e-4},
        ),
    )
    np.testing.assert_allclose(d.expected_sfs(kind="pooled"), theirs.sfs.mean.data, rtol=1e-10)

    scale = jnp.asarray(d.values)

    def f(u):
        s = d.expected_sfs(scale * u, kind="pooled")
        return jnp.log(s[1:-1]) @ jnp.arange(1.0, s.size - 1)

    u = jnp.ones(scale.size)
    grad_f = jax.jit(jax.grad(f))
    H = np.asarray(jax.jit(jax.hessian(f))(u))
    h, eye = 1e-3, np.eye(scale.size)
    H_fd = np.array(
        [
            (
                8 * (grad_f(u + h * e) - grad_f(u - h * e))
                - (grad_f(u + 2 * h * e) - grad_f(u - 2 * h * e))
            )
            / (12 * h)
            for e in eye
        ]  # fmt: skip
    )
    np.testing.assert_allclose(H, H_fd, rtol=1e-6, atol=1e-7 * np.abs(H_fd).max())
    np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12 * np.abs(H).max())


def test_ten_plus_ten_pooled_against_msprime():
    """24,840 pooled states (the dense chain would need 5 GB per matrix): the expected
    SFS against msprime's branch SFS (z-scores within Monte-Carlo error)."""
    msprime = pytest.importorskip("msprime")
    graph, samples = island(), {"A": 10, "B": 10}
    d = demography.from_demes(graph, samples)
    assert d.state_space_size("pooled") == 24_840
    pooled = np.asarray(d.expected_sfs(kind="pooled"))
    assert pooled[0] == 0 and pooled[-1] == 0 and np.all(pooled[1:-1] > 0)
    dm = msprime.Demography.from_demes(graph)
    sets = [msprime.SampleSet(n, population=name, ploidy=1) for name, n in samples.items()]
    draws = np.array([
        ts.allele_frequency_spectrum(mode="branch", polarised=True, span_normalise=True)
        for ts in msprime.sim_ancestry(sets, demography=dm, ploidy=2, num_replicates=3000,
                                       random_seed=5)
    ])  # fmt: skip
    se = draws[:, 1:-1].std(axis=0) / np.sqrt(len(draws))
    z = (draws[:, 1:-1].mean(axis=0) - pooled[1:-1]) / se
    assert np.abs(z).max() < 4.5
    # exact first derivatives on that space against central differences of the values
    v = jnp.asarray(d.values)
    jac = np.asarray(jax.jacfwd(lambda x: d.expected_sfs(x, kind="pooled"))(v)) * d.values
    h = 1e-4
    fd = np.array([
        (np.asarray(d.expected_sfs(v * (1 + h * e), kind="pooled"))
         - np.asarray(d.expected_sfs(v * (1 - h * e), kind="pooled"))) / (2 * h)
        for e in np.eye(v.size)
    ]).T  # fmt: skip
    np.testing.assert_allclose(jac, fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())
