"""Distribution functions and sampling (contract section 7): cdf/sf at 100 times, quantiles,
and one million exact draws, on the Kingman TMRCA."""

from __future__ import annotations

import numpy as np

from .common import kingman


class DistributionFunctions:
    """jit(vmap) of cdf and sf over 100 particles x 100 times (ffi), and 1e6 draws."""

    params = [10, 20]
    param_names = ["n"]
    timeout = 600

    def setup(self, n):
        import jax
        import jax.numpy as jnp

        import ptdcore

        self.model = ptdcore.model(kingman(n), nr_moments=2)
        self.thetas = jnp.asarray(np.linspace(0.7, 1.4, 100)[:, None])
        self.times = jnp.asarray(np.linspace(0.05, 6.0, 100))
        self.cdf = jax.jit(jax.vmap(self.model.cdf, in_axes=(0, None)))
        self.sf = jax.jit(jax.vmap(self.model.sf, in_axes=(0, None)))
        self.quantile = jax.jit(self.model.quantile)
        self.levels = jnp.linspace(0.01, 0.99, 100)
        warm = [
            (self.cdf, (self.thetas, self.times)),
            (self.sf, (self.thetas, self.times)),
            (self.quantile, (self.thetas[0], self.levels)),
        ]
        for fn, args in warm:  # compile outside timing
            jax.block_until_ready(fn(*args))

    def time_cdf_100_particles_100_times(self, n):
        import jax

        jax.block_until_ready(self.cdf(self.thetas, self.times))

    def time_sf_100_particles_100_times(self, n):
        import jax

        jax.block_until_ready(self.sf(self.thetas, self.times))

    def time_quantile_100_levels(self, n):
        import jax

        jax.block_until_ready(self.quantile(self.thetas[0], self.levels))

    def time_sample_1e6(self, n):
        self.model.sample(np.array([1.0]), 1_000_000, seed=1)


class LogLikelihoodHessian:
    """jit(hessian) of a 100-observation Kingman TMRCA log-likelihood (ffi), one theta."""

    params = [10, 20]
    param_names = ["n"]
    timeout = 600

    def setup(self, n):
        import jax
        import jax.numpy as jnp

        import ptdcore

        from .common import observations

        model = ptdcore.model(kingman(n), nr_moments=2)
        data = jnp.asarray(observations(n))
        self.hessian = jax.jit(jax.hessian(lambda th: jnp.sum(jnp.log(model(th, data)[0]))))
        self.theta = jnp.array([1.0])
        jax.block_until_ready(self.hessian(self.theta))

    def time_hessian_100_observations(self, n):
        import jax

        jax.block_until_ready(self.hessian(self.theta))
