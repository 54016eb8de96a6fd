"""SVGD within the seed's budget (20 particles x 100 iterations): the Laplace start and the
preconditioned steps reach the posterior, against an exact grid posterior (closed-form
hypoexponential likelihood, independent of the engine) and a long NUTS run."""

from __future__ import annotations

import numpy as np
import pytest

from ptdcore import SVGD
from ptdcore.coalescent import kingman_tmrca, simulate_tmrca

N_SAMPLES = 10
TRUE_THETA = 1.5


def _hypoexponential_logpdf(theta: np.ndarray, t: np.ndarray) -> np.ndarray:
    """log density of the Kingman TMRCA at each theta (rows) for all t, by the closed
    form with distinct rates, in extended precision (the alternating sum cancels)."""
    rates = np.array([k * (k - 1) / 2 for k in range(2, N_SAMPLES + 1)], dtype=np.longdouble)
    out = np.zeros((theta.size, t.size), dtype=np.longdouble)
    for i, r in enumerate(rates):
        coef = np.prod([q / (q - r) for j, q in enumerate(rates) if j != i])
        out += coef * r * np.exp(-np.outer(theta.astype(np.longdouble), r * t)) * theta[:, None]
    return np.log(out.astype(np.float64))


def _grid_posterior(log_target):
    """Mean and sd of the density exp(log_target(theta)) on a fine grid in log theta."""
    grid = np.exp(np.linspace(np.log(0.8), np.log(3.0), 6001))
    lp = log_target(grid)
    w = np.exp(lp - lp.max()) * grid  # d theta = theta d(log theta)
    w /= w.sum()
    mean = np.sum(w * grid)
    return mean, np.sqrt(np.sum(w * (grid - mean) ** 2))


def _gamma_2_1(theta):
    return np.log(theta) - theta


@pytest.fixture(scope="module")
def data():
    return simulate_tmrca(N_SAMPLES, TRUE_THETA, 200, seed=3)


def _kingman_moments(theta):
    rates = np.array([k * (k - 1) / 2 for k in range(2, N_SAMPLES + 1)])[None, :] * theta[:, None]
    mean = np.sum(1 / rates, axis=1)
    return mean, np.sum(1 / rates**2, axis=1) + mean**2


def _check(svgd, mean, sd):
    assert abs(svgd.theta_mean[0] - mean) < 0.1 * sd, (svgd.theta_mean, mean, sd)
    assert abs(svgd.theta_std[0] / sd - 1) < 0.2, (svgd.theta_std, sd)
    assert svgd.diagnostics["converged"], svgd.diagnostics["final_drift"]
    assert svgd.diagnostics["init"].startswith("laplace")
    assert svgd.diagnostics["preconditioned"]


def _prior(theta):
    import jax.numpy as jnp

    return jnp.sum(jnp.log(theta) - theta)


def test_plain_fit_in_the_seed_budget(data):
    mean, sd = _grid_posterior(lambda g: _hypoexponential_logpdf(g, data).sum(1) + _gamma_2_1(g))
    svgd = SVGD(kingman_tmrca(N_SAMPLES), data, n_particles=20, n_iterations=100, prior=_prior)
    _check(svgd.fit(), mean, sd)


def test_regularised_fit_in_the_seed_budget(data):
    m1, m2 = np.mean(data), np.mean(data**2)

    def target(g):
        e1, e2 = _kingman_moments(g)
        penalty = (e1 - m1) ** 2 + (e2 - m2) ** 2
        return _hypoexponential_logpdf(g, data).sum(1) + _gamma_2_1(g) - penalty

    mean, sd = _grid_posterior(target)
    svgd = SVGD(kingman_tmrca(N_SAMPLES), data, n_particles=20, n_iterations=100, prior=_prior)
    _check(svgd.fit_regularized(nr_moments=2, regularization=1.0), mean, sd)


def test_old_start_is_still_available_and_honest(data):
    svgd = SVGD(
        kingman_tmrca(N_SAMPLES), data, n_particles=20, n_iterations=100, prior=_prior,
        init="spread",
    ).fit()  # fmt: skip
    assert svgd.diagnostics["init"] == "spread" and not svgd.diagnostics["preconditioned"]
    assert svgd.diagnostics["converged"] is False  # 100 plain steps do not get there


def test_custom_start_and_bad_strategies(data):
    model = kingman_tmrca(N_SAMPLES)

    def start(n, d, seed):
        return np.log(1.5) + 0.01 * np.random.default_rng(seed).standard_normal((n, d))

    svgd = SVGD(model, data, n_particles=4, n_iterations=2, init=start).fit()
    assert svgd.diagnostics["init"] == "custom"
    with pytest.raises(ValueError, match="init must be one of"):
        SVGD(model, data, init="mode")
    with pytest.raises(ValueError, match=r"must return finite values of shape \(4, 1\)"):
        SVGD(model, data, n_particles=4, n_iterations=2, init=lambda n, d, s: np.zeros(3)).fit()


def test_a_flat_posterior_falls_back_with_a_warning():
    """No Laplace start where -H is not positive definite: the fallback is named."""
    import jax.numpy as jnp

    def loglik(theta):  # flat in theta[1]: the prior alone does not help with positive=False
        return -0.5 * jnp.sum((theta[:1] - 1.0) ** 2) + 0.0 * theta[1]

    with pytest.warns(RuntimeWarning, match="no Laplace start"):
        svgd = SVGD(
            loglik=loglik, theta_dim=2, n_particles=6, n_iterations=5, positive=False,
            prior=lambda th: 0.0,
        ).fit()  # fmt: skip
    assert (
        svgd.diagnostics["init"].startswith("spread (") and not svgd.diagnostics["preconditioned"]
    )


@pytest.mark.parametrize("precondition", ["diagonal", "full"])
def test_badly_scaled_parameters_move_together(precondition):
    """A rate near 1e-4 (sd 1e-6) beside a size near 1e4 (sd 100), correlated: with the
    Laplace metric both are sampled in the seed's budget; the old start is nowhere near."""
    import jax.numpy as jnp

    mean = np.array([1e-4, 1e4])
    sd = np.array([1e-6, 1e2])
    corr = 0.6
    cov = np.array([[1, corr], [corr, 1]]) * np.outer(sd, sd)
    precision = jnp.asarray(np.linalg.inv(cov))

    def loglik(theta):
        r = theta - mean
        return -0.5 * r @ precision @ r

    flat = {"prior": lambda theta: 0.0, "positive": False, "n_particles": 20}
    svgd = SVGD(
        loglik=loglik, theta_dim=2, n_iterations=100, precondition=precondition, **flat
    ).fit()
    assert np.all(np.abs(svgd.theta_mean - mean) < 0.1 * sd), (svgd.theta_mean, mean)
    assert np.all(np.abs(svgd.theta_std / sd - 1) < 0.2), (svgd.theta_std, sd)
    assert svgd.diagnostics["preconditioned"]
    old = SVGD(loglik=loglik, theta_dim=2, n_iterations=100, init="spread", **flat).fit()
    assert not np.all(np.abs(old.theta_mean - mean) < 0.1 * sd)


def test_three_parameter_demography_against_nuts():
    """The two-epoch SFS model (log ancient size, log recent size, log time; a correlated,
    skewed posterior: correlations 0.6-0.94) from 15,000 msprime sites: 20 particles x 200
    iterations within 0.1 sd of a NUTS run's means and 20 % of its sds, on the diagonal
    metric and the default (whitened here; before the bandwidth on the Laplace metric:
    0.78-0.88 of the sds), and converged on the default."""
    import jax
    import jax.numpy as jnp

    pytest.importorskip("demes")
    pytest.importorskip("msprime")
    numpyro = pytest.importorskip("numpyro")
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    from ptdcore.demography.examples import PRIOR_MEAN, PRIOR_SD, two_epoch_posterior

    loglik, prior = two_epoch_posterior()

    def numpyro_model():  # (the same prior, as a distribution)
        t = numpyro.sample("t", dist.Normal(jnp.log(jnp.array(PRIOR_MEAN)), PRIOR_SD).to_event(1))
        numpyro.factor("loglik", loglik(t))

    mcmc = MCMC(NUTS(numpyro_model), num_warmup=500, num_samples=2000, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0))
    draws = np.asarray(mcmc.get_samples()["t"])
    mean, sd = draws.mean(0), draws.std(0)
    for precondition in ("diagonal", "auto"):  # (scaled, and the default: whitened here)
        svgd = SVGD(loglik=loglik, theta_dim=3, prior=prior, positive=False, n_particles=20,
                    n_iterations=200, progress=False, precondition=precondition).fit()  # fmt: skip
        off = np.abs(svgd.particles.mean(0) - mean) / sd
        ratio = svgd.particles.std(0) / sd
        assert np.all(off < 0.1), (precondition, off, ratio)
        assert np.all(np.abs(ratio - 1) < 0.2), (precondition, off, ratio)
        # (tighter than the 20 %: the median bandwidth gave 0.78-0.88 here)
        assert np.all(np.abs(ratio - 1) < 0.1), (precondition, off, ratio)
        assert svgd.diagnostics["preconditioned"]
    # whitened (the default here: the Laplace start stands), the cloud settles (drift
    # 0.002); on the diagonal metric of this strongly correlated posterior it still moves
    # at the end (drift ~0.03): False, and said so
    assert svgd.diagnostics["converged"], svgd.diagnostics["final_drift"]


def _structured_grid_posterior(model, data):
    """Mean and sd of (log c, log m) under the default prior (log theta ~ N(0, 3^2)) on a
    grid wide enough for the long right tail of log m (the likelihood flattens once the
    demes mix: at log m = 14 the density is 1e-6 of its peak per grid column)."""
    import jax
    import jax.numpy as jnp

    z1, z2 = np.linspace(-1.5, 1.5, 121), np.linspace(-6.0, 14.0, 301)
    z = np.stack(np.meshgrid(z1, z2, indexing="ij"), -1).reshape(-1, 2)
    loglik = jax.jit(jax.vmap(lambda t: jnp.sum(jnp.log(model(t, jnp.asarray(data))[0]))))
    lp = np.concatenate(
        [np.asarray(loglik(jnp.exp(z[i : i + 4000]))) for i in range(0, len(z), 4000)]
    )
    lp = lp - 0.5 * np.sum(z**2, axis=1) / 9.0
    w = np.exp(lp - lp.max())
    w /= w.sum()
    mean = w @ z
    return mean, np.sqrt(w @ (z - mean) ** 2)


def test_weakly_identified_migration_from_an_importance_start():
    """Structured coalescent, 2 + 2 lineages, 150 TMRCAs at (c, m) = (1, 0.3): log m is
    weakly identified (its posterior is the prior's tail beyond a cliff at the mode, sd
    about 2 against the Laplace approximation's 0.4-1.2). The Laplace start fails its
    check and the particles start from importance sampling: 20 x 200 within 0.25 sd of the
    grid posterior's means and 20 % of its sds on three data sets (the Laplace start gave
    0.3-0.6 of the sd of log m). The issue's 0.1 sd is met on most coordinates, not all."""
    import jax.numpy as jnp

    import ptdcore
    from ptdcore.coalescent import structured_graph

    model = ptdcore.model(structured_graph((2, 2)))
    for seed in (1, 2, 3):
        data = np.asarray(model.sample(jnp.array([1.0, 0.3]), 150, seed=seed))
        mean, sd = _structured_grid_posterior(model, data)
        svgd = SVGD(model, data, n_particles=20, n_iterations=200, progress=False).fit()
        z = np.log(svgd.particles)
        off, ratio = (z.mean(0) - mean) / sd, z.std(0) / sd
        assert svgd.diagnostics["init"].startswith("importance"), svgd.diagnostics["init"]
        assert np.all(np.abs(off) < 0.25), (seed, off, ratio)
        assert np.all(np.abs(ratio - 1) < 0.2), (seed, off, ratio)


def test_a_skewed_one_dimensional_target_from_an_importance_start():
    """log E, E ~ Exp(1) (density exp(x - e^x): mean -0.5772, sd pi / sqrt(6)): the
    Laplace approximation at the mode 0 (sd 1) misses the skew, its check fails, and the
    importance start (one dimension: the affine map is a scalar) puts 20 particles within
    0.1 sd of the mean and 20 % of the sd in 100 iterations."""
    import jax.numpy as jnp

    svgd = SVGD(
        loglik=lambda x: jnp.sum(x - jnp.exp(x)), theta_dim=1, prior=lambda t: 0.0,
        positive=False, n_particles=20, n_iterations=100, progress=False,
    ).fit()  # fmt: skip
    mean, sd = -0.5772156649015329, np.pi / np.sqrt(6.0)
    assert svgd.diagnostics["init"].startswith("importance"), svgd.diagnostics["init"]
    assert abs(svgd.particles.mean() - mean) < 0.1 * sd
    assert abs(svgd.particles.std() / sd - 1) < 0.2
