"""ptdcore.demography against independent answers: closed forms, the engine's epoch
routes (a different algorithm on a different state space) and msprime simulations of
three demes models (z-scores within Monte-Carlo error)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ptdcore
from ptdcore import coalescent

demes = pytest.importorskip("demes")
from ptdcore import demography  # noqa: E402
from ptdcore.demography.examples import isolation_migration, split_pulse_migration  # noqa: E402
from ptdcore.sfs import corners  # noqa: E402

jax.config.update("jax_enable_x64", True)


def one_deme(sizes: list[float], ends: list[float]) -> demes.Graph:
    """One deme with constant-size epochs, oldest first (sizes, end times)."""
    b = demes.Builder(time_units="generations")
    b.add_deme(
        "A", epochs=[dict(start_size=s, end_time=e) for s, e in zip(sizes, ends, strict=True)]
    )
    return b.resolve()


THREE_EPOCHS = one_deme([2000.0, 300.0, 1000.0], [400.0, 150.0, 0.0])


def test_constant_size_closed_form():
    d = demography.from_demes(one_deme([1000.0], [0.0]), {"A": 10})
    assert d.lumped and d.parameter_names == ["A.epochs[0].start_size"]
    sfs = np.asarray(d.expected_sfs())
    i = np.arange(1, 10)
    np.testing.assert_allclose(sfs[1:10], 4000.0 / i, rtol=1e-12)  # 4N / i (ploidy 2)
    assert sfs[0] == 0 and sfs[10] == 0
    haploid = demography.from_demes(one_deme([1000.0], [0.0]), {"A": 10}, ploidy=1)
    np.testing.assert_allclose(np.asarray(haploid.expected_sfs())[1:10], 2000.0 / i, rtol=1e-12)
    # E[T_MRCA] = 4N (1 - 1/n), E[T^2] from the sum of independent exponentials
    rates = np.array([k * (k - 1) / 2 / 2000.0 for k in range(2, 11)])
    mean = (1 / rates).sum()
    second = (1 / rates**2).sum() + mean**2
    np.testing.assert_allclose(np.asarray(d.tmrca().moments()), [mean, second], rtol=1e-11)


def test_size_changes_against_the_engine_with_derivatives():
    """The lumped chain with Griffiths-Tavare weights against the engine's block-counting
    epochs (another state space, another algorithm), values and gradients."""
    n = 7
    d = demography.from_demes(THREE_EPOCHS, {"A": n})
    assert d.lumped
    names = d.parameter_names
    graph, rewards = coalescent.kingman_sfs(n)
    rm = ptdcore.reward_moments(graph, rewards, epochs=3)

    def engine(v):  # v in the demography's order: sizes (oldest first), then times
        sizes = {k: v[names.index(f"A.epochs[{k}].start_size")] for k in range(3)}
        rows = jnp.stack([1 / (2 * sizes[2]), 1 / (2 * sizes[1]), 1 / (2 * sizes[0])])[:, None]
        breaks = jnp.stack(
            [v[names.index("A.epochs[1].end_time")], v[names.index("A.epochs[0].end_time")]]
        )
        return rm(rows, breaks)

    v = jnp.asarray(d.values)
    mean, cross = engine(v)
    np.testing.assert_allclose(np.asarray(d.expected_sfs())[1:n], mean, rtol=1e-10)
    g_ours = jax.jacfwd(lambda x: d.expected_sfs(x)[1:n])(v)
    g_engine = jax.jacfwd(lambda x: engine(x)[0])(v)
    np.testing.assert_allclose(g_ours, g_engine, rtol=1e-8, atol=1e-12 * np.abs(g_engine).max())
    # the cross moments: sfs_moments (the engine, for one deme) against the dense
    # block-counting chain of the demography (Van Loan blocks in JAX)
    from ptdcore.demography.chain import reward_cross_moments
    from ptdcore.demography.lineages import reward_matrix

    pooled = d._chain("pooled")
    dense = jax.jit(
        lambda x: reward_cross_moments(
            d.schedule, pooled, reward_matrix(pooled.states, (n + 1,)), x, 2
        )
    )
    m2, c2 = dense(v)
    np.testing.assert_allclose(np.asarray(m2)[1:n], mean, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(c2)[1:n, 1:n], cross, rtol=1e-9)
    m3, c3 = d.sfs_moments(kind="pooled")
    np.testing.assert_allclose(c3, c2, rtol=1e-9, atol=1e-12 * np.abs(c2).max())
    j_engine = jax.jacfwd(lambda x: d.sfs_moments(x)[1][1:n, 1:n])(v)
    j_dense = jax.jacfwd(lambda x: dense(x)[1][1:n, 1:n])(v)
    np.testing.assert_allclose(j_engine, j_dense, rtol=1e-7, atol=1e-10 * np.abs(j_dense).max())


def test_hessian_in_event_times_closed_form():
    """Two genomes, one in each of two demes split at time T from an ancestor of size N:
    T_MRCA = T + Exp(rate 1/(2N)): E[T] = T + 2N, E[T^2] = T^2 + 4NT + 8N^2, and the
    pooled SFS's singleton entry is 2 E[T]."""
    b = demes.Builder(time_units="generations")
    b.add_deme("anc", epochs=[dict(start_size=700, end_time=300)])
    b.add_deme("A", ancestors=["anc"], epochs=[dict(start_size=100)])
    b.add_deme("B", ancestors=["anc"], epochs=[dict(start_size=100)])
    d = demography.from_demes(b.resolve(), {"A": 1, "B": 1})
    names = d.parameter_names
    iN, iT = names.index("anc.epochs[0].start_size"), names.index("A.start_time")
    assert d.aliases["A.start_time"] == ("A.start_time", "B.start_time", "anc.epochs[0].end_time")
    v = jnp.asarray(d.values)
    second = lambda x: d.tmrca(x).moments()[1]  # noqa: E731
    H = np.asarray(jax.jit(jax.hessian(second))(v))
    np.testing.assert_allclose(H[np.ix_([iN, iT], [iN, iT])], [[16.0, 4.0], [4.0, 2.0]], rtol=1e-9)
    singletons = lambda x: d.expected_sfs(x, kind="pooled")[1]  # noqa: E731
    np.testing.assert_allclose(singletons(v), 2 * (300 + 1400), rtol=1e-12)
    g = np.asarray(jax.jit(jax.grad(singletons))(v))
    np.testing.assert_allclose(g[[iN, iT]], [4.0, 2.0], rtol=1e-10)
    assert np.all(np.asarray(jax.jit(jax.hessian(singletons))(v)) == pytest.approx(0.0, abs=1e-12))


def test_msprime_and_demes_forms_agree():
    msprime = pytest.importorskip("msprime")
    g = split_pulse_migration()
    a = demography.from_demes(g, {"A": 3, "B": 2})
    b = demography.from_msprime(msprime.Demography.from_demes(g), {"A": 3, "B": 2})
    np.testing.assert_allclose(a.expected_sfs(), b.expected_sfs(), rtol=1e-12)


def _msprime_branch_sfs(graph, samples, replicates, seed):
    msprime = pytest.importorskip("msprime")
    dm = msprime.Demography.from_demes(graph)
    sets = [msprime.SampleSet(n, population=name, ploidy=1) for name, n in samples.items()]
    sfs, tmrca = [], []
    for ts in msprime.sim_ancestry(sets, demography=dm, ploidy=2, num_replicates=replicates,
                                   random_seed=seed):  # fmt: skip
        groups = [ts.samples(population=dm[name].id) for name in samples]
        sfs.append(ts.allele_frequency_spectrum(groups, mode="branch", polarised=True))
        tree = ts.first()
        tmrca.append(tree.time(tree.root))
    return np.array(sfs), np.array(tmrca)


def _z(draws, expected):
    se = draws.std(axis=0) / np.sqrt(len(draws))
    return np.where(se > 0, (draws.mean(axis=0) - expected) / np.where(se > 0, se, 1), 0.0)


@pytest.mark.parametrize(
    "graph, samples",
    [
        (THREE_EPOCHS, {"A": 8}),
        (isolation_migration(), {"A": 3, "B": 3}),
        (split_pulse_migration(), {"A": 4, "B": 3}),
    ],
    ids=["three-epochs", "isolation-migration", "pulse-split"],
)
def test_against_msprime(graph, samples):
    d = demography.from_demes(graph, samples)
    draws, tmrca = _msprime_branch_sfs(graph, samples, 4000, seed=7)
    joint = np.asarray(d.expected_sfs())
    assert joint.shape == tuple(n + 1 for n in samples.values())
    assert np.abs(_z(draws, joint)).max() < 4.5
    pooled = np.asarray(d.expected_sfs(kind="pooled"))
    pooled_draws = np.array([np.asarray(demography.from_joint(x, "pooled")) for x in draws])
    assert np.abs(_z(pooled_draws, pooled)).max() < 4.5
    for k, marginal in enumerate(d.expected_sfs(kind="marginal")):
        axes = tuple(a for a in range(draws.ndim - 1) if a != k)
        assert (
            np.abs(_z(draws.sum(axis=tuple(a + 1 for a in axes)), np.asarray(marginal))).max() < 4.5
        )
    m1, m2 = np.asarray(d.tmrca().moments())
    assert abs(_z(tmrca, m1)) < 4.5 and abs(_z(tmrca**2, m2)) < 4.5
    # the cdf against the empirical one (Kolmogorov-Smirnov at 4000 draws: 0.03 is p ~ 1e-3)
    grid = np.quantile(tmrca, np.linspace(0.05, 0.95, 19))
    assert np.abs(np.asarray(d.tmrca().cdf(grid)) - np.linspace(0.05, 0.95, 19)).max() < 0.03


def test_derivatives_of_a_structured_model_match_differences():
    """Gradient and Hessian of a pooled-SFS summary against central differences (an
    independent route: values only)."""
    d = demography.from_demes(split_pulse_migration(), {"A": 2, "B": 2})
    scale = jnp.asarray(d.values)

    def f(u):  # relative coordinates, so that every direction is of order one
        s = d.expected_sfs(scale * u, kind="pooled")
        return jnp.log(s[1:-1]) @ jnp.arange(1.0, s.size - 1)

    u = jnp.ones(scale.size)
    grad_f = jax.jit(jax.grad(f))
    g, H = np.asarray(grad_f(u)), np.asarray(jax.jit(jax.hessian(f))(u))
    h, eye = 1e-3, np.eye(scale.size)  # fourth-order differences (the values carry ~1e-13)

    def diff(fn, e):
        return (8 * (fn(u + h * e) - fn(u - h * e)) - (fn(u + 2 * h * e) - fn(u - 2 * h * e))) / (
            12 * h
        )

    g_fd = np.array([diff(jax.jit(f), e) for e in eye])
    H_fd = np.array([diff(grad_f, e) for e in eye])
    np.testing.assert_allclose(g, g_fd, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(H, H_fd, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12)


def test_invalid_values_give_nan_for_that_call_only():
    d = demography.from_demes(split_pulse_migration(), {"A": 2, "B": 1})
    v = np.array(d.values)
    bad_size = v.copy()
    bad_size[0] = -1.0
    bad_order = v.copy()
    bad_order[d.parameter_names.index("pulses[0].time")] = 1e4  # after the split
    bad_prop = v.copy()
    bad_prop[d.parameter_names.index("pulses[0].proportions[0]")] = 1.5
    batch = jax.vmap(lambda x: d.expected_sfs(x))(
        jnp.asarray(np.stack([v, bad_size, bad_order, bad_prop]))
    )
    assert np.all(np.isfinite(batch[0]))
    assert np.all(np.isnan(batch[1:]))
    with pytest.raises(ValueError, match="parameters"):
        d.expected_sfs(v[:-1])
    with pytest.raises(ValueError, match="kind"):
        d.expected_sfs(kind="folded")


def test_unsupported_features_and_bad_samples_are_named():
    b = demes.Builder(time_units="generations")
    b.add_deme("A", epochs=[dict(start_size=100, end_time=50), dict(start_size=100, end_size=1000)])
    with pytest.raises(NotImplementedError, match="exponential"):
        demography.from_demes(b.resolve(), {"A": 4})
    b = demes.Builder(time_units="generations")
    b.add_deme("A", epochs=[dict(start_size=100, selfing_rate=0.1)])
    with pytest.raises(NotImplementedError, match="selfing"):
        demography.from_demes(b.resolve(), {"A": 4})
    g = split_pulse_migration()
    with pytest.raises(NotImplementedError, match="ancient"):
        demography.from_demes(g, {"anc": 2})
    with pytest.raises(ValueError, match="'C'"):
        demography.from_demes(g, {"C": 2})
    with pytest.raises(ValueError, match="two"):
        demography.from_demes(g, {"A": 1})
    big = demography.from_demes(g, {"A": 6, "B": 6}, max_states=2000)
    with pytest.raises(MemoryError, match="max_states"):
        big.expected_sfs(kind="joint")
    b = demes.Builder(time_units="generations")
    b.add_deme("A", epochs=[dict(start_size=100)])
    b.add_deme("B", epochs=[dict(start_size=100)])
    with pytest.raises(ValueError, match="never meet"):
        demography.from_demes(b.resolve(), {"A": 1, "B": 1})


def test_yaml_path_and_years(tmp_path):
    b = demes.Builder(time_units="years", generation_time=25)
    b.add_deme("A", epochs=[dict(start_size=1000, end_time=2500), dict(start_size=200)])
    path = tmp_path / "model.yaml"
    demes.dump(b.resolve(), path)
    d = demography.from_demes(str(path), {"A": 5})
    assert d.values[d.parameter_names.index("A.epochs[0].end_time")] == pytest.approx(100.0)
    gens = demography.from_demes(one_deme([1000.0, 200.0], [100.0, 0.0]), {"A": 5})
    np.testing.assert_allclose(d.expected_sfs(), gens.expected_sfs(), rtol=1e-12)


def test_against_phasegen_exact_values():
    """PhaseGen's exact SFS where it states the model (times and sizes in its units:
    ploidy 1, pair rate 1 / N). Its ``migration_rates[(a, b)]`` moves lineages from a to
    b backwards in time: demes' migration with source b and dest a."""
    import logging

    pg = pytest.importorskip("phasegen")
    logging.getLogger("phasegen").setLevel(logging.ERROR)
    size_change = pg.Coalescent(
        n=8, demography=pg.Demography(pop_sizes={"pop_0": {0: 1.0, 0.5: 3.0}})
    )
    b = demes.Builder(time_units="generations")
    b.add_deme("pop_0", epochs=[dict(start_size=3.0, end_time=0.5), dict(start_size=1.0)])
    ours = demography.from_demes(b.resolve(), {"pop_0": 8}, ploidy=1).expected_sfs()
    np.testing.assert_allclose(ours, size_change.sfs.mean.data, rtol=1e-10)

    rates = {("A", "B"): 0.5, ("B", "A"): 0.1}
    theirs = pg.Coalescent(
        n={"A": 2, "B": 1},
        demography=pg.Demography(pop_sizes={"A": 1.0, "B": 2.0}, migration_rates=rates),
    )
    b = demes.Builder(time_units="generations")
    b.add_deme("A", epochs=[dict(start_size=1.0)])
    b.add_deme("B", epochs=[dict(start_size=2.0)])
    for (frm, to), rate in rates.items():
        b.add_migration(source=to, dest=frm, rate=rate)
    d = demography.from_demes(b.resolve(), {"A": 2, "B": 1}, ploidy=1)
    np.testing.assert_allclose(d.expected_sfs(kind="pooled"), theirs.sfs.mean.data, rtol=1e-10)
    # the joint chain (types per deme), pooled afterwards, says the same
    pooled_joint = demography.from_joint(d.expected_sfs(kind="joint"), "pooled")
    np.testing.assert_allclose(pooled_joint, theirs.sfs.mean.data, rtol=1e-10)


def test_joint_sfs_against_moments_within_its_approximation():
    """moments (a diffusion approximation with a jackknife for migration) gives the joint SFS
    of isolation with asymmetric migration within 2 % of the exact one at 3 + 3 (with
    ``u=1`` its expected counts are branch lengths in generations, as ours)."""
    moments = pytest.importorskip("moments")
    graph = isolation_migration()
    theirs = np.asarray(
        moments.Demes.SFS(graph, sampled_demes=["A", "B"], sample_sizes=[3, 3], u=1.0)
    )
    ours = np.asarray(demography.from_demes(graph, {"A": 3, "B": 3}).expected_sfs())
    inner = ~corners(ours.shape)
    np.testing.assert_allclose(theirs[inner], ours[inner], rtol=0.02)


def test_a_long_strong_bottleneck_is_finite_and_exact():
    """Size 10 for a million generations (rate x time ~ 1e7 at n = 20, past jax's default
    squaring limit) before a size of 10,000: every lineage coalesces inside it, so the SFS
    is the constant-size one of N = 10, 4N / i."""
    b = demes.Builder(time_units="generations")
    b.add_deme("A", epochs=[dict(start_size=1e4, end_time=1e6), dict(start_size=10.0)])
    d = demography.from_demes(b.resolve(), {"A": 20})
    sfs = np.asarray(d.expected_sfs())
    np.testing.assert_allclose(sfs[1:20], 40.0 / np.arange(1, 20), rtol=1e-12)
    two = demography.from_demes(b.resolve(), {"A": 2})
    np.testing.assert_allclose(two.tmrca().moments(), [20.0, 800.0], rtol=1e-12)


def test_cross_moments_through_a_long_strong_bottleneck():
    """Two demes split 100 generations ago from an ancestor of size 10 that lasted a million
    generations (rate x time ~ 1e5): the SFS moments equal those of an ancestor of size 10 for
    ever (the open last interval, by solves) to 1e-12."""

    def model(bottleneck_forever):
        b = demes.Builder(time_units="generations")
        epochs = [dict(start_size=10.0)]
        if not bottleneck_forever:
            epochs = [dict(start_size=1e4, end_time=1e6 + 100), dict(start_size=10.0)]
        b.add_deme("anc", epochs=[{**e, "end_time": e.get("end_time", 100)} for e in epochs])
        b.add_deme("A", ancestors=["anc"], epochs=[dict(start_size=500)])
        b.add_deme("B", ancestors=["anc"], epochs=[dict(start_size=300)])
        return demography.from_demes(b.resolve(), {"A": 2, "B": 2})

    (mean, cross), (mean_ref, cross_ref) = (model(x).sfs_moments() for x in (False, True))
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-12)
    np.testing.assert_allclose(cross, cross_ref, rtol=1e-12)
