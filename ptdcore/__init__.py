"""ptdcore: phase-type distributions with exact densities, moments and gradients.

Heavy dependencies (JAX, the compiled backends) load on first use.

The package has three floors, each importing only from its own floor and below
(``tests/test_architecture.py`` keeps it so):

- the model description: ``errors``, ``tolerances``, ``validation``, ``frontier``,
  ``structure``, ``graph``, ``coalescent``;
- the machine: ``float64``, ``results``, ``callback_adapter``, ``backend``, ``hookspecs``,
  ``registry``, ``quantile``, ``jax_model``, ``reward_matrix``;
- applications and tools: ``inference`` (SVGD, maximum likelihood, the shared likelihood
  layer, plots), ``demography`` (demes and msprime models to exact SFS and T_MRCA
  functions), ``sfs`` (spectra from tskit, folding, SFS likelihoods), ``testing`` (the
  equivalence suite), ``cli`` (the command line, demo, bench), and ``_compat`` (the old
  API, for one release).
"""

from __future__ import annotations

from typing import Any

from . import _compat
from .backend import Backend, Capabilities, PmfMoments, PmfMomentsJacobian
from .errors import BackendError, ModelError, PtdcoreError
from .float64 import Float64Required
from .graph import Graph
from .registry import backend_info, get_backend, list_backends, refresh_backends
from .structure import Structure

_compat.install()

__all__ = [
    "Backend",
    "BackendError",
    "ModelError",
    "PtdcoreError",
    "Capabilities",
    "Float64Required",
    "Graph",
    "Model",
    "PmfMoments",
    "PmfMomentsJacobian",
    "RewardMoments",
    "SVGD",
    "Structure",
    "__version__",
    "MLEResult",
    "backend_info",
    "fit_mle",
    "get_backend",
    "hookimpl",
    "list_backends",
    "model",
    "refresh_backends",
    "reward_moments",
]


def __getattr__(name: str) -> Any:
    if name == "hookimpl":  # pluggy loads with the first plugin, not with ptdcore
        from .hookspecs import hookimpl

        return hookimpl
    if name == "__version__":  # one source: the version in pyproject.toml
        from importlib.metadata import version

        return version("ptdcore")
    if name in ("model", "Model"):
        from . import jax_model

        return getattr(jax_model, name)
    if name == "SVGD":
        from .inference.svgd import SVGD

        return SVGD
    if name in ("reward_moments", "RewardMoments"):
        from . import reward_matrix

        return getattr(reward_matrix, name)
    if name in ("fit_mle", "MLEResult"):
        from .inference import mle

        return getattr(mle, name)
    raise AttributeError(f"module 'ptdcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    """Every public name, the lazily loaded ones included (for tab completion)."""
    return sorted(set(globals()) | set(__all__))
