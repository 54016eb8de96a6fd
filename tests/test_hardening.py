"""Hardening: pickling, the state cap, the command line's input checks."""

from __future__ import annotations

import pickle
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import jax.numpy as jnp
import numpy as np
import pytest

import ptdcore
from ptdcore import Graph, ModelError
from ptdcore.coalescent import kingman_graph, kingman_sfs


def exponential():
    return Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1)


def _enable_x64():
    import jax

    jax.config.update("jax_enable_x64", True)  # a fresh process: the user's own setting


def _evaluate(model):
    pdf, moments = model(np.array([2.0]), np.array([0.5]))
    return float(pdf[0]), float(moments[0])


def test_a_model_pickles_and_evaluates_in_another_process():
    model = ptdcore.model(exponential(), nr_moments=1, backend="pybind11")
    clone = pickle.loads(pickle.dumps(model))
    assert clone.backend.name == "pybind11" and clone.structure == model.structure
    np.testing.assert_allclose(clone(jnp.array([2.0]), jnp.array([0.5]))[0], 2 * np.exp(-1.0))
    with ProcessPoolExecutor(1, get_context("spawn"), initializer=_enable_x64) as pool:
        pdf, mean = pool.submit(_evaluate, model).result(timeout=300)
    np.testing.assert_allclose([pdf, mean], [2 * np.exp(-1.0), 0.5], rtol=1e-13)


def test_reward_moments_and_epoch_models_pickle():
    graph, rewards = kingman_sfs(4)
    rm = ptdcore.reward_moments(graph, rewards)
    clone = pickle.loads(pickle.dumps(rm))
    mean, _ = clone(jnp.array([1.0]))
    np.testing.assert_allclose(mean, [2 / i for i in range(1, 4)], rtol=1e-13)  # E xi_i = 2/i
    two = ptdcore.model(exponential(), nr_moments=1, epochs=2)
    clone = pickle.loads(pickle.dumps(two))
    assert clone.epochs == 2
    got = clone(jnp.array([[1.0], [3.0]]), jnp.array([2.0]), jnp.array([1.0]))[0]
    np.testing.assert_allclose(got, 3 * np.exp(-1.0 - 3.0), rtol=1e-12)


def test_a_structure_pickles_with_read_only_arrays():
    s = pickle.loads(pickle.dumps(kingman_graph(5).structure()))
    assert s == kingman_graph(5).structure() and not s.src.flags.writeable


@pytest.mark.parametrize("build", ["from_callback", "from_frontier"])
def test_a_state_space_that_never_ends_stops_at_the_cap(build):
    if build == "from_callback":
        with pytest.raises(ModelError, match=r"max_states=500: 501 states found"):
            Graph.from_callback(lambda s: [((s[0] + 1,), 1.0)], (0,), 0, max_states=500)
        return

    def step(states):
        k = len(states)
        return np.arange(k), states + 1, (np.ones(k), np.zeros((k, 1)))

    with pytest.raises(ModelError, match=r"max_states=500: 501 states found"):
        Graph.from_frontier(step, (0,), 1, max_states=500)


def test_the_default_cap_is_documented_and_checked():
    assert ptdcore.graph.MAX_STATES >= 1_000_000
    with pytest.raises(ModelError, match="max_states must be a whole number"):
        Graph.from_callback(lambda s: [], (0,), 0, max_states=0)


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "ptdcore.cli", *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize(
    ("times", "message"),
    [("-1,0.5", "times must be"), ("nan", "times must be"), ("a,b", "--times")],
)
def test_check_refuses_invalid_times(tmp_path, times, message):
    path = tmp_path / "model.json"
    path.write_text(exponential().to_json())
    proc = run_cli("check", str(path), f"--times={times}", "--backends", "pybind11,cffi")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and "agree" not in proc.stdout
    assert "Traceback" not in proc.stderr
