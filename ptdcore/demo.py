"""``ptdcore demo``: the main job, end to end on a Kingman coalescent."""

from __future__ import annotations

import time

import numpy as np


def run_demo(quick: bool = False, out: str = "ptdcore-demo") -> int:
    """Build a Kingman coalescent, evaluate its density, moments and gradients, and report."""
    from .coalescent import kingman_graph

    n = 6 if quick else 10
    theta = 1.0
    t0 = time.perf_counter()
    graph = kingman_graph(n)
    build_s = time.perf_counter() - t0
    print(
        f"Kingman coalescent, n = {n}: {graph.nr_states} states, {graph.nr_edges} edges "
        f"(built in {build_s * 1e3:.1f} ms)"
    )
    from ptdcore_backends.pybind11 import prepare

    times = np.linspace(0.0, 5.0, 11)
    pdf, moments, dpdf, dmoments = prepare(graph.structure()).evaluate(
        np.array([[theta]]), times, 2, jacobian=True
    )
    rates = np.array([k * (k - 1) / 2 * theta for k in range(2, n + 1)])
    mean_exact = np.sum(1 / rates)
    print(f"\nTMRCA at theta = {theta}:")
    print(f"  E[T]   = {moments[0, 0]:.15f}   (closed form {mean_exact:.15f})")
    print(f"  E[T^2] = {moments[0, 1]:.15f}")
    print(f"  dE[T]/dtheta = {dmoments[0, 0, 0]:.15f}")
    print("\n     t        pdf(t)            dpdf/dtheta")
    for t, f, df in zip(times, pdf[0], dpdf[0, :, 0], strict=True):
        print(f"  {t:5.2f}  {f:.15e}  {df: .15e}")
    return 0
