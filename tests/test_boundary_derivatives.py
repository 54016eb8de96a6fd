"""Derivatives at the boundary of the parameter space, against certified ball arithmetic.

A theta with a zero weight is valid input; its derivatives are the one-sided ones into
the valid domain. The engine used to set aside states that could not be left or reached
at that theta, and their derivative contributions with them (issue: d pdf / d theta_1 =
0 instead of [0.128, 0.324, 0.580]). The truth here is Arb's (python-flint): a backend
passes when it lies within the contract's bounds of the certified ball.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ENGINE_BACKENDS, require_backend

from ptdcore import Graph
from ptdcore.testing import random_graph
from ptdcore.testing.equivalence import CERTIFIED, compare_backends

pytest.importorskip("flint")

ISSUE_MODEL = Graph.from_edges(
    [1, 0, 0],
    [(0, 1, 0.0, [1, 0]), (0, -1, 0.5, None), (1, 2, 0.0, [0, 1]), (2, -1, 0.0, [1, 1])],
    nr_params=2,
)


def certified_failures(model, thetas, times, backends, nr_moments=2):
    comparisons = compare_backends(
        model, thetas, times, nr_moments, backends, reference=False, certified=True
    )
    against = [c for c in comparisons if c.second == CERTIFIED]
    assert against, "nothing was compared with the certified reference"
    assert any(not c.problem for c in against), [c.describe() for c in against]
    return [c.describe() for c in against if not c.passed and not c.problem.startswith("skip")]


@pytest.mark.parametrize("name", ENGINE_BACKENDS)
def test_the_issues_model_at_its_boundary_thetas(name):
    require_backend(name)
    thetas = [[1.3, 0.0], [0.0, 1.0]]
    assert certified_failures(ISSUE_MODEL, thetas, [0.5, 1.0, 2.0], [name]) == []


def test_the_issues_figures():
    """The one-sided derivatives the issue gives (from ball arithmetic, to 6 digits)."""
    from conftest import engine_eval

    _, _, dpmf, _ = engine_eval(ISSUE_MODEL, [1.3, 0.0], [0.5, 1.0, 2.0], 0, jacobian=True)
    np.testing.assert_allclose(dpmf[0, :, 1], [0.128351, 0.324034, 0.580419], atol=2e-6)
    _, _, dpmf, _ = engine_eval(ISSUE_MODEL, [0.0, 1.0], [0.5, 1.0, 2.0], 0, jacobian=True)
    np.testing.assert_allclose(dpmf[0, :, 0], [-0.11215, -0.084419, 0.020956], atol=2e-6)


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_with_one_parameter_at_zero(seed):
    """Random cyclic graphs, each parameter in turn at 0 (the others at 1): pmf, moments
    and both Jacobians within the contract's bounds of the certified values."""
    graph = random_graph(seed, nr_states=5, nr_params=3)
    thetas = [[0.0 if p == q else 1.0 for p in range(3)] for q in range(3)]
    assert certified_failures(graph, thetas, [0.3, 1.0, 2.5], ["ffi"]) == []


def test_the_reference_reports_infinite_moments_as_the_engine_does():
    """Mass trapped in state 1 at theta = (1.3, 0): E[T] = inf in both (was NaN)."""
    import ptdcore

    for name in ("ffi", "reference"):
        out = ptdcore.get_backend(name).compute_pmf_and_moments(
            ISSUE_MODEL.structure(), [[1.3, 0.0]], [1.0], 2, jacobian=True
        )
        assert np.isposinf(out.moments).all() and np.isnan(out.dmoments).all(), name
    finite = ptdcore.get_backend("reference").compute_pmf_and_moments(
        ISSUE_MODEL.structure(), [[1.3, 0.5]], [1.0], 1
    )
    # E[T] = 1/1.8 + (1.3/1.8) (1/0.5 + 1/1.8) with both paths open
    np.testing.assert_allclose(finite.moments[0, 0], 1 / 1.8 + 1.3 / 1.8 * (2 + 1 / 1.8))


def test_quantiles_below_the_absorbable_mass_are_finite():
    """States 1 and 2 form a closed class at theta = 0; half the mass is absorbed (at rate
    1 from state 0), so cdf(t) = (1 - exp(-2 t)) / 2: a level below 1/2 has the finite
    quantile -log(1 - 2 q) / 2, levels from 1/2 up are never reached (inf)."""
    import jax
    import jax.numpy as jnp

    import ptdcore

    jax.config.update("jax_enable_x64", True)
    edges = [(0, -1, 1.0, [0]), (0, 1, 1.0, [0]), (1, 2, 1.0, [0]), (2, 1, 1.0, [0]),
             (2, -1, 0.0, [1])]  # fmt: skip
    graph = Graph.from_edges([1, 0, 0], edges, nr_params=1)
    model = ptdcore.model(graph, nr_moments=1)
    q = jnp.array([1e-10, 0.1, 0.4, 0.5, 0.7])
    got = np.asarray(model.quantile(jnp.array([0.0]), q))
    want = -np.log1p(-2 * np.asarray(q[:3])) / 2
    np.testing.assert_allclose(got[:3], want, rtol=1e-13)
    assert np.isposinf(got[3:]).all()
    # with the class open (theta > 0) every level is finite and cdf(quantile) = q
    open_q = np.asarray(model.quantile(jnp.array([0.5]), q))
    assert np.isfinite(open_q).all()
    np.testing.assert_allclose(model.cdf(jnp.array([0.5]), jnp.asarray(open_q)), q, rtol=1e-12)


def test_check_grid_has_boundary_thetas_and_a_certified_mode(tmp_path):
    """``ptdcore check`` adds one parameter at 0 to its default grid (the issue's model
    would have been caught there) and ``--certified`` compares with ball arithmetic."""
    import subprocess
    import sys

    path = tmp_path / "model.json"
    path.write_text(ISSUE_MODEL.to_json())
    proc = subprocess.run(
        [sys.executable, "-m", "ptdcore.cli", "check", str(path), "--certified",
         "--backends", "ffi,cffi", "--nr-moments", "1"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "theta: 0.5,0.5; 1,1; 2,2; 0,1; 1,0" in proc.stdout
    assert "ffi / certified" in proc.stdout and "cffi / certified" in proc.stdout


def test_values_the_certified_reference_cannot_certify_are_reported():
    """Moments at theta = (1.3, 0) are infinite (mass trapped): the solve cannot be
    certified, so those entries are not compared, and the table says how many."""
    from ptdcore.testing.equivalence import format_table

    comparisons = compare_backends(
        ISSUE_MODEL, [[1.3, 0.0], [1.0, 1.0]], [1.0], 2, ["ffi"], reference=False,
        certified=True,
    )  # fmt: skip
    moments = next(c for c in comparisons if c.second == CERTIFIED and c.output == "moments")
    assert moments.uncertified == 2 and moments.passed
    assert "moments: 2 values not certified" in format_table(comparisons)
