"""The states of a sample's lineages under a schedule, and the structure of the chain:
which state moves to which, at what rate (a coalescence in a deme, a migration) and, at
an event time, with what probability.

A state is a sorted tuple of ``(deme, type, count)``. A lineage's type is what the
wanted output needs to know of it (:data:`TYPES`): the number of sampled genomes of each
sampled deme it subtends (``"joint"``, the joint SFS's index), their total (``"pooled"``),
or nothing (``"count"``: the T_MRCA, and the lumped single-deme SFS). The
chain ends (exits) when one lineage is left.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .schedule import Move, Schedule

State = tuple[tuple[int, tuple[int, ...], int], ...]
TYPES = ("count", "pooled", "joint")


@dataclass
class Structure:
    """The chain's states and, per interval and event time, its moves as index arrays."""

    states: list[State]
    # per interval, in its own numbering (of ``active``): coalescence (src, dst, pairs,
    # size index), dst = -1 the exit; migration (src, dst, lineages, rate index)
    coalescence: list[np.ndarray] = field(default_factory=list)
    migration: list[np.ndarray] = field(default_factory=list)
    active: list[np.ndarray] = field(default_factory=list)  # per interval: its states
    # per event time, per move (global numbering): (src, dst, multinomial coefficient),
    # exponents (one per target, and one for staying), the move
    maps: list[list[tuple[np.ndarray, np.ndarray, Move]]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.states)


def _make(counter: Counter) -> State:
    return tuple(sorted((d, t, c) for (d, t), c in counter.items() if c > 0))


def _lineages(state: State) -> int:
    return sum(c for _, _, c in state)


def merges(state: State):
    """(next state, number of pairs, label of each) for every coalescence of two lineages,
    whatever demes they are in (the merged lineage takes the lower label)."""
    for a, b in itertools.combinations_with_replacement(range(len(state)), 2):
        (d1, t1, c1), (d2, t2, c2) = state[a], state[b]
        pairs = c1 * (c1 - 1) // 2 if a == b else c1 * c2
        if pairs == 0:
            continue
        counter = Counter({(d, t): c for d, t, c in state})
        counter[d1, t1] -= 1
        counter[d2, t2] -= 1
        counter[min(d1, d2), tuple(x + y for x, y in zip(t1, t2, strict=True))] += 1
        yield _make(counter), pairs, d1, d2


def _coalescences(state: State, alive: tuple[int, ...]):
    """(next state, number of pairs, deme) for each coalescence within a living deme."""
    for nxt, pairs, d1, d2 in merges(state):
        if d1 == d2 and d1 in alive:
            yield nxt, pairs, d1


def migrations(state: State, routes: tuple[tuple[int, int, int], ...]):
    """(next state, lineages, rate index) for each migration."""
    for d, t, c in state:
        for src, dst, rate in routes:
            if src == d:
                counter = Counter({(e, u): k for e, u, k in state})
                counter[d, t] -= 1
                counter[dst, t] += 1
                yield _make(counter), c, rate


def _moves(state: State, move: Move):
    """(next state, probability coefficient, exponents) of one event's move."""
    targets = list(move.targets) + ([move.deme] if move.stay else [])
    moving = [(t, c) for d, t, c in state if d == move.deme]
    rest = Counter({(d, t): c for d, t, c in state if d != move.deme})
    if not moving:
        yield state, 1.0, np.zeros(len(targets), dtype=np.int64)
        return
    splits = [list(_compositions(c, len(targets))) for _, c in moving]
    for choice in itertools.product(*splits):
        counter = Counter(rest)
        coef, exps = 1.0, np.zeros(len(targets), dtype=np.int64)
        for (t, c), parts in zip(moving, choice, strict=True):
            coef *= math.factorial(c) / math.prod(math.factorial(p) for p in parts)
            for j, p in enumerate(parts):
                counter[targets[j], t] += p
                exps[j] += p
        yield _make(counter), coef, exps


def _compositions(total: int, parts: int):
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def initial_state(counts: np.ndarray, types: str) -> State:
    sampled = [d for d in range(len(counts)) if counts[d] > 0]
    counter: Counter = Counter()
    for s, d in enumerate(sampled):
        t = {
            "joint": tuple(int(j == s) for j in range(len(sampled))),
            "pooled": (1,),
            "count": (),
        }[types]
        counter[d, t] += int(counts[d])
    return _make(counter)


class StateIndex:
    """States numbered in the order found; ``add`` refuses (``MemoryError``) past
    ``max_states``, naming the sample and the lineage types."""

    def __init__(self, sched: Schedule, counts: np.ndarray, types: str, max_states: int) -> None:
        self.index: dict[State, int] = {}
        self.states: list[State] = []
        self._limit, self._what = max_states, (sched, counts, types)

    def add(self, s: State) -> int:
        if s not in self.index:
            if len(self.states) >= self._limit:
                sched, counts, types = self._what
                raise MemoryError(
                    f"the state space passes max_states={self._limit} (sample sizes "
                    f"{dict(zip(sched.demes, counts.tolist(), strict=True))}, lineage types "
                    f"{types!r}); raise max_states or sample fewer genomes"
                )
            self.index[s] = len(self.states)
            self.states.append(s)
        return self.index[s]


def build(sched: Schedule, counts: np.ndarray, types: str, max_states: int) -> Structure:
    """Every state the sample can reach, and the chain's moves, interval by interval."""
    numbering = StateIndex(sched, counts, types, max_states)
    index, states, add = numbering.index, numbering.states, numbering.add
    out = Structure(states)
    current = {initial_state(counts, types)}
    for k, interval in enumerate(sched.intervals):
        for s in current:
            add(s)
        coal, mig, seen, todo = [], [], set(current), list(current)
        while todo:
            s = todo.pop()
            i = index[s]
            for nxt, pairs, d in _coalescences(s, interval.alive):
                if d not in interval.size:
                    raise ValueError(f"deme {sched.demes[d]} has no size in interval {k}")
                j = -1 if _lineages(nxt) == 1 else add(nxt)
                coal.append((i, j, pairs, interval.size[d]))
                if j >= 0 and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
            for nxt, lineages, rate in migrations(s, interval.migration):
                j = add(nxt)
                mig.append((i, j, lineages, rate))
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        active = np.array(sorted(index[s] for s in seen), dtype=np.int64)
        local = {g: i for i, g in enumerate(active.tolist())} | {-1: -1}
        out.active.append(active)
        for rows, into in ((coal, out.coalescence), (mig, out.migration)):
            into.append(
                np.array(
                    [(local[a], local[b], c, r) for a, b, c, r in rows], dtype=np.int64
                ).reshape(-1, 4)
            )
        if k + 1 == len(sched.intervals):
            break
        maps = []
        for move in sched.events[k]:
            rows, exps, nxt_states = [], [], set()
            for s in seen:
                for nxt, coef, e in _moves(s, move):
                    rows.append((index[s], add(nxt), coef))
                    exps.append(e)
                    nxt_states.add(nxt)
            maps.append((np.array(rows, dtype=np.float64).reshape(-1, 3),
                         np.array(exps, dtype=np.int64).reshape(len(rows), -1), move))  # fmt: skip
            seen = nxt_states
        out.maps.append(maps)
        current = seen
    return out


def check_meeting(sched: Schedule, struct: Structure) -> None:
    """Raise where the last interval's chain can never end (lineages in demes that never
    meet again), which would make every branch length infinite."""
    last = len(sched.intervals) - 1
    edges: dict[int, list[int]] = {}
    for src, dst, *_ in np.concatenate([struct.coalescence[last], struct.migration[last]]):
        edges.setdefault(int(src), []).append(int(dst))
    ends = {int(s) for s, d, *_ in struct.coalescence[last] if d == -1}
    # states that reach the exit, found backwards
    reach_back: dict[int, list[int]] = {}
    for s, ds in edges.items():
        for d in ds:
            reach_back.setdefault(d, []).append(s)
    good, todo = set(ends), list(ends)
    while todo:
        for s in reach_back.get(todo.pop(), []):
            if s not in good:
                good.add(s)
                todo.append(s)
    for s, g in enumerate(struct.active[last].tolist()):
        if s not in good:
            demes = sorted({sched.demes[d] for d, _, _ in struct.states[g]})
            raise ValueError(
                f"lineages in demes {demes} never meet after the last event time: the model "
                "has no common ancestor (add a split or migration between them)"
            )


def reward_matrix(states: list[State], shape: tuple[int, ...]) -> np.ndarray:
    """(states x prod(shape)): the number of lineages of each type (flattened joint index)."""
    rows, types, counts = [], [], []
    for i, s in enumerate(states):
        for _, t, c in s:
            rows.append(i)
            types.append(t)
            counts.append(c)
    R = np.zeros((len(states), int(np.prod(shape))))
    if rows:
        cols = np.ravel_multi_index(np.array(types, dtype=np.int64).T, shape)
        np.add.at(R, (np.array(rows), cols), np.array(counts, dtype=np.float64))
    return R
