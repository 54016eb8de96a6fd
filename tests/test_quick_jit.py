"""quick_jit: the same numbers as the closed form, per argument shape, with the session's
JAX configuration untouched."""

import jax
import jax.numpy as jnp
import numpy as np

from ptdcore.inference.quick_jit import quick_jit


def test_values_and_hessian_match_the_closed_form():
    def f(x):
        return jnp.sum(jnp.log1p(x**2)) + x[0] * x[1]

    hess = quick_jit(jax.hessian(f))
    for x in (np.array([0.3, -1.2]), np.array([2.0, 0.5, 1.5])):  # two shapes
        H = np.asarray(hess(jnp.asarray(x)))
        expected = np.diag(2 * (1 - x**2) / (1 + x**2) ** 2)
        expected[0, 1] += 1.0
        expected[1, 0] += 1.0
        np.testing.assert_allclose(H, expected, rtol=1e-14, atol=1e-15)


def test_session_configuration_untouched():
    before = {k: jax.config.values[k] for k in jax.config.values}
    quick_jit(lambda x: jnp.sin(x) * 2)(jnp.ones(3))
    assert {k: jax.config.values[k] for k in jax.config.values} == before
