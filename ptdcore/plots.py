"""Plots of SVGD results (matplotlib, an optional dependency: ``pip install ptdcore[plot]``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .svgd import SVGD


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'ptdcore[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_svgd(svgd: SVGD, out_dir: str, prefix: str, true_theta: Any = None) -> list[str]:
    """Posterior density per parameter and particle traces; returns the written files."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = svgd.theta_dim
    truth = None if true_theta is None else np.atleast_1d(np.asarray(true_theta, dtype=float))
    files = []

    fig, axes = plt.subplots(1, d, figsize=(4 * d, 3.2), squeeze=False)
    for j, ax in enumerate(axes[0]):
        ax.hist(svgd.particles[:, j], bins=30, density=True, color="#4c72b0", alpha=0.8)
        ax.axvline(svgd.theta_mean[j], color="k", lw=1, label="posterior mean")
        if truth is not None:
            ax.axvline(truth[j], color="#c44e52", lw=1.5, ls="--", label="truth")
        ax.set_xlabel(f"theta[{j}]")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    fig.tight_layout()
    files.append(str(out / f"{prefix}_posterior.png"))
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, d, figsize=(4 * d, 3.2), squeeze=False)
    hist = svgd.history
    steps = np.linspace(0, svgd.n_iterations, hist.shape[0])
    for j, ax in enumerate(axes[0]):
        ax.plot(steps, hist[:, :, j], color="#4c72b0", lw=0.5, alpha=0.4)
        if truth is not None:
            ax.axhline(truth[j], color="#c44e52", lw=1.5, ls="--")
        ax.set_yscale("log" if svgd.positive else "linear")
        ax.set_xlabel("iteration")
        ax.set_ylabel(f"theta[{j}]")
    fig.tight_layout()
    files.append(str(out / f"{prefix}_traces.png"))
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    return files
