"""SVGD that tells the truth (contract section 10): convergence, non-finite particles,
impossible observations, old-API calls."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ptdcore import SVGD, Graph
from ptdcore.coalescent import kingman_graph


def exponential_graph():
    return Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1)


DATA = np.random.default_rng(1).exponential(1 / 2.0, 50)
EXACT_SD = np.sqrt(2 + 50) / (1 + DATA.sum())  # Gamma(2, 1) prior, below


def gamma_prior(theta):
    import jax.numpy as jnp

    return jnp.log(theta[0]) - theta[0]


@pytest.mark.parametrize("iterations", [5, 10, 30, 100])
def test_a_run_cut_short_is_not_converged(iterations):
    """From the old, spread-out start (the Laplace start is near the posterior at once)."""
    s = SVGD(exponential_graph(), DATA, n_particles=100, n_iterations=iterations, seed=3,
             prior=gamma_prior, init="spread").fit()  # fmt: skip
    assert s.diagnostics["converged"] is False
    assert s.theta_std[0] > 1.1 * EXACT_SD  # it is indeed not there yet


def test_a_converged_run_is_converged_and_right():
    s = SVGD(exponential_graph(), DATA, n_particles=100, n_iterations=1000, seed=3,
             prior=gamma_prior).fit()  # fmt: skip
    d = s.diagnostics
    assert d["converged"] is True, (d["final_imbalance"], d["final_drift"])
    assert abs(s.theta_std[0] - EXACT_SD) < 0.05 * EXACT_SD
    assert d["convergence_criterion"] == "imbalance and drift"


def test_an_observation_with_zero_density_is_an_error_naming_it():
    data = np.random.default_rng(4).exponential(1.0, 20) + 0.2
    data[7] = 0.0  # the Kingman n=5 TMRCA density is 0 at 0
    with pytest.raises(ValueError, match=r"observed_data\[7\] = 0\.0"):
        SVGD(kingman_graph(5), data, n_particles=20, n_iterations=10).fit()


def test_non_finite_particles_are_counted_and_reported():
    """Unconstrained theta: particles below zero have no density (NaN); they are reported."""
    data = np.random.default_rng(2).exponential(1 / 0.3, 30)
    s = SVGD(exponential_graph(), data, n_particles=40, n_iterations=50, seed=1,
             positive=False, init_scale=0.0, init="spread")  # fmt: skip
    with pytest.warns(RuntimeWarning, match="non-finite log density"):
        s.fit()
    d = s.diagnostics
    assert d["nonfinite_particle_steps"] > 0 and d["nonfinite"].max() > 0
    assert d["converged"] is False or d["nonfinite"][-5:].sum() == 0


def test_old_api_calls_point_to_the_new_ones():
    s = SVGD(exponential_graph(), DATA, n_particles=10, n_iterations=5)
    with pytest.raises(TypeError, match=r"observed_times.*SVGD\(model, observed_data"):
        s.fit_regularized(observed_times=DATA)
    with pytest.raises(TypeError, match=r"Graph.from_callback"):
        Graph(callback=lambda state: [], parameterized=True, nr_samples=4)


def test_a_clean_run_does_not_warn():
    s = SVGD(exponential_graph(), DATA, n_particles=30, n_iterations=50, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        s.fit()
    assert s.diagnostics["nonfinite_particle_steps"] == 0


def test_a_fitted_svgd_pickles_with_its_results_and_names(tmp_path):
    import pickle

    import ptdcore

    for source in (exponential_graph(), ptdcore.model(exponential_graph(), nr_moments=2)):
        s = SVGD(source, DATA, n_particles=20, n_iterations=30, seed=3, param_names=["rate"])
        s.fit()
        again = pickle.loads(pickle.dumps(s))
        np.testing.assert_array_equal(again.particles, s.particles)
        assert again.diagnostics["converged"] == s.diagnostics["converged"]
        assert "rate" in again.summary() and "rate" in s.summary()
        again.fit()  # the reloaded object still runs, and gives the same particles
        np.testing.assert_allclose(again.particles, s.particles, rtol=1e-12)


def test_parameter_names_must_match_the_dimension():
    with pytest.raises(ValueError, match="param_names has 2 names for 1 parameters"):
        SVGD(exponential_graph(), DATA, param_names=["a", "b"])


def test_density_values_instead_of_observations_warn():
    grid = np.linspace(0.05, 5.0, 60)
    observed_pmf = 2.0 * np.exp(-2.0 * grid)  # what the seed's users passed by mistake
    with pytest.warns(UserWarning, match="not density values"):
        SVGD(exponential_graph(), observed_pmf, n_particles=10, n_iterations=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        SVGD(exponential_graph(), DATA, n_particles=10, n_iterations=5)  # draws: silent
        SVGD(exponential_graph(), np.sort(DATA), n_particles=10, n_iterations=5)  # sorted


def test_to_arviz_gives_inference_data_with_names():
    az = pytest.importorskip("arviz")
    s = SVGD(exponential_graph(), DATA, n_particles=30, n_iterations=50, seed=3,
             param_names=["rate"]).fit()  # fmt: skip
    idata = s.to_arviz()
    assert isinstance(idata, az.InferenceData)
    draws = idata.posterior["rate"].values
    assert draws.shape == (1, 30)
    np.testing.assert_allclose(np.sort(draws.ravel()), np.sort(s.particles[:, 0]))
    assert idata.observed_data["T"].shape == (DATA.size,)
    assert az.summary(idata)["mean"]["rate"] == pytest.approx(s.theta_mean[0], rel=1e-3)


def test_a_ptdcore_model_as_a_numpyro_likelihood_recovers_the_exact_posterior():
    """NUTS through the ffi model (jit, grad) on the conjugate exponential model."""
    numpyro = pytest.importorskip("numpyro")
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    import ptdcore

    m = ptdcore.model(exponential_graph(), nr_moments=0)
    data = jnp.asarray(DATA)

    def numpyro_model():
        rate = numpyro.sample("rate", dist.Gamma(2.0, 1.0))
        numpyro.factor("loglik", jnp.sum(jnp.log(m(jnp.atleast_1d(rate), data)[0])))

    mcmc = MCMC(NUTS(numpyro_model), num_warmup=500, num_samples=2000, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0))
    draws = np.asarray(mcmc.get_samples()["rate"])
    a, b = 2 + DATA.size, 1 + DATA.sum()  # exact posterior Gamma(a, b)
    exact_mean, exact_sd = a / b, np.sqrt(a) / b
    assert abs(draws.mean() - exact_mean) < 5 * exact_sd / np.sqrt(draws.size / 5)
    assert abs(draws.std() - exact_sd) < 0.1 * exact_sd


def test_plots_use_names_and_leave_matplotlib_alone(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    backend_before = matplotlib.get_backend()
    edges = [(0, 1, 0.0, [1.0, 0.0]), (1, -1, 0.0, [0.0, 1.0])]
    g = Graph.from_edges([1.0, 0.0], edges, nr_params=2)
    data = np.random.default_rng(3).exponential(1.0, 40) + np.random.default_rng(4).exponential(
        0.5, 40
    )
    s = SVGD(g, data, n_particles=20, n_iterations=20, param_names=["first", "second"]).fit()
    files = s.plot(str(tmp_path), prefix="fit")
    assert {f.rsplit("/", 1)[1] for f in files} == {
        "fit_posterior.png",
        "fit_traces.png",
        "fit_pairs.png",
    }
    assert all((tmp_path / f.rsplit("/", 1)[1]).stat().st_size > 5_000 for f in files)
    assert matplotlib.get_backend() == backend_before


def test_the_default_prior_is_weakly_informative_on_the_log_scale():
    from ptdcore.inference.svgd import DEFAULT_PRIOR_SD, DefaultLogPrior

    assert DEFAULT_PRIOR_SD == 3.0
    prior = DefaultLogPrior(positive=True)
    import jax.numpy as jnp

    # log density of theta = e^z at z = 0 vs z = 3 sd: a drop of 4.5 + 9 (the Jacobian)
    drop = float(prior(jnp.array([1.0])) - prior(jnp.array([np.exp(9.0)])))
    assert drop == pytest.approx(0.5 * 9.0 + 9.0)
