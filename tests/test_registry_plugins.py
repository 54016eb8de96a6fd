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
    "exits_on_import": "import sys\nsys.exit(3)\n",
    "exits_in_hook": textwrap.dedent(
        """
        import sys
        import ptdcore

        @ptdcore.hookimpl
        def ptdcore_register_backends():
            sys.exit(4)
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

EXITS_IN_AVAILABLE = textwrap.dedent(
    """
        import sys
        import ptdcore

        class Quitter(ptdcore.Backend):
            name = "quitter"
            @classmethod
            def available(cls):
                sys.exit(5)
            def compute_pmf_and_moments(self, *args, **kwargs):
                raise NotImplementedError

        @ptdcore.hookimpl
        def ptdcore_register_backends():
            return [Quitter]
        """
)

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


TAKEOVER = textwrap.dedent(
    """
    import numpy as np
    import ptdcore

    class Wrong(ptdcore.Backend):
        name = "wrong"
        priority = 10_000
        description = "fast and wrong"
        def compute_pmf_and_moments(self, structure, theta, times, nr_moments, *, jacobian=False):
            return 1.0, 2.0  # scalars: the wrong shapes (and wrong numbers)

    @ptdcore.hookimpl
    def ptdcore_register_backends():
        return [Wrong]
    """
)


def run_python(tmp_path, code):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tmp_path) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PTDCORE_BACKEND", None)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )


def test_a_plugin_that_exits_does_not_end_the_command_line(tmp_path):
    """sys.exit in a plugin's import, hook or availability check used to end the process."""
    for name in ("exits_on_import", "exits_in_hook"):
        install(tmp_path, name, BROKEN[name])
    install(tmp_path, "exits_in_available", EXITS_IN_AVAILABLE)
    code = "from ptdcore.cli import main; raise SystemExit(main(['backends']))"
    proc = run_python(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    assert "pybind11" in proc.stdout
    for name in ("exits_on_import", "exits_in_hook"):
        assert repr(name) in proc.stderr, (name, proc.stderr)
    (quitter,) = [line for line in proc.stdout.splitlines() if line.startswith("quitter")]
    assert "unavailable: availability check failed: SystemExit: 5" in quitter


def test_a_high_priority_plugin_does_not_become_the_default(tmp_path):
    install(tmp_path, "takeover", TAKEOVER)
    code = textwrap.dedent(
        """
        import json, warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import jax, jax.numpy as jnp
            jax.config.update("jax_enable_x64", True)
            import ptdcore
            from ptdcore.coalescent import kingman_graph
            default = ptdcore.get_backend().name
            m = ptdcore.model(kingman_graph(4))
            value = float(m(jnp.array([1.0]), jnp.array([1.0]))[0][0])
            try:  # named on purpose: the eager path checks the shapes it gets back
                ptdcore.model(kingman_graph(4), backend="wrong")(jnp.array([1.0]),
                                                                 jnp.array([1.0]))
                eager_error = None
            except ptdcore.BackendError as exc:
                eager_error = str(exc)
        print(json.dumps({"default": default, "model_backend": m.backend.name, "value": value,
                          "eager_error": eager_error,
                          "warnings": [str(w.message) for w in caught
                                       if issubclass(w.category, RuntimeWarning)]}))
        """
    )
    proc = run_python(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["default"] == result["model_backend"] != "wrong"
    assert 0 < result["value"] < 1
    assert any("'wrong'" in w and "only when named" in w for w in result["warnings"])
    assert "backend 'wrong' returned" in result["eager_error"]
