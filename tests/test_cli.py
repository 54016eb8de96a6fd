"""The command line: demo (quick), backends, help and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "ptdcore.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_demo_quick_end_to_end(tmp_path):
    proc = run("demo", "--quick", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "posterior mean" in proc.stdout and "all backends agree" in proc.stdout
    pytest.importorskip("matplotlib")
    assert (tmp_path / "demo_density_fit.png").stat().st_size > 1000
    assert (tmp_path / "demo_svgd_posterior.png").exists()


def test_backends_table():
    proc = run("backends")
    assert proc.returncode == 0
    assert "pybind11" in proc.stdout and "available" in proc.stdout


@pytest.mark.parametrize("command", [[], ["demo"], ["backends"], ["check"], ["bench"]])
def test_help_everywhere(command):
    proc = run(*command, "--help")
    assert proc.returncode == 0 and "usage" in proc.stdout


def test_bad_usage_exits_non_zero():
    assert run("no-such-command").returncode == 2


def test_bench_table():
    proc = run("bench", "-n", "4", "--observations", "10", "--backends", "pybind11,cffi")
    assert proc.returncode == 0, proc.stderr
    assert "pybind11" in proc.stdout and "20 thetas" in proc.stdout


def test_bench_on_the_users_model(tmp_path):
    from ptdcore.coalescent import structured_graph

    path = tmp_path / "model.json"
    path.write_text(structured_graph((2, 1)).to_json())
    proc = run(
        "bench", str(path), "--theta", "1,0.5", "--backends", "pybind11", "--observations", "5"
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 parameters" in proc.stdout and "pybind11" in proc.stdout
    bad = run("bench", str(path), "--theta", "1")
    assert bad.returncode == 2 and "--theta needs 2 values" in bad.stderr


def test_cache_info_and_clear(tmp_path, monkeypatch):
    cache = tmp_path / "legacy-cache"
    cache.mkdir()
    (cache / "entry.so").write_bytes(b"x" * 1000)
    env_run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "ptdcore.cli", "cache", *args],
        capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "PTDCORE_CACHE_DIR": str(cache)},
    )  # fmt: skip
    info = env_run()
    assert info.returncode == 0 and str(cache) in info.stdout and "1 entries" in info.stdout
    cleared = env_run("clear")
    assert cleared.returncode == 0 and "cleared" in cleared.stdout
    assert not cache.exists()


def test_bench_times_the_reference_on_one_theta_only():
    proc = run("bench", "-n", "4", "--observations", "10", "--backends", "cffi,reference")
    assert proc.returncode == 0, proc.stderr
    assert "reference: timed on 1 theta only" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if line.startswith("reference "))
    assert row.split()[-1] == "-"  # no 20-theta column for the oracle


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("[1, 2]", "got list"),
        ("null", "got NoneType"),
        ("{not json", "not valid JSON"),
        ('{"format": "ptdcore.structure", "version": 1, "nr_sates": 1}', "'nr_states'"),
        ("TYPO", "unknown field 'nr_sates'"),
        ("SRC", "field 'src'"),
        ("SHAPE", "field 'alpha' must be a flat list"),
    ],
)
def test_a_bad_model_file_gives_one_line_naming_the_field(tmp_path, content, named):
    import json

    from ptdcore import Graph

    good = json.loads(Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1).to_json())
    if content == "TYPO":
        good["nr_sates"] = good.pop("nr_states")
        content = json.dumps(good)
    elif content == "SRC":
        good["src"] = ["zero"]
        content = json.dumps(good)
    elif content == "SHAPE":
        good["alpha"] = [[1.0]]
        content = json.dumps(good)
    path = tmp_path / "model.json"
    path.write_text(content)
    for command in ("check", "bench"):
        proc = run(command, str(path))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert named in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_dir_lists_the_lazily_loaded_names():
    import ptdcore

    names = dir(ptdcore)
    for name in ("model", "Model", "SVGD", "fit_mle", "reward_moments", "RewardMoments"):
        assert name in names
