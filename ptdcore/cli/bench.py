"""``ptdcore bench``: a quick timing table across backends (asv_bench/ has the full suite)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np


def median_seconds(fn: Callable[[], Any], repeats: int = 5) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls (after one warm-up call)."""
    import jax

    jax.block_until_ready(fn())
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        runs.append(time.perf_counter() - t0)
    return float(np.median(runs))


REFERENCE_BATCH = 1
"""The pure-JAX ``reference`` backend is timed on this many thetas only: it is the
oracle, dense and slow by design (100 thetas x 200 times took 49 s)."""
REFERENCE_TIMED_STATES = 60
"""Above this many states even one theta of the reference takes minutes: left out."""
REFERENCE_REPEATS = 3


def loglik_gradient_timings(
    graph: Any,
    data: np.ndarray,
    batch: int,
    backends=None,
    theta: Any = None,
    repeats: int = 5,
) -> dict[str, float]:
    """Median seconds of jit(vmap(grad(sum log pmf))) over ``batch`` thetas, per backend.

    The thetas are ``theta`` (default: ones) scaled by 0.7 .. 1.4.
    """
    import jax
    import jax.numpy as jnp

    from ..jax_model import model
    from ..registry import list_backends

    base = jnp.ones(graph.nr_params) if theta is None else jnp.asarray(theta, jnp.float64)
    thetas = jnp.linspace(0.7, 1.4, batch)[:, None] * base[None, :]
    times = jnp.asarray(data)
    out = {}
    for name in backends or list_backends():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # legacy, timed on purpose
            m = model(graph, nr_moments=2, backend=name)
        fn = jax.jit(jax.vmap(jax.grad(lambda th, m=m: jnp.sum(jnp.log(m(th, times)[0])))))
        out[name] = median_seconds(lambda fn=fn: fn(thetas), repeats=repeats)
    return out


def timings_with_reference(
    graph: Any, data: np.ndarray, batch: int, backends=None, theta: Any = None
) -> tuple[list[tuple[str, int, float]], str]:
    """(backend, thetas, median seconds) of the log-likelihood gradient: the engine
    backends at ``batch`` thetas, the ``reference`` backend at :data:`REFERENCE_BATCH`
    (median of :data:`REFERENCE_REPEATS`) or left out above
    :data:`REFERENCE_TIMED_STATES` states; and the line that says which."""
    from ..registry import list_backends

    names = list(backends or list_backends())
    engines = [name for name in names if name != "reference"]
    rows = [
        (name, batch, seconds)
        for name, seconds in loglik_gradient_timings(graph, data, batch, engines, theta).items()
    ]
    if "reference" not in names:
        return rows, ""
    if graph.nr_states > REFERENCE_TIMED_STATES:
        return rows, (
            f"reference: left out of the timing ({graph.nr_states} states, above "
            f"{REFERENCE_TIMED_STATES}: the dense pure-JAX oracle would take minutes; "
            "ptdcore check still compares with it)"
        )
    seconds = loglik_gradient_timings(
        graph, data, REFERENCE_BATCH, ["reference"], theta, repeats=REFERENCE_REPEATS
    )["reference"]
    rows.append(("reference", REFERENCE_BATCH, seconds))
    return rows, (
        f"reference: timed on {REFERENCE_BATCH} theta only (the dense pure-JAX oracle of "
        "ptdcore check, slow by design; never the default)"
    )


def run_bench(n: int, n_obs: int = 100, backends=None) -> int:
    """Print the table for the Kingman coalescent with ``n`` samples."""
    from ..coalescent import kingman_block_counting, simulate_tmrca

    t0 = time.perf_counter()
    graph = kingman_block_counting(n)
    build = time.perf_counter() - t0
    data = simulate_tmrca(n, 1.0, n_obs, seed=n)
    print(
        f"Kingman n={n}: {graph.nr_states} states, {graph.nr_edges} edges, "
        f"built in {build * 1e3:.1f} ms"
    )
    print(f"log-likelihood gradient over {n_obs} observations (median of 5, after jit):\n")
    _print_gradient_table(graph, data, backends)
    return 0


def run_model_bench(structure: Any, theta: Any, times: np.ndarray, backends=None) -> int:
    """Print the timing table for the user's model (``ptdcore bench MODEL.json``)."""
    print(
        f"model: {structure.nr_states} states, {structure.nr_edges} edges, "
        f"{structure.nr_params} parameters, {'discrete' if structure.discrete else 'continuous'}"
    )
    print(
        f"log-likelihood gradient over {len(times)} observations at theta = "
        f"{np.asarray(theta).tolist()} (median of 5, after jit):\n"
    )
    _print_gradient_table(structure, times, backends, theta)
    return 0


def _print_gradient_table(graph: Any, data: np.ndarray, backends=None, theta: Any = None) -> None:
    """Per engine backend: the log-likelihood gradient for 1 and for 20 thetas, and their
    ratio; the reference backend for 1 theta only (or a line saying why it is left out)."""
    single, note = timings_with_reference(graph, data, 1, backends, theta)
    engines = [name for name, *_ in single if name != "reference"]
    batch = loglik_gradient_timings(graph, data, 20, engines, theta)
    print(f"{'backend':<10} {'1 theta':>12} {'20 thetas':>12} {'20 / 1':>8}")
    for name, _, seconds in single:
        if name in batch:
            rest = f"{batch[name] * 1e3:>9.3f} ms {batch[name] / seconds:>8.1f}"
        else:
            rest = f"{'-':>12} {'-':>8}"
        print(f"{name:<10} {seconds * 1e3:>9.3f} ms {rest}")
    if note:
        print(note)
