"""ptdcore: phase-type distributions with exact densities, moments and gradients."""

from __future__ import annotations

from .graph import Graph
from .structure import Structure

__version__ = "0.1.0"

__all__ = ["Graph", "Structure", "__version__"]
