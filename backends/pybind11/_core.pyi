"""ptdcore engine bound with pybind11 (type stubs for the compiled module)."""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ptdcore.structure import Structure

class PreparedModel:
    """A validated model structure, built once, evaluated many times."""

    def __init__(self, structure: Structure) -> None: ...
    @property
    def nr_states(self) -> int: ...
    @property
    def nr_params(self) -> int: ...
    @property
    def acyclic(self) -> bool: ...
    @property
    def level_structured(self) -> bool: ...
    def evaluate_into(
        self,
        theta: npt.ArrayLike,
        times: npt.ArrayLike,
        nr_moments: int,
        outputs: Sequence[npt.NDArray[np.float64]],
        threads: int = 0,
    ) -> None: ...
    def sample(
        self, theta: npt.ArrayLike, count: int, seed: int, threads: int = 0
    ) -> npt.NDArray[np.float64]: ...
