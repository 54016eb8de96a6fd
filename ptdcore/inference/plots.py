"""Plots of SVGD results (matplotlib, an optional dependency: ``pip install ptdcore[plot]``).

Figures are made with matplotlib's object API (``matplotlib.figure.Figure``), never
through pyplot: ptdcore changes no global matplotlib state (no backend switch, no open
figures).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# A fitted ptdcore.SVGD (not imported: svgd.py imports this module for SVGD.plot).
SVGD = Any


def _figure(**kwargs: Any) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'ptdcore[plot]'") from None
    return Figure(**kwargs)


def plot_svgd(svgd: SVGD, out_dir: str, prefix: str, true_theta: Any = None) -> list[str]:
    """Posterior density per parameter, particle traces and (two or more parameters) a
    pair plot; returns the written files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = svgd.theta_dim
    names = svgd.param_names
    truth = None if true_theta is None else np.atleast_1d(np.asarray(true_theta, dtype=float))
    files = []

    fig = _figure(figsize=(4 * d, 3.2))
    axes = fig.subplots(1, d, squeeze=False)
    for j, ax in enumerate(axes[0]):
        ax.hist(
            svgd.particles[:, j],
            bins=30,
            density=True,
            color="#4c72b0",
            alpha=0.8,
            label="particles (posterior)",
        )
        ax.axvline(svgd.theta_mean[j], color="k", lw=1, label="posterior mean")
        if truth is not None:
            ax.axvline(truth[j], color="#c44e52", lw=1.5, ls="--", label="truth")
        ax.set_xlabel(names[j])
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    fig.tight_layout()
    files.append(str(out / f"{prefix}_posterior.png"))
    fig.savefig(files[-1], dpi=110)

    fig = _figure(figsize=(4 * d, 3.2))
    axes = fig.subplots(1, d, squeeze=False)
    hist = svgd.history
    steps = np.linspace(0, svgd.n_iterations, hist.shape[0])
    for j, ax in enumerate(axes[0]):
        lines = ax.plot(steps, hist[:, :, j], color="#4c72b0", lw=0.5, alpha=0.4)
        lines[0].set_label("one line per particle")
        if truth is not None:
            ax.axhline(truth[j], color="#c44e52", lw=1.5, ls="--", label="truth")
        ax.legend(fontsize=8)
        ax.set_yscale("log" if svgd.positive else "linear")
        ax.set_xlabel("iteration")
        ax.set_ylabel(names[j])
    fig.tight_layout()
    files.append(str(out / f"{prefix}_traces.png"))
    fig.savefig(files[-1], dpi=110)

    if d >= 2:
        files.append(plot_pairs(svgd, str(out / f"{prefix}_pairs.png"), truth))
    return files


def plot_pairs(svgd: SVGD, path: str, truth: np.ndarray | None = None) -> str:
    """Pair plot of the particles: histograms on the diagonal, scatter plots below it."""
    d = svgd.theta_dim
    names = svgd.param_names
    x = svgd.particles
    fig = _figure(figsize=(2.6 * d, 2.6 * d))
    axes = fig.subplots(d, d, squeeze=False)
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(x[:, j], bins=25, color="#4c72b0", alpha=0.8)
            else:
                ax.scatter(x[:, j], x[:, i], s=6, color="#4c72b0", alpha=0.6, label="particles")
                if truth is not None:
                    ax.plot(truth[j], truth[i], marker="x", color="#c44e52", ms=8, label="truth")
                if (i, j) == (1, 0):
                    ax.legend(fontsize=7)
            if i == d - 1:
                ax.set_xlabel(names[j])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
