"""``ptdcore check``: the migration tool, on a good model and against a broken plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from ptdcore.testing import structured_coalescent

BROKEN_PLUGIN = textwrap.dedent(
    """
    import ptdcore

    class Perturbed(ptdcore.Backend):
        name = "perturbed"
        description = "pybind11 with dmoments off by 1e-9 (a deliberately broken backend)"

        def compute_pmf_and_moments(self, structure, theta, times, nr_moments, *, jacobian=False):
            out = ptdcore.get_backend("pybind11").compute_pmf_and_moments(
                structure, theta, times, nr_moments, jacobian=jacobian)
            if jacobian:
                out = out._replace(dmoments=out.dmoments * (1 + 1e-9))
            return out

    @ptdcore.hookimpl
    def ptdcore_register_backends():
        return [Perturbed]
    """
)


def run_check(tmp_path, *args, plugin=False):
    model = tmp_path / "model.json"
    model.write_text(structured_coalescent(4).to_json())
    env = dict(os.environ)
    if plugin:
        (tmp_path / "ptd_perturbed.py").write_text(BROKEN_PLUGIN)
        dist = tmp_path / "ptd_perturbed-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ptd-perturbed\nVersion: 1.0\n")
        (dist / "entry_points.txt").write_text("[ptdcore]\nperturbed = ptd_perturbed\n")
        env["PYTHONPATH"] = str(tmp_path) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "ptdcore.cli", "check", str(model), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def test_check_passes_on_a_saved_model(tmp_path):
    proc = run_check(tmp_path, "--theta", "1.0,0.5,2.0", "--times", "0.1,1,3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pybind11 / cffi" in proc.stdout and "all backends agree" in proc.stdout


def test_check_fails_on_a_perturbed_backend_and_names_the_output(tmp_path):
    proc = run_check(tmp_path, "--backends", "pybind11,perturbed", plugin=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL" in proc.stdout
    assert "pybind11 vs perturbed: dmoments" in proc.stdout
    assert "pmf[" not in proc.stdout.split("FAILED:")[1]


def test_check_reports_unreadable_model(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ptdcore.cli", "check", str(tmp_path / "missing.json")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2 and "cannot read" in proc.stderr


RAISING_PLUGIN = textwrap.dedent(
    """
    import ptdcore

    class Raising(ptdcore.Backend):
        name = "perturbed"
        description = "raises on every call"

        def compute_pmf_and_moments(self, structure, theta, times, nr_moments, *, jacobian=False):
            raise RuntimeError("out of cheese")

    @ptdcore.hookimpl
    def ptdcore_register_backends():
        return [Raising]
    """
)


def test_check_compares_with_the_reference_and_prints_the_theta(tmp_path):
    proc = run_check(tmp_path, "--theta", "1.0,0.5,2.0", "--backends", "pybind11,cffi")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pybind11 / reference" in proc.stdout and "cffi / reference" in proc.stdout
    assert "theta: 1,0.5,2" in proc.stdout and "--theta" in proc.stdout
    assert "with the independent reference" in proc.stdout


def test_check_fails_when_every_output_is_nan(tmp_path):
    """At a theta outside the domain every backend agrees on NaN: that is not a pass."""
    proc = run_check(tmp_path, "--theta=-1,1,1", "--backends", "pybind11,cffi")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "nothing compared" in proc.stdout and "all backends agree" not in proc.stdout


def test_check_fails_when_a_backend_raises(tmp_path):
    global BROKEN_PLUGIN
    saved, BROKEN_PLUGIN = BROKEN_PLUGIN, RAISING_PLUGIN
    try:
        proc = run_check(tmp_path, "--backends", "pybind11,perturbed", plugin=True)
    finally:
        BROKEN_PLUGIN = saved
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "perturbed: raised RuntimeError: out of cheese" in proc.stdout
