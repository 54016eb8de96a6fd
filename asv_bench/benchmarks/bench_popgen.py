"""Population genetics: the SFS (reward matrices) and epochs (time-varying demography).

Issue targets (26, 27): the expected SFS for n = 20 at a new theta costs no more than
PhaseGen's (measured side by side here when phasegen is installed); the SFS means and
covariances for n = 30; the TMRCA log-likelihood gradient under 3 epochs at n = 20.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np

from . import common  # noqa: F401  (float64 on for this process)


@cache
def sfs_function(n: int):
    import jax

    import ptdcore
    from ptdcore import coalescent

    graph, rewards = coalescent.kingman_sfs(n)
    return jax.jit(ptdcore.reward_moments(graph, rewards))


class SiteFrequencySpectrum:
    """Means and cross moments of the n - 1 SFS bins (one jitted call, a new theta each)."""

    params = [10, 20, 30]
    param_names = ["n"]
    timeout = 600

    def setup(self, n):
        import jax
        import jax.numpy as jnp

        self.fn = sfs_function(n)
        jax.block_until_ready(self.fn(jnp.array([1.0])))  # compile outside timing
        self.thetas = [jnp.array([c]) for c in np.linspace(0.5, 2.0, 16)]
        self.i = 0

    def time_sfs_mean_and_covariance(self, n):
        import jax

        self.i = (self.i + 1) % len(self.thetas)
        jax.block_until_ready(self.fn(self.thetas[self.i]))


class PhaseGenSFS:
    """PhaseGen's expected SFS at a new population size (same machine, for the ratio)."""

    params = [10, 20]
    param_names = ["n"]
    timeout = 600

    def setup(self, n):
        try:
            import phasegen
        except ImportError:
            raise NotImplementedError("phasegen is not installed") from None
        self.pg = phasegen
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _ = phasegen.Coalescent(n=n).sfs.mean  # warm up its caches and compilation
        self.sizes = list(np.linspace(0.5, 2.0, 16))
        self.i = 0

    def time_sfs_mean(self, n):
        self.i = (self.i + 1) % len(self.sizes)
        demography = self.pg.Demography(pop_sizes={"pop_0": float(self.sizes[self.i])})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _ = self.pg.Coalescent(n=n, demography=demography).sfs.mean.data


class EpochLogLikelihood:
    """jit(grad) of a 100-observation TMRCA log-likelihood under 3 epochs (a bottleneck),
    in the three pair rates and the two break times."""

    params = [10, 20]
    param_names = ["n"]
    timeout = 600

    def setup(self, n):
        import jax
        import jax.numpy as jnp

        import ptdcore
        from ptdcore import coalescent

        model = ptdcore.model(coalescent.kingman(n), nr_moments=0, epochs=3)
        rng = np.random.default_rng(3000 + n)
        data = jnp.asarray(np.sort(rng.gamma(2.0, 0.6, 100)))

        def loglik(theta, breaks):
            return jnp.sum(jnp.log(model(theta, data, breaks)[0]))

        self.fn = jax.jit(jax.grad(loglik, argnums=(0, 1)))
        self.theta = jnp.array([[1.0], [5.0], [1.0]])
        self.breaks = jnp.array([0.3, 0.6])
        jax.block_until_ready(self.fn(self.theta, self.breaks))

    def time_loglik_gradient(self, n):
        import jax

        jax.block_until_ready(self.fn(self.theta, self.breaks))


class DemographySFS:
    """ptdcore.demography: the expected SFS of one deme with one size change (the
    lineage-count distribution), the gradient of a log-SFS summary and the Jacobian of the
    SFS in all its numbers; a new recent size each call. Peers in one run:
    asv_bench/compare_peers.py."""

    params = [10, 20, 100, 1000]
    param_names = ["n"]
    timeout = 600

    def setup(self, n):
        import jax
        import jax.numpy as jnp

        from ptdcore import demography
        from ptdcore.demography import examples

        d = demography.from_demes(examples.one_size_change(), {"A": n})
        self.sfs = jax.jit(d.expected_sfs)
        self.grad = jax.jit(jax.grad(lambda x: jnp.log(d.expected_sfs(x)[1:-1]).sum()))
        self.jacobian = jax.jit(jax.jacfwd(d.expected_sfs))
        base = np.asarray(d.values)
        index = d.parameter_names.index("A.epochs[1].start_size")
        self.values = []
        for size in np.linspace(800.0, 1200.0, 16):
            v = base.copy()
            v[index] = size
            self.values.append(jnp.asarray(v))
        v0 = self.values[0]
        jax.block_until_ready((self.sfs(v0), self.grad(v0), self.jacobian(v0)))
        self.i = 0

    def time_expected_sfs(self, n):
        import jax

        self.i = (self.i + 1) % len(self.values)
        jax.block_until_ready(self.sfs(self.values[self.i]))

    def time_gradient(self, n):
        import jax

        self.i = (self.i + 1) % len(self.values)
        jax.block_until_ready(self.grad(self.values[self.i]))

    def time_jacobian(self, n):
        import jax

        self.i = (self.i + 1) % len(self.values)
        jax.block_until_ready(self.jacobian(self.values[self.i]))


class TwoDemeSFS:
    """ptdcore.demography: a split, asymmetric migration and a pulse; the pooled SFS (block
    counts, lineage type = total count)."""

    params = ["2+2", "3+3", "5+5"]  # genomes sampled in A and B
    param_names = ["samples"]
    timeout = 600
    kind = "pooled"

    def setup(self, samples):
        import jax

        from ptdcore import demography
        from ptdcore.demography import examples

        d = demography.from_demes(
            examples.split_pulse_migration(),
            dict(zip("AB", map(int, samples.split("+")), strict=True)),
        )
        self.values = jax.numpy.asarray(d.values)
        self.fn = jax.jit(lambda v: d.expected_sfs(v, kind=self.kind))
        jax.block_until_ready(self.fn(self.values))

    def time_expected_sfs(self, samples):
        import jax

        jax.block_until_ready(self.fn(self.values * 1.0001))


class TwoDemeJointSFS(TwoDemeSFS):
    """The same model's joint SFS (lineage type = count per deme; 5 + 5 would be 13,198
    states, past the dense limit)."""

    params = ["2+2", "3+3"]
    kind = "joint"


class SplitMigrationSFS:
    """ptdcore.demography: the pooled SFS of two demes with symmetric migration since a
    split 2,000 generations ago; 5 + 5 on the dense route, 10 + 10 (24,840 states) on the
    engine's sparse route (two epochs, the first crossed by the series, whose cost grows
    with the split time). The value only (its gradient at 10 + 10 takes seconds). PhaseGen
    and moments in one run: asv_bench/compare_island.py."""

    params = ["5+5", "10+10"]
    param_names = ["samples"]
    timeout = 900
    split: float | None = 2000.0

    def setup(self, samples):
        import jax
        import jax.numpy as jnp

        from ptdcore import demography
        from ptdcore.demography import examples

        counts = dict(zip("AB", map(int, samples.split("+")), strict=True))
        self.model = d = demography.from_demes(examples.island(split=self.split), counts)
        self.values = jnp.asarray(d.values)
        self.fn = jax.jit(lambda v: d.expected_sfs(v, kind="pooled"))
        jax.block_until_ready(self.fn(self.values))
        self.i = 0

    def _next(self):
        self.i += 1
        return self.values * (1.0 + 1e-4 * (self.i % 16))

    def time_expected_sfs(self, samples):
        import jax

        jax.block_until_ready(self.fn(self._next()))


class IslandSFS(SplitMigrationSFS):
    """The same two demes for ever (the island model, one interval: a solve), the value
    and the gradient of a log-SFS summary."""

    split = None

    def setup(self, samples):
        import jax
        import jax.numpy as jnp

        super().setup(samples)
        d = self.model
        summary = lambda v: jnp.log(d.expected_sfs(v, kind="pooled")[1:-1]).sum()  # noqa: E731
        self.grad = jax.jit(jax.grad(summary))
        jax.block_until_ready(self.grad(self.values))

    def time_gradient(self, samples):
        import jax

        jax.block_until_ready(self.grad(self._next()))
