"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).parent))


def engine_eval(graph, theta, times, nr_moments=2, jacobian=False):
    """Evaluate through the raw pybind11 binding (the engine, no adapter)."""
    from ptdcore_backends.pybind11 import prepare

    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    return prepare(graph.structure()).evaluate(
        theta, np.asarray(times, dtype=float), nr_moments, jacobian
    )


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
