"""Graph.from_frontier: the vectorised state-space expansion, against the per-state
Graph.from_callback (an independent, simple breadth-first loop) and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

import ptdcore
from ptdcore import coalescent
from ptdcore.graph import Graph


def _same_graph(a: Graph, b: Graph) -> None:
    assert a.states == b.states
    assert a.structure().content_hash == b.structure().content_hash


@pytest.mark.parametrize("n", [2, 3, 7, 15])
def test_kingman_frontier_builds_the_callback_graph(n):
    initial = (n,) + (0,) * (n - 1)
    by_state = Graph.from_callback(coalescent.kingman_sfs_callback, initial, nr_params=1)
    _same_graph(coalescent.kingman_graph(n), by_state)


def _structured_sfs_by_state(samples, shared_coalescence=True, symmetric_migration=True):
    """The structured SFS space written per state, as in the first version."""
    samples, demes, P, coal, mig = coalescent._structured_layout(
        samples, shared_coalescence, symmetric_migration
    )
    n = sum(samples)

    def callback(state):
        if sum(state) <= 1:
            return []
        out = []
        for d in range(demes):
            for i in range(n):
                a = state[d * n + i]
                if a == 0:
                    continue
                for j in range(i, n):
                    pairs = a * (a - 1) // 2 if i == j else a * state[d * n + j]
                    if pairs:
                        nxt = list(state)
                        nxt[d * n + i] -= 1
                        nxt[d * n + j] -= 1
                        nxt[d * n + i + j + 1] += 1
                        out.append((tuple(nxt), coalescent._coefs(P, coal(d), pairs)))
                for e in range(demes):
                    if e != d:
                        nxt = list(state)
                        nxt[d * n + i] -= 1
                        nxt[e * n + i] += 1
                        out.append((tuple(nxt), coalescent._coefs(P, mig(d, e), a)))
        return out

    initial = [0] * (demes * n)
    for d, a in enumerate(samples):
        initial[d * n] = a
    return Graph.from_callback(callback, tuple(initial), nr_params=P)


@pytest.mark.parametrize(
    "samples, kwargs",
    [
        ((2, 2), {}),
        ((3, 1), {"shared_coalescence": False}),
        ((2, 1, 1), {"symmetric_migration": False}),
    ],  # fmt: skip
)
def test_structured_sfs_frontier_builds_the_callback_graph(samples, kwargs):
    graph, _ = coalescent.structured_sfs(samples, **kwargs)
    _same_graph(graph, _structured_sfs_by_state(samples, **kwargs))


def test_constant_weights_and_closed_form():
    """Erlang(3) with rate 2 + theta: states count down; weights (constant, coefficients)."""

    def callback(states):
        alive = np.flatnonzero(states[:, 0] > 0)
        K = alive.size
        return alive, states[alive] - 1, (np.full(K, 2.0), np.ones((K, 1)))

    g = Graph.from_frontier(callback, (3,), nr_params=1)
    assert g.nr_states == 3 and g.states == ((3,), (2,), (1,))
    m = ptdcore.get_backend("pybind11")
    t = np.array([0.5, 1.5])
    pmf, moments = m.compute_pmf_and_moments(g.structure(), np.array([[1.0]]), t, 1)
    rate = 3.0
    np.testing.assert_allclose(pmf[0], rate**3 * t**2 * np.exp(-rate * t) / 2, rtol=1e-13)
    np.testing.assert_allclose(moments[0, 0], 3 / rate, rtol=1e-14)


def _erlang_callback(states):
    alive = np.flatnonzero(states[:, 0] > 0)
    return alive, states[alive] - 1, np.ones((alive.size, 1))


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda s: (np.zeros(1, np.int64), s - 1), "expected \\(source, targets, weights\\)"),
        (lambda s: (np.array([5]), s - 1, np.ones((1, 1))), "must index the 1 frontier rows"),
        (lambda s: (np.array([0.0]), s - 1, np.ones((1, 1))), "source must be a 1-D integer"),
        (
            lambda s: (np.array([0]), np.zeros((1, 2), np.int64), np.ones((1, 1))),
            r"targets must be integers of shape \(1, 1\)",
        ),  # fmt: skip
        (lambda s: (np.array([0]), s - 1, np.ones((1, 2))), r"coefficients \(1, 1\)"),
        (lambda s: (np.array([0]), s.astype(np.int64) + 300, np.ones((1, 1))), "does not fit int8"),
    ],
)
def test_malformed_callback_output_names_the_problem(bad, message):
    with pytest.raises(ptdcore.ModelError, match=message):
        Graph.from_frontier(bad, (3,), nr_params=1, dtype=np.int8)


def test_a_start_without_transitions_is_an_error():
    with pytest.raises(ptdcore.ModelError, match="initial state \\(0,\\) has no transitions"):
        Graph.from_frontier(_erlang_callback, (0,), nr_params=1)


def test_hash_collisions_are_detected_never_merged(monkeypatch):
    from ptdcore import frontier

    constant_hash = lambda rows, multipliers: np.zeros(rows.shape[0], np.uint64)  # noqa: E731
    monkeypatch.setattr(frontier, "_row_hashes", constant_hash)
    with pytest.raises(ptdcore.ModelError, match="collided"):
        Graph.from_frontier(_erlang_callback, (3,), nr_params=1)


def test_a_collision_in_one_attempt_is_retried(monkeypatch):
    from ptdcore import frontier

    real = frontier._row_hashes
    calls = {"n": 0}

    def first_attempt_collides(rows, multipliers):
        calls["n"] += 1
        return np.zeros(rows.shape[0], np.uint64) if calls["n"] <= 2 else real(rows, multipliers)

    monkeypatch.setattr(frontier, "_row_hashes", first_attempt_collides)
    g = Graph.from_frontier(_erlang_callback, (3,), nr_params=1)
    assert g.states == ((3,), (2,), (1,))


def _as_frontier(per_state, nr_params):
    """A frontier callback that asks ``per_state`` row by row (the same transitions)."""

    def callback(states):
        source, targets, coefs = [], [], []
        for r, row in enumerate(states.tolist()):
            for nxt, weight in per_state(tuple(row)):
                source.append(r)
                targets.append(nxt)
                coefs.append(weight)
        width = states.shape[1]
        return (
            np.array(source, dtype=np.int64),
            np.array(targets, dtype=np.int64).reshape(-1, width),
            np.array(coefs, dtype=np.float64).reshape(-1, nr_params),
        )

    return callback


@pytest.mark.parametrize("seed", range(6))
def test_random_cyclic_spaces_match_the_per_state_build(seed):
    """Cycles, revisits, duplicate edges and several absorbing states, on 2-d labels."""
    rng = np.random.default_rng(seed)
    size, P = 12, 3
    table = {}
    for a in range(size - 1):  # a = size - 1 is absorbing; every state can climb to it
        for b in range(2):
            edges = [((a + 1, b), list(rng.integers(1, 3, P).astype(float)))]
            for _ in range(rng.integers(0, 4)):
                nxt = (int(rng.integers(0, size)), int(rng.integers(0, 2)))
                if nxt != (a, b):
                    edges.append((nxt, list(rng.integers(0, 3, P).astype(float) + 0.5)))
            table[(a, b)] = edges
    for b in range(2):
        table[(size - 1, b)] = []

    def per_state(state):
        return table[state]

    by_state = Graph.from_callback(per_state, (0, 0), nr_params=P)
    by_frontier = Graph.from_frontier(_as_frontier(per_state, P), (0, 0), nr_params=P)
    _same_graph(by_frontier, by_state)
