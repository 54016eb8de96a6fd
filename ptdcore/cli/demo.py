"""``ptdcore demo``: the main job, end to end on a Kingman coalescent.

1. Build the Kingman coalescent (n = 10) on its SFS state space.
2. Simulate TMRCA data at a known pair-coalescence rate.
3. Fit it with moment-regularised SVGD on the default backend.
4. Compare the posterior with the truth.
5. Check that every backend gives the same numbers.
6. Time one batched log-likelihood gradient on every backend.
7. Save plots (posterior, density fit over the data, backend timings).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

TRUE_THETA = 1.5


def run_demo(quick: bool = False, out: str = "ptdcore-demo") -> int:
    """Run the demo; returns a process exit code."""
    from ..coalescent import kingman_block_counting, simulate_tmrca
    from ..inference.svgd import SVGD
    from ..registry import get_backend
    from ..testing.equivalence import compare_backends, format_table
    from .bench import timings_with_reference

    n = 6 if quick else 10
    n_obs = 100 if quick else 200
    n_particles, n_iterations = (50, 200) if quick else (100, 1000)
    out_dir = Path(out)

    print(f"== ptdcore demo: Kingman coalescent, n = {n} ==\n")
    t0 = time.perf_counter()
    graph = kingman_block_counting(n)
    print(
        f"model: {graph.nr_states} states, {graph.nr_edges} edges "
        f"(built from the Python callback in {1e3 * (time.perf_counter() - t0):.1f} ms)"
    )
    data = simulate_tmrca(n, TRUE_THETA, n_obs, seed=2022)
    print(
        f"data: {n_obs} TMRCA values simulated at theta = {TRUE_THETA} "
        f"(mean {data.mean():.4f}, sd {data.std():.4f})\n"
    )

    backend = get_backend()
    print(
        f"moment-regularised SVGD on the default backend ({backend.name!r}): "
        f"{n_particles} particles x {n_iterations} iterations"
    )
    t0 = time.perf_counter()
    svgd = SVGD(
        graph,
        data,
        n_particles=n_particles,
        n_iterations=n_iterations,
        seed=1,
        param_names=["pair coalescence rate"],
    )
    svgd.fit_regularized(nr_moments=2, regularization=1.0)
    fit_s = time.perf_counter() - t0
    rates = np.array([k * (k - 1) / 2 for k in range(2, n + 1)])
    mle_hint = np.sum(1 / rates) / data.mean()  # method of moments, for comparison
    print(
        f"  done in {fit_s:.1f} s "
        f"({n_particles * n_iterations / fit_s:,.0f} particle-iterations per second)"
    )
    print(
        f"  posterior mean {svgd.theta_mean[0]:.4f}, sd {svgd.theta_std[0]:.4f}, "
        f"95% HPD [{svgd.hpd_interval()[0, 0]:.4f}, {svgd.hpd_interval()[0, 1]:.4f}]"
    )
    print(
        f"  truth {TRUE_THETA}, method-of-moments estimate {mle_hint:.4f}, "
        f"converged: {svgd.diagnostics['converged']}\n"
    )

    print("cross-backend check (pmf, moments and Jacobians at 3 thetas x 11 times):")
    comparisons = compare_backends(
        graph, [[0.5], [1.5], [3.0]], np.linspace(0, 4, 11), 2, rtol=1e-12
    )
    print(format_table(comparisons))
    agree = all(c.passed for c in comparisons)
    print(
        "all backends agree: the engine backends to rtol 1e-12, each with the independent "
        "reference within their declared tolerances\n"
        if agree
        else "BACKENDS DISAGREE\n"
    )

    print(f"timing: one log-likelihood gradient for {n_particles} particles x {n_obs} observations")
    timings, note = timings_with_reference(graph, data, n_particles)
    for name, batch, seconds in timings:
        alone = "" if batch == n_particles else f"  ({batch} particle only)"
        print(f"  {name:<10} {1e3 * seconds:9.2f} ms{alone}")
    if note:
        print(f"  {note}")
    files = _plots(out_dir, svgd, graph, data, timings)
    if files:
        print("\nplots:\n" + "\n".join(f"  {f}" for f in files))
    return 0 if agree else 1


def _plots(out_dir: Path, svgd, graph, data: np.ndarray, timings: list) -> list[str]:
    """The posterior, the density over the data, and the backend timings (log axis)."""
    try:
        from ..inference.plots import _figure

        _figure()
    except ImportError:
        print("\n(plots skipped: install matplotlib, e.g. pip install 'ptdcore[plot]')")
        return []
    import jax.numpy as jnp

    from ..jax_model import model

    files = svgd.plot(str(out_dir), prefix="demo_svgd", true_theta=[TRUE_THETA])
    grid = np.linspace(1e-3, float(np.quantile(data, 0.995)) * 1.2, 200)
    m = model(graph, nr_moments=0)
    fig = _figure(figsize=(5.5, 3.5))
    ax = fig.subplots()
    ax.hist(data, bins=30, density=True, color="#cccccc", label="simulated data")
    for i, theta in enumerate(svgd.particles[:: max(1, len(svgd.particles) // 20), 0]):
        ax.plot(
            grid,
            m(jnp.array([theta]), jnp.asarray(grid))[0],
            color="#4c72b0",
            lw=0.5,
            alpha=0.4,
            label="density at posterior particles" if i == 0 else None,
        )
    ax.plot(
        grid,
        m(jnp.array([TRUE_THETA]), jnp.asarray(grid))[0],
        color="#c44e52",
        lw=2,
        label=f"density at the truth (theta = {TRUE_THETA})",
    )
    ax.set_xlabel("TMRCA (coalescent units)")
    ax.set_ylabel("density (per coalescent unit)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    files.append(str(out_dir / "demo_density_fit.png"))
    fig.savefig(files[-1], dpi=110)
    fig = _figure(figsize=(6, 3))
    ax = fig.subplots()
    full = timings[0][1]
    labels = [name if batch == full else f"{name} ({batch} particle)" for name, batch, _ in timings]
    ms = [1e3 * seconds for _, _, seconds in timings]
    ax.barh(labels, ms, color="#55a868")
    for y, value in enumerate(ms):
        ax.annotate(f"{value:.3g} ms", (value, y), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=8)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlim(min(ms) / 2, max(ms) * 8)
    ax.invert_yaxis()
    ax.set_xlabel(
        f"ms per log-likelihood gradient, {timings[0][1]} particles x {len(data)} observations "
        "(log scale)",
        fontsize=8,
    )
    fig.tight_layout()
    files.append(str(out_dir / "demo_backend_timings.png"))
    fig.savefig(files[-1], dpi=110)
    return files
