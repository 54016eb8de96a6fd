"""SVGD against exact posteriors, on every backend, with default settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ENGINE_BACKENDS, require_backend
from scipy import stats

import ptdcore
from ptdcore import SVGD, Graph
from ptdcore.coalescent import kingman_graph
from ptdcore.inference.svgd import DEFAULT_PRIOR_SD, compute_sample_moments

BACKENDS = ENGINE_BACKENDS  # the reference backend is an oracle, not for fitting


def quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # legacy
        return fn()


def exponential_graph():
    return Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_exponential_gamma_posterior(backend):
    require_backend(backend)
    rng = np.random.default_rng(1)
    data = rng.exponential(1 / 2.0, 50)
    a0, b0 = 2.0, 1.0
    posterior = stats.gamma(a0 + data.size, scale=1 / (b0 + data.sum()))

    def log_prior(theta):
        return jnp.sum((a0 - 1) * jnp.log(theta) - b0 * theta)

    svgd = quiet(lambda: SVGD(exponential_graph(), data, prior=log_prior, backend=backend).fit())
    assert abs(svgd.theta_mean[0] - posterior.mean()) < 0.1 * posterior.std()
    assert abs(svgd.theta_std[0] / posterior.std() - 1) < 0.15
    assert svgd.diagnostics["converged"]


def kingman_tmrca_density(theta, t, n=5):
    """Closed-form hypoexponential density of the Kingman TMRCA (distinct rates)."""
    rates = np.array([k * (k - 1) / 2 for k in range(2, n + 1)])[:, None] * theta[None, :]
    out = 0.0
    for i in range(len(rates)):
        coef = np.prod(
            [rates[j] / (rates[j] - rates[i]) for j in range(len(rates)) if j != i], axis=0
        )
        out = out + coef * rates[i] * np.exp(-rates[i] * t)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_kingman_tmrca_against_grid_posterior(backend):
    require_backend(backend)
    rng = np.random.default_rng(5)
    true_theta = 1.5
    rates = np.array([k * (k - 1) / 2 for k in range(2, 6)]) * true_theta
    data = sum(rng.exponential(1 / r, 100) for r in rates)
    grid = np.exp(np.linspace(np.log(0.5), np.log(4.0), 4001))
    loglik = np.array([np.sum(np.log(kingman_tmrca_density(np.array([th]), data))) for th in grid])
    log_t = np.log(grid)
    log_post = loglik - 0.5 * (log_t / DEFAULT_PRIOR_SD) ** 2 - log_t  # the default prior
    w = np.exp(log_post - log_post.max()) * grid  # trapezoid in log theta: d theta = theta dz
    w /= w.sum()
    mean = np.sum(w * grid)
    sd = np.sqrt(np.sum(w * (grid - mean) ** 2))
    svgd = quiet(lambda: SVGD(kingman_graph(5), data, backend=backend).fit())
    assert abs(svgd.theta_mean[0] - mean) < 0.1 * sd, (svgd.theta_mean, mean, sd)
    assert abs(svgd.theta_std[0] / sd - 1) < 0.15, (svgd.theta_std, sd)


@pytest.mark.parametrize("backend", BACKENDS)
def test_seed_failing_configuration_regularised(backend):
    """The seed failed at 20 particles x 100 iterations with moment regularisation."""
    require_backend(backend)
    data = np.random.default_rng(2).exponential(1.0, 40) + 0.5
    svgd = quiet(
        lambda: SVGD(
            kingman_graph(6), data, n_particles=20, n_iterations=100, backend=backend
        ).fit_regularized(nr_moments=2, regularization=1.0)
    )
    assert svgd.particles.shape == (20, 1)
    assert np.all(np.isfinite(svgd.particles)) and np.all(svgd.particles > 0)
    assert svgd.history.shape[1:] == (20, 1)


def test_regularisation_pulls_towards_the_moment_matching_theta():
    # Erlang(2, 2) data fitted with Exp(theta): the likelihood wants theta = 1/mean(x),
    # the penalty on (E[T], E[T^2]) = (1/theta, 2/theta^2) wants another theta.
    data = np.random.default_rng(3).gamma(2.0, 0.5, 30)
    m1, m2 = compute_sample_moments(data, 2)
    grid = np.linspace(0.5, 2.5, 200001)
    penalty_min = grid[np.argmin((1 / grid - m1) ** 2 + (2 / grid**2 - m2) ** 2)]
    plain = SVGD(exponential_graph(), data, n_iterations=500).fit()
    strong = SVGD(exponential_graph(), data, n_iterations=500).fit_regularized(
        2, regularization=1e3
    )
    assert abs(strong.theta_mean[0] - penalty_min) < 0.1 * abs(plain.theta_mean[0] - penalty_min)
    assert strong.theta_std[0] < plain.theta_std[0]


def test_pmf_only_model_and_errors():
    g = exponential_graph()
    m = ptdcore.model(g, nr_moments=1)

    def pmf_only(theta, times):
        return m(theta, times)[0]

    data = np.random.default_rng(4).exponential(0.5, 20)
    svgd = SVGD(pmf_only, data, theta_dim=1, n_iterations=200).fit()
    assert np.isfinite(svgd.theta_mean[0])
    with pytest.raises(ValueError, match=r"returns the pmf only"):
        SVGD(pmf_only, data, theta_dim=1, n_iterations=10).fit_regularized(1)
    with pytest.raises(ValueError, match="theta_dim is required"):
        SVGD(pmf_only, data)
    with pytest.raises(ValueError, match="theta_dim=2 but the model has 1"):
        SVGD(g, data, theta_dim=2)
    with pytest.raises(RuntimeError, match="fit"):
        _ = SVGD(g, data).particles


def test_results_api(tmp_path):
    data = np.random.default_rng(6).exponential(0.5, 20)
    svgd = SVGD(exponential_graph(), data, n_particles=50, n_iterations=200).fit()
    q = svgd.quantiles([0.05, 0.5, 0.95])
    assert q.shape == (3, 1) and q[0, 0] < q[1, 0] < q[2, 0]
    lo, hi = svgd.hpd_interval(0.9)[0]
    assert np.mean((svgd.particles[:, 0] >= lo) & (svgd.particles[:, 0] <= hi)) >= 0.9
    d = svgd.diagnostics
    assert d["bandwidth"].shape == (200,) and d["phi_norm"].shape == (200,)
    assert "converged" in svgd.summary()
    np.testing.assert_allclose(compute_sample_moments([1.0, 2.0, 3.0], 2), [2.0, 14 / 3])
    pytest.importorskip("matplotlib")
    files = svgd.plot(str(tmp_path), true_theta=[2.0])
    assert all(os.path.getsize(f) > 1000 for f in files)


def test_particles_sharded_over_devices_match_single_device():
    script = textwrap.dedent(
        """
        import json, numpy as np, jax
        jax.config.update("jax_enable_x64", True)
        from ptdcore import SVGD
        from ptdcore.coalescent import kingman_graph
        data = np.random.default_rng(8).exponential(1.0, 30)
        s = SVGD(kingman_graph(4), data, n_particles=40, n_iterations=100).fit()
        print(json.dumps({"devices": jax.device_count(), "p": s.particles.ravel().tolist()}))
        """
    )
    outs = {}
    for count in (1, 4):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={count}")
        proc = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr
        outs[count] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outs[4]["devices"] == 4 and outs[1]["devices"] == 1
    np.testing.assert_allclose(outs[4]["p"], outs[1]["p"], rtol=1e-9)


def test_svgd_step_is_pure_and_jittable():
    import optax

    from ptdcore.inference import svgd_core

    def log_density(z):
        return -0.5 * jnp.sum(z**2)

    opt = optax.sgd(0.1)
    step = svgd_core.build_step(log_density, opt)
    state = svgd_core.init(jax.random.normal(jax.random.PRNGKey(0), (50, 2)), opt)
    final, info = jax.jit(lambda s: svgd_core.run(step, s, 500))(state)
    assert info.bandwidth.shape == (500,)
    np.testing.assert_allclose(np.std(final.particles, axis=0, ddof=1), [1.0, 1.0], rtol=0.15)
