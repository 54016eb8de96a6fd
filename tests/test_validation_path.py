"""One validation path: every way of making a model runs the same checks, with the same words."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ptdcore import Graph, tolerances
from ptdcore.structure import Structure

ROOT = Path(__file__).resolve().parents[1]


def _fields(**change):
    """A valid two-state model as Structure fields, with some fields changed."""
    fields = dict(
        nr_states=2,
        nr_params=1,
        discrete=False,
        alpha=[1.0, 0.0],
        src=[0, 1],
        dst=[1, -1],
        constant=[0.0, 2.0],
        coef_ptr=[0, 1, 1],
        coef_index=[0],
        coef_value=[1.0],
    )
    fields.update(change)
    return fields


BAD = [
    ({"alpha": [1.5, 0.0]}, r"alpha\[0\] = 1\.5 for state 0 is outside \[0, 1\]"),
    ({"alpha": [0.75, 0.5]}, r"alpha sums to 1\.25, which is more than 1"),
    (
        {"constant": [-1.0, 2.0], "coef_ptr": [0, 0, 0], "coef_index": [], "coef_value": []},
        r"edge 0 \(state 0 -> state 1\): negative weight -1\.0 with no parameter coefficients",
    ),
    (
        {"constant": [0.0, np.nan]},
        r"edge 1 \(state 1 -> absorption\): constant weight is not finite",
    ),
    ({"dst": [1, 1], "src": [0, 1]}, r"self-loop in a continuous model"),
    ({"dst": [1, 0]}, r"absorption is impossible from state 0, state 1"),
    ({"rewards": [1.0, -2.0]}, r"reward -2\.0 for state 1 must be finite and >= 0"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_structure_json_and_graph_give_the_same_error(change, message):
    # (1) a Structure made directly
    with pytest.raises(ValueError, match=message):
        Structure(**_fields(**change))
    # (2) the same model from JSON (as `ptdcore check` and users' files read it)
    data = {"format": "ptdcore.structure", "version": 1, **_fields(**change)}
    data.setdefault("rewards", None)
    text = json.dumps(
        {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in data.items()}
    )
    with pytest.raises(ValueError, match=message):
        Structure.from_json(text)


def test_graph_edges_give_the_structure_message():
    with pytest.raises(ValueError, match=BAD[0][1]):
        Graph.from_edges([1.5, 0.0], [(0, 1, 0.0, [1.0]), (1, -1, 2.0, [0.0])], nr_params=1)


def test_cli_check_reports_the_validation_message(tmp_path):
    data = {"format": "ptdcore.structure", "version": 1, "rewards": None, **_fields(alpha=[1.5, 0])}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    proc = subprocess.run(
        [sys.executable, "-m", "ptdcore.cli", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert re.search(BAD[0][1], proc.stderr), proc.stderr


def test_every_backend_receives_validated_structures():
    """Backends take a Structure, and no invalid Structure can exist."""
    s = Structure(**_fields())
    assert s.nr_states == 2
    with pytest.raises(ValueError):
        Structure(**_fields(alpha=[np.inf, 0.0]))


def test_engine_header_tolerances_match_python():
    """The engine's copy of the tolerances (tolerances.hpp) equals ptdcore.tolerances."""
    header = (ROOT / "cpp" / "include" / "ptdcore" / "tolerances.hpp").read_text()
    values = dict(re.findall(r"inline constexpr double (k\w+) = ([0-9.eE+-]+);", header))
    assert float(values["kAlphaSumTolerance"]) == tolerances.ALPHA_SUM_TOLERANCE
    assert float(values["kDiscreteSumTolerance"]) == tolerances.DISCRETE_SUM_TOLERANCE
    assert float(values["kLevelRateTolerance"]) == tolerances.LEVEL_RATE_TOLERANCE
