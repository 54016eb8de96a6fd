"""Small demes models used by the tests, the benchmarks and the docs (generations,
individuals)."""

from __future__ import annotations

from typing import Any


def one_size_change(ancient: float = 10_000.0, recent: float = 1_000.0,
                    time: float = 2_000.0) -> Any:  # fmt: skip
    """One deme: size ``ancient`` until ``time`` generations ago, ``recent`` since."""
    import demes

    b = demes.Builder(time_units="generations")
    b.add_deme("A", epochs=[dict(start_size=ancient, end_time=time), dict(start_size=recent)])
    return b.resolve()


def isolation_migration() -> Any:
    """An ancestor (1,500) splits 800 generations ago into A (1,000) and B (400), with
    asymmetric migration (5e-4 into B from A, 1e-4 into A from B, forwards in time)."""
    import demes

    b = demes.Builder(time_units="generations")
    b.add_deme("anc", epochs=[dict(start_size=1500, end_time=800)])
    b.add_deme("A", ancestors=["anc"], epochs=[dict(start_size=1000)])
    b.add_deme("B", ancestors=["anc"], epochs=[dict(start_size=400)])
    b.add_migration(source="A", dest="B", rate=5e-4)
    b.add_migration(source="B", dest="A", rate=1e-4)
    return b.resolve()


def island(size: float = 1000.0, rate: float = 5e-4, split: float | None = None) -> Any:
    """Two demes A and B of ``size`` with symmetric migration ``rate``, for ever (the
    island model), or since an ancestor of the same size split ``split`` generations ago."""
    import demes

    b = demes.Builder(time_units="generations")
    if split is None:
        b.add_deme("A", epochs=[dict(start_size=size)])
        b.add_deme("B", epochs=[dict(start_size=size)])
    else:
        b.add_deme("anc", epochs=[dict(start_size=size, end_time=split)])
        b.add_deme("A", ancestors=["anc"], epochs=[dict(start_size=size)])
        b.add_deme("B", ancestors=["anc"], epochs=[dict(start_size=size)])
    b.add_migration(demes=["A", "B"], rate=rate)
    return b.resolve()


def split_pulse_migration() -> Any:
    """An ancestor (1,000) splits 500 generations ago into A (2,000) and B (500, then 800
    from 100 generations ago); migration into B from A at 2e-4; a pulse of 20 % from A into
    B 50 generations ago."""
    import demes

    b = demes.Builder(time_units="generations")
    b.add_deme("anc", epochs=[dict(start_size=1000, end_time=500)])
    b.add_deme("A", ancestors=["anc"], epochs=[dict(start_size=2000)])
    b.add_deme("B", ancestors=["anc"],
               epochs=[dict(start_size=500, end_time=100), dict(start_size=800)])  # fmt: skip
    b.add_migration(source="A", dest="B", rate=2e-4)
    b.add_pulse(sources=["A"], dest="B", time=50, proportions=[0.2])
    return b.resolve()


def two_epoch_spectrum(
    n: int = 16, mu: float = 5e-6, length: float = 1000.0, loci: int = 400, seed: int = 11
) -> tuple[Any, Any, float]:
    """(graph, observed SFS, mutation rate x total length) of the 3-parameter SFS model the
    SVGD tests and comparisons use: one deme, 2,000 individuals until 300 generations ago
    and 500 since; ``loci`` unlinked msprime loci of ``length`` bp, ``n`` haploid samples
    (about 15,000 segregating sites with the defaults). Needs msprime."""
    import demes
    import msprime
    import numpy as np

    b = demes.Builder(time_units="generations")
    b.add_deme("A", epochs=[dict(start_size=2000, end_time=300), dict(start_size=500)])
    graph = b.resolve()
    spectrum = np.zeros(n + 1)
    replicates = msprime.sim_ancestry(
        {"A": n}, demography=msprime.Demography.from_demes(graph), ploidy=1,
        sequence_length=length, recombination_rate=1e-8, num_replicates=loci, random_seed=seed,
    )  # fmt: skip
    for k, ts in enumerate(replicates, start=1):
        ts = msprime.sim_mutations(ts, rate=mu, random_seed=k, discrete_genome=False)
        spectrum += ts.allele_frequency_spectrum(mode="site", polarised=True, span_normalise=False)
    return graph, spectrum, mu * length * loci


PRIOR_MEAN = (1000.0, 1000.0, 300.0)
"""The prior's centre (ancient size, recent size, time) of :func:`two_epoch_posterior`,
on the natural scale; its parameters are their logs, Normal around the logs of these."""
PRIOR_SD = 2.0
"""... with this standard deviation per coordinate."""


def two_epoch_posterior() -> tuple[Any, Any]:
    """(log-likelihood, log prior) of log (ancient size, recent size, time) given
    :func:`two_epoch_spectrum`'s data (Poisson SFS likelihood; prior Normal(log
    :data:`PRIOR_MEAN`, :data:`PRIOR_SD` ^ 2) per coordinate): the 3-parameter posterior
    the SVGD test and ``asv_bench/compare_svgd.py`` sample. Needs msprime."""
    import jax.numpy as jnp
    import numpy as np

    from .. import sfs
    from . import from_demes

    graph, spectrum, scale = two_epoch_spectrum()
    observed = np.ma.MaskedArray(spectrum, mask=sfs.corners(spectrum.shape))
    d = from_demes(graph, {"A": spectrum.size - 1})
    centre = jnp.log(jnp.array(PRIOR_MEAN))

    def loglik(t: Any) -> Any:
        return sfs.loglik(d.expected_sfs(jnp.exp(t)), observed, kind="poisson", scale=scale)

    def log_prior(t: Any) -> Any:
        return jnp.sum(-0.5 * ((t - centre) / PRIOR_SD) ** 2)

    return loglik, log_prior
