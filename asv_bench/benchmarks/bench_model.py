"""Model evaluation benchmarks: backend x Kingman n x batch."""

from __future__ import annotations

import os
import tempfile

import numpy as np

from .common import (
    BACKENDS,
    BATCHES,
    SIZES,
    kingman,
    make_model,
    observations,
    skip_slow,
    skip_unless_available,
    thetas,
)


class ModelEvaluation:
    """pmf + moments and the log-likelihood gradient through the JAX model."""

    params = (BACKENDS, SIZES, BATCHES)
    param_names = ["backend", "n", "batch"]
    timeout = 600

    def setup(self, backend, n, batch):
        skip_unless_available(backend)
        skip_slow(backend, n, batch)
        import jax
        import jax.numpy as jnp

        model = make_model(n, backend)
        data = jnp.asarray(observations(n))
        self.thetas = jnp.asarray(thetas(batch))
        self.pmf_moments = jax.jit(jax.vmap(model, in_axes=(0, None)))
        self.loglik_grad = jax.jit(
            jax.vmap(jax.grad(lambda th: jnp.sum(jnp.log(model(th, data)[0]))))
        )
        self.data = data
        jax.block_until_ready(self.pmf_moments(self.thetas, data))  # compile outside timing
        jax.block_until_ready(self.loglik_grad(self.thetas))

    def time_pmf_moments(self, backend, n, batch):
        import jax

        jax.block_until_ready(self.pmf_moments(self.thetas, self.data))

    def time_loglik_grad(self, backend, n, batch):
        import jax

        jax.block_until_ready(self.loglik_grad(self.thetas))

    def peakmem_pmf_moments(self, backend, n, batch):
        import jax

        jax.block_until_ready(self.pmf_moments(self.thetas, self.data))


class DirectCall:
    """The backend's own compute_pmf_and_moments (no JAX), for the adapter-overhead target."""

    params = (BACKENDS, [10, 20], [1, 100])
    param_names = ["backend", "n", "batch"]

    def setup(self, backend, n, batch):
        skip_unless_available(backend)
        import ptdcore

        self.backend = ptdcore.get_backend(backend)
        self.structure = kingman(n).structure()
        self.thetas = thetas(batch)
        self.times = observations(n)
        self.backend.compute_pmf_and_moments(
            self.structure, self.thetas, self.times, 2, jacobian=True
        )

    def time_compute_with_jacobian(self, backend, n, batch):
        self.backend.compute_pmf_and_moments(
            self.structure, self.thetas, self.times, 2, jacobian=True
        )


class FirstCall:
    """Graph built to first result: structure, backend preparation (legacy: compilation), jit."""

    params = (BACKENDS, [5, 10])
    param_names = ["backend", "n"]
    number = 1
    repeat = (1, 5, 30.0)
    warmup_time = 0.0

    def setup(self, backend, n):
        skip_unless_available(backend)
        os.environ["PTDCORE_CACHE_DIR"] = tempfile.mkdtemp(prefix="ptdcore-bench-")  # cold cache
        import jax
        import ptdcore_backends.cffi
        import ptdcore_backends.ffi
        import ptdcore_backends.legacy
        import ptdcore_backends.pybind11

        jax.clear_caches()
        for module in (ptdcore_backends.pybind11, ptdcore_backends.cffi, ptdcore_backends.ffi,
                       ptdcore_backends.legacy):  # fmt: skip
            module.ptdcore_register_backends()[0].clear_prepared()

    def time_first_call(self, backend, n):
        import jax

        from ptdcore.coalescent import kingman_block_counting

        kingman_block_counting(n)  # the graph is built inside the timed region too
        model = make_model(n, backend)
        jax.block_until_ready(model(np.array([1.0]), np.linspace(0.1, 3.0, 10)))


class Accuracy:
    """Largest relative error of the default backend's density against a 30-digit reference."""

    params = [[5, 10, 20, 30]]
    param_names = ["n"]

    def setup(self, n):
        import mpmath

        self.times = np.linspace(0.05, 4.0, 25)
        rates = [mpmath.mpf(k * (k - 1)) / 2 for k in range(2, n + 1)]
        with mpmath.workdps(60):
            ref = []
            for t in self.times:
                total = mpmath.mpf(0)
                for i, li in enumerate(rates):
                    coef = mpmath.mpf(1)
                    for j, lj in enumerate(rates):
                        if j != i:
                            coef *= lj / (lj - li)
                    total += coef * li * mpmath.exp(-li * mpmath.mpf(float(t)))
                ref.append(float(total))
        self.reference = np.array(ref)

    def track_max_rel_error(self, n):
        import ptdcore

        pmf, _ = ptdcore.get_backend().compute_pmf_and_moments(
            kingman(n).structure(), np.array([[1.0]]), self.times, 0
        )
        return float(np.max(np.abs(pmf[0] / self.reference - 1)))

    track_max_rel_error.unit = "relative error"
