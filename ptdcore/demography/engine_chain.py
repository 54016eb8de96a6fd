"""The block-counting chain on the engine: sparse, with epochs, for models whose events
only relabel lineages.

A split or a branch moves every lineage of a deme into one ancestor. Instead of mapping
the state at that time, the lineages keep their deme as a *label* and the label follows
its deme's ancestry: two lineages whose labels lead to the same living deme coalesce at
its pair rate, a label migrates along the routes of the deme it leads to. The chain then
keeps one state space through time, its rates linear in

    theta = (a rate per pair of labels, a rate per route from a label to a deme),

one row per interval (the pair rate ``1 / (ploidy N)`` where both labels lead to the same
deme of size N, else 0; a route's rate where the deme its label leads to has it, else 0),
and the expected branch lengths are the engine's reward means over epochs
(``ptdcore.reward_moments``, breaks at the event times): a transposed solve per epoch
through the engine's strongly connected blocks (the states that differ only in where
lineages are), never a dense matrix. The rewards depend on the lineages' types, not their
labels, so the SFS is exact. Memory grows with the edges: two demes at 10 + 10 (24,840
pooled states) take milliseconds where the dense chain cannot be stored. A pulse or an
admixture (a lineage goes to one of several demes at random) is not a relabelling: those
models stay dense.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..structure import Structure
from .lineages import State, StateIndex, initial_state, merges, migrations, reward_matrix
from .schedule import Schedule


def relabels_only(sched: Schedule) -> bool:
    """True where every event moves all the lineages of a deme into one ancestor (splits,
    branches) or moves none (size and migration changes): no pulse, no admixture."""
    return all(
        len(move.targets) == 1 and not move.stay and tuple(move.prob) == (-1,)
        for moves in sched.events
        for move in moves
    )


def deme_of_label(sched: Schedule) -> np.ndarray:
    """(intervals x demes): the deme that holds the lineages of each label in each
    interval (a label follows its deme's splits and branches into the ancestors)."""
    leads = np.arange(len(sched.demes))
    out = [leads.copy()]
    for moves in sched.events:
        for move in moves:
            leads[leads == move.deme] = move.targets[0]
        out.append(leads.copy())
    return np.array(out[: len(sched.intervals)])


class EngineChain:
    """The SFS chain of a relabelling schedule on the engine.

    ``means(v)`` and ``moments(v)`` are JAX functions of the model's values ``v``: exact
    first derivatives from the engine; second ones from the engine with one interval, from
    the reference backend's algorithm over epochs (up to its 300 states, beyond which
    ``jax.hessian`` raises ``NotImplementedError`` naming the limit).

    Parameters
    ----------
    sched : Schedule
        Events that relabel only (:func:`relabels_only`).
    counts : numpy.ndarray
        Sampled genomes per deme.
    types : {"pooled", "joint"}
        Lineage types (``ptdcore.demography.lineages.TYPES``).
    shape : tuple of int
        The SFS's shape (``(n + 1,)`` pooled; ``(n_i + 1, ...)`` joint).
    ploidy : int
    max_states : int
        Refuse (``MemoryError``) beyond this many states.
    """

    def __init__(self, sched: Schedule, counts: np.ndarray, types: str,
                 shape: tuple[int, ...], ploidy: int, max_states: int) -> None:  # fmt: skip
        if not relabels_only(sched):
            raise ValueError("the engine's chain needs a schedule whose events only relabel")
        self.schedule, self.ploidy = sched, ploidy
        leads = deme_of_label(sched)
        labels = range(len(sched.demes))
        routes = sorted({(d, b) for k, iv in enumerate(sched.intervals) for a, b, _ in iv.migration
                         for d in labels if leads[k, d] == a})  # fmt: skip
        candidates = [(a, b) for a in labels for b in labels if a <= b]
        index, kind = _slot_values(sched, leads, candidates, routes)
        # only the label pairs that meet in a living deme in some interval are explored
        meets = kind[:, : len(candidates)].any(axis=0)
        pairs = [p for p, m in zip(candidates, meets, strict=True) if m]
        keep = np.r_[np.flatnonzero(meets), len(candidates) + np.arange(len(routes))]
        index, kind = index[:, keep], kind[:, keep]
        states, edges = _explore(initial_state(counts, types), pairs, routes, max_states, sched,
                                 counts, types)  # fmt: skip
        keys = np.array(list(edges), dtype=np.int64).reshape(-1, 3)
        new = _banded_numbering(len(states), keys, first_route=len(pairs))
        keys[:, 0] = new[keys[:, 0]]
        keys[:, 1] = np.where(keys[:, 1] >= 0, new[keys[:, 1]], -1)
        order = np.argsort(new)
        self.states = states = [states[i] for i in order]
        # only the slots some edge uses are engine parameters (each costs a tangent)
        used, slot = np.unique(keys[:, 2], return_inverse=True)
        self._fill = index[:, used], kind[:, used]
        alpha = np.zeros(len(states))
        alpha[new[0]] = 1.0  # (the sample's state, found first)
        self.structure = Structure(
            nr_states=len(states), nr_params=used.size, discrete=False,
            alpha=alpha, src=keys[:, 0], dst=keys[:, 1], constant=np.zeros(len(keys)),
            coef_ptr=np.arange(len(keys) + 1), coef_index=slot.reshape(-1),
            coef_value=np.array(list(edges.values()), dtype=np.float64),
        )  # fmt: skip
        self.R = reward_matrix(states, shape)
        self._moments: Any = None

    @property
    def size(self) -> int:
        return len(self.states)

    def _rows(self, v: Any) -> tuple[Any, Any]:
        """(theta (intervals, slots), breaks) at the values ``v``."""
        import jax.numpy as jnp

        index, kind = self._fill
        x = v[index]
        pair_rate = 1.0 / (self.ploidy * jnp.where(kind == 1, x, 1.0))
        rows = jnp.where(kind == 1, pair_rate, jnp.where(kind == 2, x, 0.0))
        return rows, v[np.array(self.schedule.times, dtype=np.int64)]

    def _reward_moments(self) -> Any:
        if self._moments is None:
            from ..reward_matrix import reward_moments

            self._moments = reward_moments(
                self.structure, self.R, epochs=len(self.schedule.intervals)
            )
        return self._moments

    def means(self, v: Any) -> Any:
        """E[Y_j] for every column of R (one transposed solve per interval)."""
        rows, breaks = self._rows(v)
        rm = self._reward_moments()
        return rm.mean(rows[0]) if rm.epochs == 1 else rm.mean(rows, breaks)

    def moments(self, v: Any) -> tuple[Any, Any]:
        """(E[Y_j], E[Y_i Y_j])."""
        rows, breaks = self._rows(v)
        rm = self._reward_moments()
        return rm(rows[0]) if rm.epochs == 1 else rm(rows, breaks)


def _slot_values(sched: Schedule, leads: np.ndarray, pairs: list[tuple[int, int]],
                 routes: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(value index, kind), each (intervals x slots), the slots being the label pairs then
    the label routes: kind 1 a size (the pair rate where both labels lead to that living
    deme), 2 a migration rate (where the deme the label leads to has the route), 0 closed."""
    index = np.zeros((len(sched.intervals), len(pairs) + len(routes)), dtype=np.int64)
    kind = np.zeros_like(index)
    for k, iv in enumerate(sched.intervals):
        lead = leads[k]
        for s, (a, b) in enumerate(pairs):
            if lead[a] == lead[b] and lead[a] in iv.size:
                index[k, s], kind[k, s] = iv.size[lead[a]], 1
        rate = {(a, b): idx for a, b, idx in iv.migration}
        for s, (d, b) in enumerate(routes, start=len(pairs)):
            if (lead[d], b) in rate:
                index[k, s], kind[k, s] = rate[lead[d], b], 2
    return index, kind


def _banded_numbering(n: int, keys: np.ndarray, first_route: int) -> np.ndarray:
    """A new number for each state: the states that migration connects (a strongly
    connected block for the engine's solver) numbered together in reverse Cuthill-McKee
    order, so that each block's matrix is banded and its elimination touches little
    beyond the band."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    moves = keys[keys[:, 2] >= first_route]
    adjacency = coo_matrix(
        (
            np.ones(2 * len(moves)),
            (np.r_[moves[:, 0], moves[:, 1]], np.r_[moves[:, 1], moves[:, 0]]),
        ),
        shape=(n, n),
    ).tocsr()
    order = reverse_cuthill_mckee(adjacency, symmetric_mode=True)
    new = np.empty(n, dtype=np.int64)
    new[order] = np.arange(n)
    return new


def _explore(start: State, pairs: list[tuple[int, int]], routes: list[tuple[int, int]],
             max_states: int, sched: Schedule, counts: np.ndarray,
             types: str) -> tuple[list[State], dict[tuple[int, int, int], float]]:  # fmt: skip
    """Every state the sample reaches under any interval's moves, and the edges
    ``(src, dst, slot) -> multiplicity`` (dst -1: one lineage left, the end)."""
    slot_of_pair = {p: s for s, p in enumerate(pairs)}
    label_routes = tuple((d, b, len(pairs) + s) for s, (d, b) in enumerate(routes))
    numbering = StateIndex(sched, counts, types, max_states)
    states, add, edges = numbering.states, numbering.add, {}
    add(start)
    i = 0
    while i < len(states):
        s = states[i]
        for nxt, count, a, b in merges(s):
            if (a, b) in slot_of_pair:
                j = -1 if sum(c for _, _, c in nxt) == 1 else add(nxt)
                key = (i, j, slot_of_pair[a, b])
                edges[key] = edges.get(key, 0.0) + count
        for nxt, count, slot in migrations(s, label_routes):
            key = (i, add(nxt), slot)
            edges[key] = edges.get(key, 0.0) + count
        i += 1
    return states, edges
