"""The old API in one place, for one release: each use warns once with the same
``DeprecationWarning`` naming its replacement.

- Module paths that moved when the package got its floors: ``ptdcore.svgd``,
  ``ptdcore.svgd_core``, ``ptdcore.svgd_sharding``, ``ptdcore.mle``, ``ptdcore.plots``
  (now in :mod:`ptdcore.inference`), ``ptdcore.demo`` and ``ptdcore.bench`` (now in
  :mod:`ptdcore.cli`). ``import ptdcore.svgd`` gives the new module itself.
- The seed's functions on ``Graph``: ``Graph.pmf_and_moments_from_graph``,
  ``Graph.pmf_from_graph`` and ``Graph.moments_from_graph`` (and their keyword
  ``use_pybind11``), which :func:`ptdcore.model` replaces.

:func:`install` runs once when ``ptdcore`` is imported; it imports neither JAX nor a
backend.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Any

from .errors import ModelError
from .graph import Graph

MOVED_MODULES = {
    "ptdcore.svgd": "ptdcore.inference.svgd",
    "ptdcore.svgd_core": "ptdcore.inference.svgd_core",
    "ptdcore.svgd_sharding": "ptdcore.inference.sharding",
    "ptdcore.mle": "ptdcore.inference.mle",
    "ptdcore.plots": "ptdcore.inference.plots",
    "ptdcore.demo": "ptdcore.cli.demo",
    "ptdcore.bench": "ptdcore.cli.bench",
}
"""Old module path -> new one (removed in the release after next)."""


def deprecated(old: str, new: str) -> None:
    """The one deprecation warning of the old API."""
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; use {new}",
        DeprecationWarning,
        stacklevel=3,
    )


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old module paths of :data:`MOVED_MODULES` (and nothing else) and
    returns the new module under the old name."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> Any:
        new = MOVED_MODULES[spec.name]
        deprecated(f"the module {spec.name}", new)
        module = importlib.import_module(new)
        spec.loader_state = module.__spec__  # (the import system replaces it next)
        return module

    def exec_module(self, module: Any) -> None:
        """The new module is already executed; give it back its own spec (the import
        system set the old name's), so that its relative imports keep working."""
        module.__spec__ = module.__spec__.loader_state


def _backend(backend: Any, use_pybind11: bool | None) -> Any:
    """The old keyword ``use_pybind11=False`` selects the legacy backend."""
    if use_pybind11 is None or backend is not None:
        return backend
    return "pybind11" if use_pybind11 else "legacy"


def _check_discrete(graph: Graph, discrete: bool) -> None:
    if bool(discrete) != graph.discrete:
        kind = "discrete" if graph.discrete else "continuous"
        raise ModelError(
            f"discrete={discrete} but the graph is {kind}; build the graph with "
            f"discrete={bool(discrete)} (the model type comes from the graph)"
        )


def pmf_and_moments_from_graph(
    graph: Graph,
    nr_moments: int = 2,
    discrete: bool = False,
    backend: Any = None,
    use_pybind11: bool | None = None,
) -> Any:
    """Old API: ``model(theta, times) -> (pmf, moments)``; see :func:`ptdcore.model`."""
    from .jax_model import model

    deprecated("Graph.pmf_and_moments_from_graph", "ptdcore.model(graph, nr_moments)")
    _check_discrete(graph, discrete)
    return model(graph, nr_moments=nr_moments, backend=_backend(backend, use_pybind11))


def pmf_from_graph(
    graph: Graph, discrete: bool = False, backend: Any = None, use_pybind11: bool | None = None
) -> Any:
    """Old API: ``pmf_fn(theta, times) -> pmf``."""
    from .jax_model import model

    deprecated("Graph.pmf_from_graph", "ptdcore.model(graph, nr_moments=0)")
    _check_discrete(graph, discrete)
    m = model(graph, nr_moments=0, backend=_backend(backend, use_pybind11))

    def pmf_fn(theta: Any, times: Any) -> Any:
        return m(theta, times)[0]

    pmf_fn.backend = m.backend  # type: ignore[attr-defined]
    return pmf_fn


def moments_from_graph(
    graph: Graph, nr_moments: int = 2, backend: Any = None, use_pybind11: bool | None = None
) -> Any:
    """Old API: ``moments_fn(theta) -> moments``."""
    import jax.numpy as jnp

    from .jax_model import model

    deprecated("Graph.moments_from_graph", "ptdcore.model(graph, nr_moments)")
    m = model(graph, nr_moments=nr_moments, backend=_backend(backend, use_pybind11))

    def moments_fn(theta: Any) -> Any:
        return m(theta, jnp.zeros(0))[1]

    moments_fn.backend = m.backend  # type: ignore[attr-defined]
    return moments_fn


def install() -> None:
    """Attach the old functions to ``Graph`` and serve the old module paths (once)."""
    Graph.pmf_and_moments_from_graph = staticmethod(pmf_and_moments_from_graph)  # type: ignore[attr-defined]
    Graph.pmf_from_graph = staticmethod(pmf_from_graph)  # type: ignore[attr-defined]
    Graph.moments_from_graph = staticmethod(moments_from_graph)  # type: ignore[attr-defined]
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
