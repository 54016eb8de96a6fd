"""SVGD in the seed's budget, side by side (issue 28): ptdcore's SVGD, numpyro's SteinVI
and blackjax's svgd with 20 particles on the same log posterior
(``ptdcore.demography.examples.two_epoch_posterior``: the two-epoch SFS model in log sizes
and log time), against a long NUTS run; one process, one machine.

    PYTHONPATH=/path/to/blackjax .venv/bin/python asv_bench/compare_svgd.py

Each method gets the budget (iterations) and its documented defaults: ptdcore's Laplace
start and preconditioned steps; SteinVI with an ``AutoDelta`` guide (plain SVGD: one point
per particle), its RBF kernel and ``Adagrad(0.5)`` as in numpyro's examples, particles
from its default initialisation; blackjax's svgd with its RBF kernel, the median
heuristic and ``optax.adam(0.1)``, particles drawn from the prior. Reported: each
parameter's |mean - NUTS mean| / NUTS sd and sd / NUTS sd (worst over parameters), and
the wall time including compilation.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def numpyro_model(loglik):
    """The same posterior for numpyro: the prior as a distribution, the likelihood as a
    factor."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    from ptdcore.demography.examples import PRIOR_MEAN, PRIOR_SD

    def model():
        t = numpyro.sample("t", dist.Normal(jnp.log(jnp.array(PRIOR_MEAN)), PRIOR_SD).to_event(1))
        numpyro.factor("loglik", loglik(t))

    return model


def nuts(loglik, draws: int) -> np.ndarray:
    import jax
    from numpyro.infer import MCMC, NUTS

    mcmc = MCMC(NUTS(numpyro_model(loglik)), num_warmup=1000, num_samples=draws,
                progress_bar=False)  # fmt: skip
    mcmc.run(jax.random.PRNGKey(0))
    return np.asarray(mcmc.get_samples()["t"])


def ptdcore_svgd(loglik, log_prior, iterations: int, precondition: str):
    from ptdcore import SVGD

    svgd = SVGD(
        loglik=loglik, theta_dim=3, prior=log_prior, positive=False, n_particles=20,
        n_iterations=iterations, precondition=precondition, progress=False,
    ).fit()  # fmt: skip
    return np.asarray(svgd.particles), bool(svgd.diagnostics["converged"])


def steinvi(loglik, iterations: int):
    import jax
    from numpyro.contrib.einstein import RBFKernel, SteinVI
    from numpyro.infer.autoguide import AutoDelta
    from numpyro.optim import Adagrad

    model = numpyro_model(loglik)
    stein = SteinVI(model, AutoDelta(model), Adagrad(step_size=0.5), RBFKernel(),
                    num_stein_particles=20)  # fmt: skip
    result = stein.run(jax.random.PRNGKey(0), iterations, progress_bar=False)
    params = stein.get_params(result.state)
    return np.asarray(params["t_auto_loc"]), None


def blackjax_svgd(loglik, log_prior, iterations: int):
    import blackjax
    import jax
    import jax.numpy as jnp
    import optax
    from blackjax.vi.svgd import rbf_kernel, update_median_heuristic

    def logdensity(t):
        return loglik(t) + log_prior(t)

    svgd = blackjax.svgd(jax.grad(logdensity), optax.adam(0.1), rbf_kernel,
                         update_median_heuristic)  # fmt: skip
    from ptdcore.demography.examples import PRIOR_MEAN, PRIOR_SD

    noise = jax.random.normal(jax.random.PRNGKey(0), (20, 3))
    start = jnp.log(jnp.array(PRIOR_MEAN)) + PRIOR_SD * noise  # prior draws
    state = svgd.init(start, {"length_scale": jnp.asarray(1.0)})
    step = jax.jit(svgd.step)
    for _ in range(iterations):
        state = step(state)
    return np.asarray(state.particles), None


def main() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--nuts-draws", type=int, default=4000)
    args = parser.parse_args()
    from ptdcore.demography.examples import two_epoch_posterior

    loglik, log_prior = two_epoch_posterior()
    ref = nuts(loglik, args.nuts_draws)
    mean, sd = ref.mean(0), ref.std(0)
    print(f"NUTS ({args.nuts_draws} draws): mean {np.round(mean, 4)}, sd {np.round(sd, 4)}")
    print("| method | iterations | worst mean error (NUTS sd) | sd / NUTS sd | converged | "
          "wall time (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    methods = {
        "ptdcore SVGD (default: precondition='auto')": lambda k: ptdcore_svgd(
            loglik, log_prior, k, "auto"),
        "ptdcore SVGD (precondition='diagonal')": lambda k: ptdcore_svgd(
            loglik, log_prior, k, "diagonal"),
        "numpyro SteinVI": lambda k: steinvi(loglik, k),
        "blackjax svgd": lambda k: blackjax_svgd(loglik, log_prior, k),
    }  # fmt: skip
    for name, run in methods.items():
        for k in args.iterations:
            start = time.perf_counter()
            try:
                particles, converged = run(k)
            except Exception as err:  # (a peer's API may have moved: say so, go on)
                print(f"| {name} | {k} | failed: {type(err).__name__}: {err} | | | |")
                continue
            seconds = time.perf_counter() - start
            off = np.abs(particles.mean(0) - mean) / sd
            ratio = particles.std(0) / sd
            said = "-" if converged is None else str(converged)
            print(f"| {name} | {k} | {off.max():.3f} | {ratio.min():.2f}-{ratio.max():.2f} | "
                  f"{said} | {seconds:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
