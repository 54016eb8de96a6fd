"""ptdcore's exception family.

Every error ptdcore raises on purpose derives from :class:`PtdcoreError` and also
from the built-in type a user would catch without knowing ptdcore (``ValueError``
for bad input, ``RuntimeError`` for a failure while computing), so ``except
ValueError`` keeps working and ``except ptdcore.PtdcoreError`` catches them all.
"""

from __future__ import annotations


class PtdcoreError(Exception):
    """Base class of every error ptdcore raises on purpose."""


class ModelError(PtdcoreError, ValueError):
    """The model or its arguments are invalid (names the edge, state, value or shape)."""


class BackendError(PtdcoreError, RuntimeError):
    """A backend cannot load or failed while computing (names the backend and the reason)."""
