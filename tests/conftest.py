"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)


def engine_eval(graph, theta, times, nr_moments=2, jacobian=False):
    """Evaluate through the raw pybind11 binding (the engine, no adapter)."""
    from ptdcore_backends.pybind11 import prepare

    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    times = np.asarray(times, dtype=float)
    B, T, P = theta.shape[0], times.shape[0], theta.shape[1]
    out = [np.empty((B, T)), np.empty((B, nr_moments))]
    if jacobian:
        out += [np.empty((B, T, P)), np.empty((B, nr_moments, P))]
    prepare(graph.structure()).evaluate_into(theta, times, nr_moments, out)
    return tuple(out)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


ENGINE_BACKENDS = ("ffi", "pybind11", "cffi", "legacy")
"""The built-in backends that compile the C++ engine; all must build in CI."""
ALL_BACKENDS = (*ENGINE_BACKENDS, "reference")


def require_backend(name):
    """Skip (with the reason) when a built-in backend cannot run here; fail instead in CI.

    Tests parametrise over the fixed built-in names, never over ``list_backends()`` at
    import, so a backend that failed to build shows up as a skip or a failure.
    """
    import os

    import ptdcore

    info = {i.name: i for i in ptdcore.backend_info()}
    if name in info and info[name].available:
        return name
    reason = info[name].reason if name in info else "not discovered (no entry point)"
    if os.environ.get("CI"):
        pytest.fail(f"built-in backend {name!r} must run in CI but cannot: {reason}")
    pytest.skip(f"backend {name!r} unavailable here: {reason}")
