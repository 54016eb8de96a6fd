"""The pybind11 backend: a prepared model object, GIL released, rows in parallel threads."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ptdcore.structure import Structure


@lru_cache(maxsize=64)
def prepare(structure: Structure):
    """The engine's prepared model for ``structure`` (built once, cached by content hash)."""
    from . import _core

    s = structure
    return _core.PreparedModel(
        s.nr_states,
        s.nr_params,
        s.discrete,
        s.alpha,
        s.src,
        s.dst,
        s.constant,
        s.coef_ptr,
        s.coef_index,
        s.coef_value,
        s.rewards,
    )
