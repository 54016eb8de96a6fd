"""Inference benchmarks: an SVGD step and a jitted lax.scan of gradient steps."""

from __future__ import annotations

from .common import BACKENDS, make_model, observations, skip_unless_available


class SVGDStep:
    """One regularised SVGD step (100 particles, 100 observations)."""

    params = (BACKENDS, [5, 10, 20])
    param_names = ["backend", "n"]
    timeout = 600

    def setup(self, backend, n):
        skip_unless_available(backend)
        import jax
        import jax.numpy as jnp
        import optax

        from ptdcore.inference import svgd_core

        model = make_model(n, backend)
        data = jnp.asarray(observations(n))
        target = jnp.array([jnp.mean(data), jnp.mean(data**2)])

        def log_density(z):
            theta = jnp.exp(z)
            pmf, mom = model(theta, data)
            return jnp.sum(jnp.log(pmf)) + jnp.sum(z) - jnp.sum((mom - target) ** 2)

        opt = optax.rmsprop(0.05, decay=0.9)
        step = svgd_core.build_step(log_density, opt)
        self.state = svgd_core.init(jnp.linspace(-0.5, 0.5, 100)[:, None], opt)
        self.step = jax.jit(step)
        jax.block_until_ready(self.step(self.state))

    def time_svgd_step(self, backend, n):
        import jax

        jax.block_until_ready(self.step(self.state))


class ScanOfGradientSteps:
    """200 gradient-ascent steps of one theta in one jitted lax.scan (small model)."""

    params = (BACKENDS, [5])
    param_names = ["backend", "n"]

    def setup(self, backend, n):
        skip_unless_available(backend)
        import jax
        import jax.numpy as jnp

        model = make_model(n, backend)
        data = jnp.asarray(observations(n))

        def loglik(th):
            return jnp.sum(jnp.log(model(th, data)[0]))

        def run(theta):
            return jax.lax.scan(
                lambda t, _: (t + 1e-4 * jax.grad(loglik)(t), None), theta, None, 200
            )[0]

        self.run = jax.jit(run)
        self.theta = jnp.array([1.0])
        jax.block_until_ready(self.run(self.theta))

    def time_scan_of_grad_steps(self, backend, n):
        import jax

        jax.block_until_ready(self.run(self.theta))
