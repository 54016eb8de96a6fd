"""The numerical tolerances of model validation, in one place.

The engine's copy is ``cpp/include/ptdcore/tolerances.hpp``; ``tests/test_validation_path.py``
reads that header and fails if the two ever differ.
"""

from __future__ import annotations

ALPHA_SUM_TOLERANCE = 1e-12
"""alpha may sum to at most ``1 + ALPHA_SUM_TOLERANCE``."""

DISCRETE_SUM_TOLERANCE = 1e-12
"""A discrete state's out-probabilities may sum to at most ``1 + DISCRETE_SUM_TOLERANCE``
(checked on the constant edges when the model is built, and at each theta by the engine)."""

LEVEL_RATE_TOLERANCE = 1e-12
"""Relative tolerance when the engine compares the out-rate forms of one level (levels.hpp)."""
