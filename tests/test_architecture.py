"""The package's shape: floors that import only downward, no import circles (in
``ptdcore`` and in the backends), no backend package imported by the core, side-effect-free
discovery, one error family, one version, and the engine's persistent thread pool (reused,
and safe across fork)."""

from __future__ import annotations

import ast
import multiprocessing
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import ptdcore_backends
import pytest

import ptdcore
from ptdcore.coalescent import kingman_graph

PACKAGE = Path(ptdcore.__file__).parent
BACKENDS = Path(ptdcore_backends.__file__).parent
NATIVE = ["ffi", "pybind11", "cffi", "legacy"]

FLOORS = {
    "description": [
        "ptdcore.errors", "ptdcore.tolerances", "ptdcore.validation", "ptdcore.frontier",
        "ptdcore.structure", "ptdcore.graph", "ptdcore.coalescent",
    ],
    "machine": [
        "ptdcore.float64", "ptdcore.results", "ptdcore.callback_adapter", "ptdcore.backend",
        "ptdcore.hookspecs", "ptdcore.registry", "ptdcore.quantile", "ptdcore.jax_model",
        "ptdcore.reward_matrix",
    ],
    "applications": ["ptdcore.inference", "ptdcore.testing", "ptdcore.demography", "ptdcore.sfs"],
    "tools": ["ptdcore.cli", "ptdcore._compat"],
    "package": ["ptdcore"],
}  # fmt: skip
"""Each module (or package, with its submodules) imports only from its own floor and the
floors below; the backends import only the description and the machine."""
ORDER = list(FLOORS)


def _floor(module: str) -> int:
    best = None
    for rank, floor in enumerate(ORDER):
        for prefix in FLOORS[floor]:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    if best is None:
        pytest.fail(f"{module} is on no floor: add it to FLOORS in tests/test_architecture.py")
    return best[0]


def _module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    if root is BACKENDS:
        parts = ("ptdcore_backends", *parts[1:])
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _all_imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module name imported anywhere in ``path`` (top level, lazy, TYPE_CHECKING),
    relative imports resolved."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _imports(path: Path, modules: set[str], root: Path = PACKAGE) -> set[str]:
    """Submodules of the package at ``root`` imported anywhere in ``path``."""
    name = _module_name(path, root)
    top = root.name if root is PACKAGE else "ptdcore_backends"
    found = {m if m in modules else m.rsplit(".", 1)[0] for m in _all_imports(path, root)}
    return {m for m in found if m in modules and m not in (name, top)}


def _packages() -> list[tuple[Path, dict[str, Path]]]:
    return [
        (root, {_module_name(p, root): p for p in root.rglob("*.py")})
        for root in (PACKAGE, BACKENDS)
    ]


@pytest.mark.parametrize("root", [PACKAGE, BACKENDS], ids=["ptdcore", "backends"])
def test_no_import_circles(root):
    paths = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph = {m: _imports(p, set(paths), root) for m, p in paths.items()}
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


def test_imports_run_down_the_floors_only():
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    upward = []
    for m, p in sorted(paths.items()):
        for dep in sorted(_imports(p, set(paths))):
            if _floor(dep) > _floor(m):
                upward.append(f"{m} ({ORDER[_floor(m)]}) imports {dep} ({ORDER[_floor(dep)]})")
    assert not upward, "imports up the floors:\n" + "\n".join(upward)


def test_the_core_imports_no_backend_package_and_backends_no_application():
    """ptdcore reaches backends through the registry (entry points) only; backends use
    the description and the machine, never inference, testing or the command line."""
    direct = [
        f"{_module_name(p)} imports {dep}"
        for p in PACKAGE.rglob("*.py")
        for dep in sorted(_all_imports(p))
        if dep == "ptdcore_backends" or dep.startswith("ptdcore_backends.")
    ]
    assert not direct, "\n".join(direct)
    machine = ORDER.index("machine")
    too_high = [
        f"{_module_name(p, BACKENDS)} imports {dep}"
        for p in BACKENDS.rglob("*.py")
        for dep in sorted(_all_imports(p, BACKENDS))
        if dep.startswith("ptdcore.") and _floor(dep) > machine
    ]
    assert not too_high, "\n".join(too_high)


def test_the_guard_catches_an_upward_import(tmp_path):
    """The floor check can fail: a description module importing the JAX model is caught."""
    fake = tmp_path / "ptdcore" / "graph.py"
    fake.parent.mkdir()
    fake.write_text("from .jax_model import model\n")
    deps = _imports(fake, {"ptdcore.graph", "ptdcore.jax_model"}, fake.parent)
    assert deps == {"ptdcore.jax_model"}
    assert _floor("ptdcore.jax_model") > _floor("ptdcore.graph")


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
