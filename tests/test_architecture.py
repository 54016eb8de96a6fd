"""The package's shape: no import circles, side-effect-free discovery, one error family,
one version, and the engine's persistent thread pool (reused, and safe across fork)."""

from __future__ import annotations

import ast
import multiprocessing
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import ptdcore
from ptdcore.coalescent import kingman_graph

PACKAGE = Path(ptdcore.__file__).parent
NATIVE = ["ffi", "pybind11", "cffi", "legacy"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """ptdcore submodules imported anywhere in ``path`` (top level, lazy, TYPE_CHECKING)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in modules else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m not in (name, "ptdcore")}


def test_no_import_circles():
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: _imports(p, set(paths)) for m, p in paths.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for dep in sorted(graph[m]):
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :] + [dep]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, path + [dep])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def _fresh(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_listing_backends_imports_no_jax_and_registers_nothing():
    out = _fresh(
        "import sys, ptdcore; names = ptdcore.list_backends(); "
        "print(','.join(names), 'jax' in sys.modules, 'ptdcore_backends.ffi._ffi' in sys.modules)"
    )
    names, jax_loaded, ffi_loaded = out.split()
    assert set(NATIVE) <= set(names.split(",")) and "reference" in names
    assert jax_loaded == "False" and ffi_loaded == "False"


def test_version_has_one_source():
    assert ptdcore.__version__ == metadata.version("ptdcore")


@pytest.mark.parametrize("name", NATIVE)
def test_native_backends_share_one_flow_and_error_family(name):
    backend = ptdcore.get_backend(name)
    assert isinstance(backend, ptdcore.backend.NativeBackend)
    s = kingman_graph(3).structure()
    with pytest.raises(ptdcore.ModelError, match=r"theta must have shape \(B, 1\)"):
        backend.compute_pmf_and_moments(s, np.ones((2, 3)), np.ones(2), 1)
    with pytest.raises(ValueError):  # the family also derives from the built-in types
        backend.compute_pmf_and_moments(s, np.ones((2, 1)), np.ones((2, 2)), 1)
    assert backend.prepared(s) is backend.prepared(s)  # prepared once, cached


def _evaluate_in_child(queue):
    backend = ptdcore.get_backend("pybind11")
    s = kingman_graph(6).structure()
    pmf, _ = backend.compute_pmf_and_moments(s, np.linspace(0.5, 2, 64)[:, None], [0.5, 1.0], 1)
    queue.put(pmf)


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
@pytest.mark.filterwarnings("ignore:.*fork.*:RuntimeWarning", "ignore:.*fork.*:DeprecationWarning")
def test_engine_pool_is_reused_and_survives_fork():
    backend = ptdcore.get_backend("pybind11")
    s = kingman_graph(6).structure()
    theta = np.linspace(0.5, 2, 64)[:, None]
    first = backend.compute_pmf_and_moments(s, theta, [0.5, 1.0], 1).pmf  # starts the pool
    for _ in range(20):  # many calls on the same pool threads give the same numbers
        np.testing.assert_array_equal(
            backend.compute_pmf_and_moments(s, theta, [0.5, 1.0], 1).pmf, first
        )
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_evaluate_in_child, args=(queue,))
    child.start()
    result = queue.get(timeout=120)
    child.join(timeout=120)
    assert child.exitcode == 0
    np.testing.assert_array_equal(result, first)


@pytest.mark.parametrize("name", NATIVE + ["reference"])
def test_eager_and_traced_calls_agree(name):
    """One behaviour whether or not the call is traced: same numbers, NaN for an invalid
    theta in both, the same error for invalid concrete times in both."""
    import warnings

    import jax

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # legacy
        m = ptdcore.model(kingman_graph(4), nr_moments=2, backend=name)
    times = np.array([0.3, 1.0, 2.5])
    for theta in (np.array([0.7]), np.array([-1.0])):
        eager = m(theta, times)
        traced = jax.jit(m)(theta, times)
        for a, b in zip(eager, traced, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-14, equal_nan=True)
    assert np.all(np.isnan(np.asarray(m(np.array([-1.0]), times)[0])))
    bad = np.array([0.3, -1.0])
    with pytest.raises(ValueError, match="times must be finite and >= 0"):
        m(np.array([0.7]), bad)
    with pytest.raises(ValueError, match="times must be finite and >= 0"):
        jax.jit(lambda th: m(th, bad))(np.array([0.7]))
