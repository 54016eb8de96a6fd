"""Broken third-party plugins, installed as real distributions: each is a warning naming it,
and the rest of the registry keeps working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

BROKEN = {
    # entry-point name: module source
    "raises_on_import": "raise ImportError('this plugin cannot be imported')\n",
    "raises_in_hook": textwrap.dedent(
        """
        import ptdcore

        @ptdcore.hookimpl
        def ptdcore_register_backends():
            raise RuntimeError("hook exploded")
        """
    ),
    "returns_a_class": textwrap.dedent(
        """
        import ptdcore

        class Lonely(ptdcore.Backend):
            name = "lonely"
            def compute_pmf_and_moments(self, *args, **kwargs):
                raise NotImplementedError

        @ptdcore.hookimpl
        def ptdcore_register_backends():
            return Lonely  # not a list
        """
    ),
    "returns_not_a_backend": textwrap.dedent(
        """
        import ptdcore

        class NotABackend:
            name = "imposter"

        @ptdcore.hookimpl
        def ptdcore_register_backends():
            return [NotABackend, 42]
        """
    ),
    "duplicates_pybind11": textwrap.dedent(
        """
        import ptdcore

        class Shadow(ptdcore.Backend):
            name = "pybind11"
            priority = 10_000
            def compute_pmf_and_moments(self, *args, **kwargs):
                raise RuntimeError("the shadow must never be used")

        @ptdcore.hookimpl
        def ptdcore_register_backends():
            return [Shadow]
        """
    ),
}

PROBE = textwrap.dedent(
    """
    import json, warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import ptdcore
        names = ptdcore.list_backends()
        chosen = ptdcore.get_backend("pybind11")
        from ptdcore.coalescent import kingman_graph
        out = chosen.compute_pmf_and_moments(kingman_graph(4).structure(), [[1.0]], [1.0], 1)
    print(json.dumps({
        "names": names,
        "pybind11_class": type(chosen).__module__,
        "pmf": float(out.pmf[0, 0]),
        "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
    }))
    """
)


def install(tmp_path, name, source):
    """A real (if minimal) installed distribution with a ``ptdcore`` entry point."""
    module = f"ptd_broken_{name}"
    (tmp_path / f"{module}.py").write_text(source)
    dist = tmp_path / f"ptd_broken_{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: ptd-broken-{name.replace('_', '-')}\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(f"[ptdcore]\n{name} = {module}\n")


def probe(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tmp_path) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PTDCORE_BACKEND", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(BROKEN))
def test_each_broken_plugin_is_a_warning_naming_it(tmp_path, name):
    install(tmp_path, name, BROKEN[name])
    result = probe(tmp_path)
    assert any(repr(name) in w for w in result["warnings"]), result["warnings"]
    assert {"pybind11", "cffi", "reference"} <= set(result["names"])
    assert result["pybind11_class"] == "ptdcore_backends.pybind11"  # the built-in wins
    assert result["pmf"] > 0


def test_all_broken_plugins_at_once(tmp_path):
    for name, source in BROKEN.items():
        install(tmp_path, name, source)
    result = probe(tmp_path)
    for name in BROKEN:
        assert any(repr(name) in w for w in result["warnings"]), (name, result["warnings"])
    assert {"pybind11", "cffi", "reference"} <= set(result["names"])
    assert "lonely" not in result["names"] and "imposter" not in result["names"]
