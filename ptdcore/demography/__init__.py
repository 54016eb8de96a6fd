"""Demographic models as population geneticists write them (demes, msprime), as exact
JAX functions of the model's numbers: the expected joint, pooled and per-deme SFS, its
cross moments, and the T_MRCA (contract section 12).

Representation: where every lineage is always in one deme (one sampled deme, splits with
one ancestor, no migration or pulse reaching it), the chain of lineage counts (``n - 1``
states) and the Griffiths-Tavare weights; otherwise the block counts per deme (a lineage's
type is how many samples of each sampled deme it subtends). Event times join intervals
through the maps their events apply (a split moves lineages to the ancestor, a pulse
each lineage with its proportion), not through extreme rates. Where no event moves
lineages (sizes and migration rates change only), the block counts go to the engine as a
sparse model with epochs (one interval always; several beyond 5,000 states), else dense.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .model import TMRCA, Demography, from_joint, lumping_weights, pooling_matrix
from .schedule import schedule_from_demes

__all__ = [
    "Demography",
    "TMRCA",
    "from_demes",
    "from_joint",
    "from_msprime",
    "lumping_weights",
    "pooling_matrix",
]


def from_demes(model: Any, samples: dict[str, int], ploidy: int = 2,
               max_states: int | None = None) -> Demography:  # fmt: skip
    """A :class:`Demography` of a demes model and a sample.

    Parameters
    ----------
    model : demes.Graph, or str or Path of a demes YAML file
    samples : dict
        Sampled genomes (haploid lineages, as tskit sample sets count them) per deme, at
        time 0, e.g. ``{"A": 10, "B": 6}``.
    ploidy : int
        2 (default): the pair coalescence rate in a deme of size N is 1 / (2N) per
        generation (msprime's default); 1: 1 / N.
    max_states : int, optional
        Refuse to build a state space larger than this. Default: 200,000 where no event
        moves lineages (no split, branch or pulse: the engine's sparse route can take it),
        else 5,000 (dense algebra: memory grows as its square).
    """
    import demes

    if isinstance(model, (str, Path)):
        model = demes.load(model)
    if not isinstance(model, demes.Graph):
        raise TypeError(f"model is {type(model).__name__}; expected a demes.Graph or a YAML path")
    return Demography(schedule_from_demes(model), samples, ploidy=ploidy, max_states=max_states)


def from_msprime(demography: Any, samples: dict[str, int], ploidy: int = 2,
                 max_states: int | None = None) -> Demography:  # fmt: skip
    """A :class:`Demography` of an ``msprime.Demography`` (through its demes form)."""
    return from_demes(demography.to_demes(), samples, ploidy=ploidy, max_states=max_states)
