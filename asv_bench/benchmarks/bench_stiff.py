"""Cost across the parameter space: the structured coalescent as migration grows stiff.

Issue target: the 100-particle value-and-gradient over 200 observations at
migration 1e6 costs at most a few times the cost at migration 0.5 (the engine
switches from the uniformisation series to the squaring ladder per theta).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from . import common  # noqa: F401  (float64 on for this process)

MIGRATIONS = [0.5, 1e2, 1e4, 1e6]
N_PARTICLES = 100
N_OBS = 200


@cache
def structured_model():
    import ptdcore
    from ptdcore.coalescent import structured_graph

    return ptdcore.model(structured_graph((2, 2)), nr_moments=2)


@cache
def observations() -> np.ndarray:
    rng = np.random.default_rng(2024)
    return np.sort(rng.exponential(1.0, N_OBS) + rng.exponential(1.0, N_OBS))


def particles(migration: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.column_stack(
        [rng.uniform(0.8, 1.2, N_PARTICLES), migration * rng.uniform(0.8, 1.2, N_PARTICLES)]
    )


class StiffStructuredCoalescent:
    """jit(vmap(value_and_grad(log-likelihood))) of the 2+2 structured coalescent (12 states)."""

    params = MIGRATIONS
    param_names = ["migration"]
    timeout = 600

    def setup(self, migration):
        import jax
        import jax.numpy as jnp

        model = structured_model()
        data = jnp.asarray(observations())
        self.thetas = jnp.asarray(particles(migration))
        self.fn = jax.jit(
            jax.vmap(jax.value_and_grad(lambda th: jnp.sum(jnp.log(model(th, data)[0]))))
        )
        jax.block_until_ready(self.fn(self.thetas))  # compile outside timing

    def time_loglik_value_and_grad(self, migration):
        import jax

        jax.block_until_ready(self.fn(self.thetas))


class StiffMomentDerivatives:
    """The engine alone (pybind11, 100 rows): E[T^k], k <= 4, with Jacobians of the 3+2
    structured coalescent, and the means of its pooled SFS with Jacobians (the route SFS
    likelihoods take). From migration 1e4 on the derivative solves run refined in
    double-double (cpp/include/ptdcore/refined_solves.hpp); 0.5 and 1e2 show the plain
    path."""

    params = MIGRATIONS
    param_names = ["migration"]
    timeout = 600

    def setup(self, migration):
        from ptdcore import get_backend
        from ptdcore.coalescent import structured_graph, structured_sfs

        self.backend = get_backend("pybind11")
        self.tmrca = structured_graph((3, 2)).structure()
        graph, rewards = structured_sfs((3, 2))
        self.sfs = graph.structure().with_reward_matrix(rewards)
        self.nr_bins = rewards.shape[1]
        self.thetas = particles(migration)
        self.none = np.zeros(0)

    def time_moments_with_jacobian(self, migration):
        self.backend.compute_pmf_and_moments(self.tmrca, self.thetas, self.none, 4, jacobian=True)

    def time_sfs_means_with_jacobian(self, migration):
        self.backend.compute_pmf_and_moments(
            self.sfs, self.thetas, self.none, self.nr_bins, jacobian=True
        )
