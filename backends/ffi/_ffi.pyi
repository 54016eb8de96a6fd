"""ptdcore XLA FFI handlers (type stubs for the compiled module)."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ptdcore.structure import Structure

def registrations() -> dict[str, Any]:
    """CPU handler capsules by XLA target name."""

def registrations_cuda() -> dict[str, Any]:
    """CUDA handler capsules (empty unless built with -DPTDCORE_BUILD_CUDA=ON)."""

class ModelHandle:
    """Owner of a registered model: calls with its id work while a handle lives."""

    @property
    def id(self) -> int: ...
    @property
    def content_hash(self) -> str: ...

def register_model(structure: Structure) -> ModelHandle:
    """Register a structure; the same id for the same content hash while it is owned."""

def live_models() -> int:
    """How many registered models are still owned."""

def evaluate_into(
    model_id: int,
    content_hash: str,
    theta: npt.ArrayLike,
    times: npt.ArrayLike,
    nr_moments: int,
    outputs: Sequence[npt.NDArray[np.float64]],
) -> None:
    """Evaluate a registered model outside XLA into 2, 4 or 6 preallocated arrays."""
