"""Graph construction, validation errors and the structure's serialisation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import engine_eval

from ptdcore import Graph, Structure
from ptdcore.coalescent import kingman_graph, kingman_sfs_callback


def two_state_edges():
    return [(0, 1, 0.0, [1.0, 0.0]), (1, 0, 0.5, [0.0, 0.0]), (1, -1, 0.0, [0.0, 1.0])]


def test_from_callback_states_in_breadth_first_order():
    g = kingman_graph(4)
    assert g.states[0] == (4, 0, 0, 0)
    assert set(g.states) == {(4, 0, 0, 0), (2, 1, 0, 0), (0, 2, 0, 0), (1, 0, 1, 0)}
    assert g.nr_states == 4 and g.nr_params == 1 and not g.discrete
    assert (0, 0, 0, 1) not in g.states  # absorbing


def test_callback_weight_forms():
    def cb(state):
        (k,) = state
        if k == 0:
            return [((1,), 2.0)]  # constant
        if k == 1:
            return [((2,), (0.5, [1.0, 0.0]))]  # (constant, coefficients)
        if k == 2:
            return [((3,), [0.0, 3.0])]  # coefficients
        return []

    g = Graph.from_callback(cb, (0,), nr_params=2)
    np.testing.assert_allclose(g.structure().weights([10.0, 100.0]), [2.0, 10.5, 300.0])


def test_callback_errors_name_the_transition():
    with pytest.raises(ValueError, match=r"transition \(0,\) -> \(1,\).*3 coefficients"):
        Graph.from_callback(
            lambda s: [((1,), [1.0, 2.0, 3.0])] if s == (0,) else [], (0,), nr_params=2
        )
    with pytest.raises(ValueError, match="initial state"):
        Graph.from_callback(lambda s: [], (0,), nr_params=1)


def test_from_matrices_matches_from_edges():
    base = np.array([[-1.5, 0.5], [0.25, -0.75]])
    params = [np.array([[-1.0, 1.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [0.0, -2.0]])]
    gm = Graph.from_matrices([0.7, 0.3], base, params)
    theta = np.array([0.4, 1.3])
    S = base + theta[0] * params[0] + theta[1] * params[1]
    M, exit_w = gm.sub_intensity(theta)
    np.testing.assert_allclose(M, S, atol=1e-15)
    np.testing.assert_allclose(exit_w, -S.sum(axis=1), atol=1e-15)


def test_from_matrices_discrete():
    T = np.array([[0.2, 0.5], [0.0, 0.6]])
    g = Graph.from_matrices([1.0, 0.0], T, discrete=True)
    pmf, _ = engine_eval(g, np.zeros((1, 0)), [1, 2, 3], 0)
    t = 1 - T.sum(axis=1)
    a = np.array([1.0, 0.0])
    np.testing.assert_allclose(pmf[0], [a @ t, a @ T @ t, a @ T @ T @ t], rtol=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": [1.2, 0.0]}, r"alpha\[0\] = 1.2 .* outside \[0, 1\]"),
        ({"alpha": [0.7, 0.6]}, "alpha sums to"),
        ({"alpha": [np.nan, 0.0]}, r"alpha\[0\]"),
        ({"edges": [(0, 5, 1.0, None), (1, -1, 1.0, None)]}, "edge 0: destination state 5"),
        (
            {"edges": [(0, 1, -1.0, None), (1, -1, 1.0, None)]},
            r"edge 0 \(state 0 -> state 1\): negative weight",
        ),
        ({"edges": [(0, 1, np.inf, None), (1, -1, 1.0, None)]}, "edge 0 .* not finite"),
        ({"edges": [(0, 0, 1.0, None), (0, 1, 1.0, None), (1, -1, 1.0, None)]}, "self-loop"),
        (
            {"edges": [(0, 1, 1.0, None), (1, 0, 1.0, None)]},
            "absorption is impossible from state 0",
        ),
        ({"rewards": [1.0]}, "rewards has length 1"),
        ({"rewards": [1.0, -2.0]}, "reward -2.0 for state 1"),
    ],
)
def test_validation_errors_name_the_problem(kwargs, message):
    args = {"alpha": [1.0, 0.0], "edges": [(0, 1, 1.0, None), (1, -1, 1.0, None)], "nr_params": 0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Graph.from_edges(**args)


def test_discrete_validation():
    with pytest.raises(ValueError, match="state 0: out-probabilities sum to 1.2"):
        Graph.from_edges(
            [1.0], [(0, -1, 0.7, None), (0, -1, 0.5, None)], nr_params=0, discrete=True
        )
    with pytest.raises(NotImplementedError, match="discrete"):
        Graph.from_edges([1.0], [(0, -1, 0.5, None)], nr_params=0, discrete=True, rewards=[1.0])


def test_unreachable_absorption_names_labelled_state():
    def cb(state):
        (k,) = state
        return {
            0: [((1,), 1.0), ((2,), 1.0)],
            1: [((3,), 1.0)],
            2: [((2 + 1,), 1.0)],
            3: [((2,), 1.0)],
        }.get(k, [])

    with pytest.raises(ValueError, match=r"absorption is impossible from state \d+ \(\d,\)"):
        Graph.from_callback(cb, (0,), nr_params=0)


def test_structure_json_round_trip_and_hash():
    g = kingman_graph(6, reward="singleton")
    s = g.structure()
    s2 = Structure.from_json(s.to_json())
    assert s2 == s and hash(s2) == hash(s)
    # labels survive (an (N, d) array for from_frontier graphs, tuples after JSON)
    assert [tuple(map(int, x)) for x in s2.states] == [tuple(map(int, x)) for x in s.states]
    np.testing.assert_array_equal(s2.rewards, s.rewards)
    assert Graph.from_json(g.to_json()).nr_states == g.nr_states
    assert kingman_graph(6).structure() != s  # rewards are part of the content
    assert len({s, s2, kingman_graph(6).structure()}) == 2
    with pytest.raises(ValueError):
        s.alpha[0] = 0.5  # read-only


def test_structure_json_rejects_corruption_and_other_versions():
    text = kingman_graph(4).to_json()
    with pytest.raises(ValueError, match="content hash"):
        Structure.from_json(text.replace('"constant": [0.0', '"constant": [1.0'))
    with pytest.raises(ValueError, match="version"):
        Structure.from_json(text.replace('"version": 1', '"version": 99'))


PINNED_JSON = (
    '{"format": "ptdcore.structure", "version": 1, "nr_states": 2, "nr_params": 1, '
    '"discrete": false, "alpha": [1.0, 0.0], "src": [0, 1], "dst": [1, -1], '
    '"constant": [0.5, 0.0], "coef_ptr": [0, 1, 2], "coef_index": [0, 0], '
    '"coef_value": [2.0, 1.0], "rewards": null, "states": null}'
)
PINNED_HASH = "78fe06d51f88e392e3b3e3f84781a1ab2152f812e84056156513f99cd14e9927"


def test_content_hash_is_pinned():
    """A change here breaks legacy caches and saved models: on purpose only."""
    s = Graph.from_edges(
        [1.0, 0.0], [(0, 1, 0.5, [2.0]), (1, -1, 0.0, [1.0])], nr_params=1
    ).structure()
    assert s.content_hash == PINNED_HASH
    assert Structure.from_json(PINNED_JSON).content_hash == PINNED_HASH


def test_content_hash_recomputed_by_hand_from_the_json():
    """The documented recipe, written out with hashlib and struct, not Structure's code."""
    import hashlib
    import json
    import struct

    data = json.loads(PINNED_JSON)
    h = hashlib.sha256()
    h.update(f"ptdcore.structure/1/{data['nr_states']}/{data['nr_params']}/".encode())
    h.update(b"discrete" if data["discrete"] else b"continuous")
    for name, fmt in [("alpha", "d"), ("src", "q"), ("dst", "q"), ("constant", "d"),
                      ("coef_ptr", "q"), ("coef_index", "q"), ("coef_value", "d")]:  # fmt: skip
        h.update(name.encode())
        h.update(struct.pack(f"<{len(data[name])}{fmt}", *data[name]))
    assert h.hexdigest() == PINNED_HASH


def test_kingman_callback_is_a_coalescent():
    out = kingman_sfs_callback((3, 0, 0))
    assert out == [((1, 1, 0), [3.0])]


def test_invalid_theta_gives_nan_for_that_row_only():
    g = Graph.from_edges([1.0, 0.0], two_state_edges(), nr_params=2)
    theta = np.array([[1.0, 2.0], [-1.0, 2.0], [1.0, np.nan], [1.0, np.inf], [0.5, 0.5]])
    pmf, mom, dpmf, dmom = engine_eval(g, theta, [0.0, 1.0, 2.0], 2, jacobian=True)
    for row in (1, 2, 3):
        assert np.all(np.isnan(pmf[row])) and np.all(np.isnan(mom[row]))
        assert np.all(np.isnan(dpmf[row])) and np.all(np.isnan(dmom[row]))
    for row in (0, 4):
        assert np.all(np.isfinite(pmf[row])) and np.all(np.isfinite(dmom[row]))


def test_invalid_times_give_nan_entries():
    g = Graph.from_edges([1.0, 0.0], two_state_edges(), nr_params=2)
    pmf, _ = engine_eval(g, [1.0, 1.0], [1.0, -1.0, np.nan, np.inf], 0)
    assert np.isfinite(pmf[0, 0]) and np.all(np.isnan(pmf[0, 1:]))
    gd = Graph.from_edges([1.0], [(0, -1, 0.5, None)], nr_params=0, discrete=True)
    pmf, _ = engine_eval(gd, np.zeros((1, 0)), [1.0, 1.5, -1.0], 0)
    assert pmf[0, 0] == 0.5 and np.all(np.isnan(pmf[0, 1:]))


def test_discrete_probabilities_above_one_give_nan():
    g = Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1, discrete=True)
    pmf, mom = engine_eval(g, [[0.5], [1.5]], [1.0, 2.0], 1)
    assert np.all(np.isfinite(pmf[0])) and np.all(np.isnan(pmf[1])) and np.isnan(mom[1, 0])


def test_engine_rejects_wrong_theta_shape():
    from ptdcore_backends.pybind11 import prepare

    pm = prepare(kingman_graph(3).structure())
    with pytest.raises(ValueError, match=r"theta must have shape \(B, 1\)"):
        pm.evaluate_into(np.ones((2, 3)), np.ones(2), 1, [np.empty((2, 2)), np.empty((2, 1))])
