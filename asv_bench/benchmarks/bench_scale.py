"""Scale: building large coalescent state spaces, and evaluating them.

Issue targets: ``coalescent.kingman_sfs(40)`` at least 10x faster than phasic's build
of the same space from its per-state callback (measured side by side here when
phasic is installed); n = 50 built and one log-likelihood gradient in well under
10 s and 2 GB; the structured SFS space of two demes with 10 + 10 samples built and
evaluated. ``peakmem_*`` is the peak resident memory of the benchmark process.
"""

from __future__ import annotations

import numpy as np

from . import common  # noqa: F401  (float64 on for this process)


def _kingman_sfs_callback_phasic(state):
    """ptdcore.coalescent.kingman_sfs_callback in phasic's calling convention."""
    from ptdcore.coalescent import kingman_sfs_callback

    return [(list(nxt), weight) for nxt, weight in kingman_sfs_callback(tuple(state))]


class BuildKingmanSFS:
    """The block-counting space of the Kingman coalescent (the SFS space)."""

    params = [30, 40, 50]
    param_names = ["n"]
    timeout = 900
    number = 1
    repeat = (1, 3, 60.0)

    def time_frontier(self, n):
        """ptdcore.coalescent.kingman_sfs: the vectorised frontier callback."""
        from ptdcore.coalescent import kingman_sfs

        kingman_sfs(n)

    def peakmem_frontier(self, n):
        from ptdcore.coalescent import kingman_sfs

        kingman_sfs(n)


class BuildKingmanSFSPerState:
    """The same space from the per-state callback (about a minute at n = 50: not run)."""

    params = [30, 40]
    param_names = ["n"]
    timeout = 900
    number = 1
    repeat = (1, 3, 60.0)

    def time_per_state_callback(self, n):
        """Graph.from_callback with the per-state callback (the first version's path)."""
        from ptdcore.coalescent import kingman_sfs_callback
        from ptdcore.graph import Graph

        Graph.from_callback(kingman_sfs_callback, (n,) + (0,) * (n - 1), nr_params=1)


class BuildKingmanSFSPhasic:
    """phasic.Graph from the same per-state callback, its disk cache off (when installed)."""

    params = [30, 40]
    param_names = ["n"]
    timeout = 900
    number = 1
    repeat = (1, 3, 60.0)

    def setup(self, n):
        try:
            import phasic
        except ImportError:
            raise NotImplementedError("phasic is not installed") from None
        self.phasic = phasic

    def time_phasic_callback(self, n):
        initial = [n] + [0] * (n - 1)
        self.phasic.Graph(
            _kingman_sfs_callback_phasic, ipv=[[initial, 1.0]], graph_cache=False, theta_dim=1
        )


class Kingman50EndToEnd:
    """n = 50: build the space, then one jitted log-likelihood gradient (100 TMRCAs)."""

    timeout = 900
    number = 1
    repeat = (1, 3, 120.0)

    def _run(self):
        import jax
        import jax.numpy as jnp

        import ptdcore
        from ptdcore.coalescent import kingman_block_counting, simulate_tmrca

        graph = kingman_block_counting(50)
        model = ptdcore.model(graph, nr_moments=1)
        data = simulate_tmrca(50, 1.0, 100, seed=1)
        grad = jax.jit(jax.grad(lambda th: jnp.sum(jnp.log(model(th, data)[0]))))
        return jax.block_until_ready(grad(jnp.array([1.0])))

    def time_build_and_gradient(self):
        self._run()

    def peakmem_build_and_gradient(self):
        self._run()


class StructuredSFS:
    """Two demes, 10 + 10 samples (24,840 states): build, then the expected SFS."""

    timeout = 900
    number = 1
    repeat = (1, 3, 120.0)

    def _build(self):
        from ptdcore.coalescent import structured_sfs

        return structured_sfs((10, 10))

    def _evaluate(self):
        import jax
        import jax.numpy as jnp

        import ptdcore

        graph, rewards = self._build()
        mean, cross = jax.jit(ptdcore.reward_moments(graph, rewards))(jnp.array([1.0, 0.5]))
        return np.asarray(mean)

    def time_build(self):
        self._build()

    def time_build_and_sfs(self):
        self._evaluate()

    def peakmem_build_and_sfs(self):
        self._evaluate()
