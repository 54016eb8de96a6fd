"""Backend discovery, precedence and error messages, with fake entry points."""

from __future__ import annotations

import sys
import textwrap
import types
import warnings
from importlib import metadata

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ptdcore
from ptdcore import registry
from ptdcore.coalescent import kingman_graph


@pytest.fixture(autouse=True)
def fresh_registry():
    ptdcore.refresh_backends()
    yield
    ptdcore.refresh_backends()


def make_module(name: str, backend_name: str, *, available=(True, ""), priority=0, base=None):
    """A plugin module providing one backend that delegates to pybind11."""
    module = types.ModuleType(name)

    class Delegate(ptdcore.Backend):
        def compute_pmf_and_moments(self, structure, theta, times, nr_moments, *, jacobian=False):
            return ptdcore.get_backend(base or "pybind11").compute_pmf_and_moments(
                structure, theta, times, nr_moments, jacobian=jacobian
            )

        @classmethod
        def available(cls):
            return available

    Delegate.name = backend_name
    Delegate.priority = priority
    Delegate.description = f"test backend from {name}"

    @ptdcore.hookimpl
    def ptdcore_register_backends():
        return [Delegate]

    module.ptdcore_register_backends = ptdcore_register_backends
    module.Delegate = Delegate
    return module


def install_fake_entry_points(monkeypatch, modules: dict[str, types.ModuleType | None]):
    """Add entry points: name -> plugin module, or None for one whose import fails."""
    real = registry._entry_points()
    fakes = []
    for ep_name, module in modules.items():
        mod_name = f"fake_ptd_plugin_{ep_name}"
        # sys.modules[name] = None makes "import name" raise ImportError.
        monkeypatch.setitem(sys.modules, mod_name, module)
        fakes.append(metadata.EntryPoint(name=ep_name, value=mod_name, group="ptdcore"))
    monkeypatch.setattr(registry, "_entry_points", lambda: real + fakes)


def test_builtins_are_discovered_through_entry_points():
    names = ptdcore.list_backends()
    assert {"legacy", "pybind11", "cffi"} <= set(names)
    eps = {ep.name: ep.value for ep in metadata.entry_points(group="ptdcore")}
    assert eps["pybind11"] == "ptdcore_backends.pybind11"
    info = {i.name: i for i in ptdcore.backend_info()}
    assert info["pybind11"].capabilities.releases_gil
    assert not info["legacy"].capabilities.releases_gil


def test_default_is_highest_priority_and_env_overrides(monkeypatch):
    monkeypatch.delenv("PTDCORE_BACKEND", raising=False)
    best = ptdcore.backend_info()[0]
    assert ptdcore.get_backend().name == best.name
    monkeypatch.setenv("PTDCORE_BACKEND", "cffi")
    assert ptdcore.get_backend().name == "cffi"
    assert ptdcore.get_backend("pybind11").name == "pybind11"  # argument beats the environment


def test_unknown_backend_error_lists_available_and_reasons(monkeypatch):
    install_fake_entry_points(
        monkeypatch, {"nope": make_module("m_nope", "nope", available=(False, "needs a GPU"))}
    )
    with pytest.raises(ValueError, match="unknown backend 'bogus'") as err:
        ptdcore.get_backend("bogus")
    assert "pybind11" in str(err.value) and "nope: unavailable (needs a GPU)" in str(err.value)
    with pytest.raises(ValueError, match="backend 'nope'.*cannot be used") as err:
        ptdcore.get_backend("nope")
    assert "needs a GPU" in str(err.value)
    monkeypatch.setenv("PTDCORE_BACKEND", "bogus")
    with pytest.raises(ValueError, match="PTDCORE_BACKEND"):
        ptdcore.get_backend()
    assert "nope" not in ptdcore.list_backends()
    assert "nope" in [i.name for i in ptdcore.backend_info()]


def test_broken_plugin_warns_and_does_not_break(monkeypatch):
    install_fake_entry_points(monkeypatch, {"broken": None})
    with pytest.warns(RuntimeWarning, match="plugin 'broken'.*failed to load"):
        names = ptdcore.list_backends()
    assert "pybind11" in names


def test_plugin_whose_hook_raises_is_skipped(monkeypatch):
    module = types.ModuleType("m_raise")

    @ptdcore.hookimpl
    def ptdcore_register_backends():
        raise RuntimeError("bad hook")

    module.ptdcore_register_backends = ptdcore_register_backends
    install_fake_entry_points(monkeypatch, {"raiser": module})
    with pytest.warns(RuntimeWarning, match="'raiser' failed to register"):
        assert "pybind11" in ptdcore.list_backends()


def test_duplicate_names_warn_and_builtin_wins(monkeypatch):
    install_fake_entry_points(
        monkeypatch, {"impostor": make_module("m_imp", "pybind11", priority=1000)}
    )
    with pytest.warns(
        RuntimeWarning, match="'pybind11' is provided by plugins 'pybind11' and 'impostor'"
    ):
        info = {i.name: i for i in ptdcore.backend_info()}
    assert info["pybind11"].plugin == "pybind11"


def test_disabled_plugins_are_skipped(monkeypatch):
    install_fake_entry_points(monkeypatch, {"extra": make_module("m_extra", "extra")})
    monkeypatch.setenv("PTDCORE_DISABLED_PLUGINS", "extra")
    assert "extra" not in ptdcore.list_backends()


def test_discovery_is_cached_until_refreshed(monkeypatch):
    first = ptdcore.list_backends()
    install_fake_entry_points(monkeypatch, {"late": make_module("m_late", "late")})
    assert ptdcore.list_backends() == first
    ptdcore.refresh_backends()
    assert "late" in ptdcore.list_backends()


def test_third_party_distribution_is_discovered_and_works_under_jax(tmp_path, monkeypatch):
    """A separately installed distribution (dist-info + entry point) adds a backend."""
    pkg = tmp_path / "ptd_thirdparty_backend.py"
    pkg.write_text(
        textwrap.dedent(
            """
            import ptdcore

            class ThirdParty(ptdcore.Backend):
                name = "thirdparty"
                description = "delegates to cffi"

                def compute_pmf_and_moments(self, structure, theta, times, nr_moments, *,
                                            jacobian=False):
                    self.calls = getattr(self, "calls", 0) + 1
                    return ptdcore.get_backend("cffi").compute_pmf_and_moments(
                        structure, theta, times, nr_moments, jacobian=jacobian)

            @ptdcore.hookimpl
            def ptdcore_register_backends():
                return [ThirdParty]
            """
        )
    )
    dist = tmp_path / "ptd_thirdparty_backend-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ptd-thirdparty-backend\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text("[ptdcore]\nthirdparty = ptd_thirdparty_backend\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ptdcore.refresh_backends()
    assert "thirdparty" in ptdcore.list_backends()
    model = ptdcore.model(kingman_graph(4), nr_moments=2, backend="thirdparty")
    reference = ptdcore.model(kingman_graph(4), nr_moments=2, backend="pybind11")
    times = jnp.array([0.5, 1.0])

    def loglik(m):
        return lambda th: jnp.sum(jnp.log(m(th, times)[0]))

    thetas = jnp.array([[0.5], [1.0], [2.0]])
    got = jax.jit(jax.vmap(jax.grad(loglik(model))))(thetas)
    want = jax.vmap(jax.grad(loglik(reference)))(thetas)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert model.backend.calls == 1  # one call for the whole vmapped batch (jvp, primal shared)


def test_non_backend_registration_warns(monkeypatch):
    module = types.ModuleType("m_junk")

    @ptdcore.hookimpl
    def ptdcore_register_backends():
        return [object]

    module.ptdcore_register_backends = ptdcore_register_backends
    install_fake_entry_points(monkeypatch, {"junk": module})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ptdcore.list_backends()
    assert any("not a named ptdcore.Backend" in str(w.message) for w in caught)


def test_a_backend_without_the_newer_arguments_keeps_working_and_says_what_it_lacks():
    """A plugin written before hessian= and output=: the density runs as before (neither
    is passed at their defaults), a cdf is refused naming the backend, and it samples
    through the best available backend that does."""
    from ptdcore.coalescent import kingman_tmrca

    old = make_module("old_plugin", "old-style").Delegate()
    m = ptdcore.model(kingman_tmrca(4), nr_moments=1, backend=old)
    times = np.array([0.5, 1.0])
    reference = ptdcore.model(kingman_tmrca(4), nr_moments=1, backend="pybind11")
    np.testing.assert_array_equal(
        m(np.array([1.2]), times)[0], reference(np.array([1.2]), times)[0]
    )
    with pytest.raises(
        NotImplementedError, match="backend 'old-style' does not evaluate output='cdf'"
    ):
        m.cdf(np.array([1.2]), times)
    assert m.sample(np.array([1.2]), 5, seed=1).shape == (5,)
