"""A demes model as a schedule: the numbers a user may fit, and what the lineages of a
sample see between and at the model's event times (backwards in time).

Units are those of demes: generations, individuals. Between two consecutive event times
the model is constant: each living deme has a size, each active migration a rate. At an
event time, lineages move: a pulse sends each lineage of its destination to a source with
that source's proportion, and a deme's start sends its lineages to its ancestors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Move:
    """Lineages of ``deme`` move, each on its own, to ``targets[j]`` with probability
    ``values[prob[j]]`` (``prob[j] = -1``: one minus the other targets' probabilities);
    with ``stay``, a lineage may also stay (probability one minus the others)."""

    deme: int
    targets: tuple[int, ...]
    prob: tuple[int, ...]
    stay: bool
    what: str


@dataclass(frozen=True)
class Interval:
    """What holds from time variable ``start`` (-1: time 0) to ``start + 1`` (or forever)."""

    start: int
    alive: tuple[int, ...]
    size: dict[int, int]  # deme -> index of its size in the values
    migration: tuple[tuple[int, int, int], ...]  # (from deme, to deme, rate index), backwards


@dataclass
class Schedule:
    """The model's numbers and its piecewise-constant course, built from a demes graph."""

    demes: list[str]
    names: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    kinds: list[str] = field(default_factory=list)  # size, time, rate, proportion
    times: list[int] = field(default_factory=list)  # value index of each event time, in order
    intervals: list[Interval] = field(default_factory=list)
    events: list[list[Move]] = field(default_factory=list)  # at each event time, in order

    def add(self, name: str, value: float, kind: str) -> int:
        self.names.append(name)
        self.values.append(float(value))
        self.kinds.append(kind)
        return len(self.names) - 1


_TIME_ORDER = ("start_time", "pulse", "epoch", "migration")


def _unsupported(graph: Any) -> None:
    for deme in graph.demes:
        for i, epoch in enumerate(deme.epochs):
            where = f"deme {deme.name!r}, epochs[{i}]"
            if epoch.size_function != "constant" or epoch.start_size != epoch.end_size:
                raise NotImplementedError(
                    f"{where}: size function {epoch.size_function!r} (sizes "
                    f"{epoch.start_size} to {epoch.end_size}); ptdcore supports constant sizes "
                    "per epoch only (split a growth phase into steps)"
                )
            if epoch.selfing_rate or epoch.cloning_rate:
                raise NotImplementedError(f"{where}: selfing or cloning is not supported")


def schedule_from_demes(graph: Any) -> Schedule:
    """The schedule of a resolved ``demes.Graph`` (in generations)."""
    if graph.time_units != "generations":
        graph = graph.in_generations()
    _unsupported(graph)
    index = {deme.name: d for d, deme in enumerate(graph.demes)}
    sched = Schedule(demes=[deme.name for deme in graph.demes])
    size_of: dict[tuple[int, int], int] = {}
    for d, deme in enumerate(graph.demes):
        for i, epoch in enumerate(deme.epochs):
            size_of[d, i] = sched.add(
                f"{deme.name}.epochs[{i}].start_size", epoch.start_size, "size"
            )
    # every finite positive time, with the paths that hold it (preferred name first)
    paths: dict[float, list[tuple[int, str]]] = {}

    def note(time: float, rank: str, path: str) -> None:
        if 0.0 < time < math.inf:
            paths.setdefault(float(time), []).append((_TIME_ORDER.index(rank), path))

    for deme in graph.demes:
        note(deme.start_time, "start_time", f"{deme.name}.start_time")
        for i, epoch in enumerate(deme.epochs):
            note(epoch.end_time, "epoch", f"{deme.name}.epochs[{i}].end_time")
    for k, pulse in enumerate(graph.pulses):
        note(pulse.time, "pulse", f"pulses[{k}].time")
    for k, mig in enumerate(graph.migrations):
        note(mig.start_time, "migration", f"migrations[{k}].start_time")
        note(mig.end_time, "migration", f"migrations[{k}].end_time")
    ordered = sorted(paths)
    for t in ordered:
        names = tuple(p for _, p in sorted(paths[t]))
        sched.times.append(sched.add(names[0], t, "time"))
        sched.aliases[names[0]] = names
    rate_of = [
        sched.add(f"migrations[{k}].rate", m.rate, "rate") for k, m in enumerate(graph.migrations)
    ]
    pulse_probs = [
        [
            sched.add(f"pulses[{k}].proportions[{j}]", p, "proportion")
            for j, p in enumerate(pulse.proportions)
        ]
        for k, pulse in enumerate(graph.pulses)
    ]
    ancestor_probs = {
        deme.name: [
            sched.add(f"{deme.name}.proportions[{j}]", p, "proportion")
            for j, p in enumerate(deme.proportions[:-1])
        ]
        for deme in graph.demes
        if len(deme.ancestors) > 1
    }
    # the intervals: [0, t_1), [t_1, t_2), ..., [t_K, inf)
    edges = [0.0, *ordered, math.inf]
    for k in range(len(edges) - 1):
        mid = edges[k] + 1.0 if math.isinf(edges[k + 1]) else 0.5 * (edges[k] + edges[k + 1])
        alive, size = [], {}
        for d, deme in enumerate(graph.demes):
            if deme.end_time <= mid < deme.start_time:
                alive.append(d)
                for i, epoch in enumerate(deme.epochs):
                    if epoch.end_time <= mid < epoch.start_time:
                        size[d] = size_of[d, i]
        migration = tuple(
            (index[m.dest], index[m.source], rate_of[k2])  # backwards: dest -> source
            for k2, m in enumerate(graph.migrations)
            if m.end_time <= mid < m.start_time
        )
        sched.intervals.append(Interval(k - 1, tuple(alive), size, migration))
    # the moves at each event time: pulses (latest listed first, backwards), then starts
    for t in ordered:
        moves = []
        for k in reversed(range(len(graph.pulses))):
            pulse = graph.pulses[k]
            if pulse.time == t:
                moves.append(
                    Move(index[pulse.dest], tuple(index[s] for s in pulse.sources),
                         tuple(pulse_probs[k]), True, f"pulses[{k}]")
                )  # fmt: skip
        for deme in graph.demes:
            if deme.start_time == t:
                if not deme.ancestors:
                    raise ValueError(f"deme {deme.name!r} starts at {t} but has no ancestors")
                probs = tuple(ancestor_probs.get(deme.name, [])) + (-1,)
                moves.append(
                    Move(index[deme.name], tuple(index[a] for a in deme.ancestors),
                         probs, False, f"{deme.name}.start_time")
                )  # fmt: skip
        sched.events.append(moves)
    return sched


def check_samples(sched: Schedule, samples: dict[str, int]) -> np.ndarray:
    """The number of sampled lineages in each deme (all demes, in the schedule's order)."""
    counts = np.zeros(len(sched.demes), dtype=np.int64)
    if not samples:
        raise ValueError("samples is empty: give e.g. samples={'A': 10}")
    first = sched.intervals[0]
    for name, n in samples.items():
        if name not in sched.demes:
            raise ValueError(f"samples names deme {name!r}; the model has {sched.demes}")
        d = sched.demes.index(name)
        if int(n) != n or n < 0:
            raise ValueError(f"samples[{name!r}] = {n}: a count of sampled genomes (>= 0)")
        if n and d not in first.alive:
            raise NotImplementedError(
                f"deme {name!r} does not exist at time 0: ancient samples are not supported"
            )
        counts[d] = int(n)
    if counts.sum() < 2:
        raise ValueError(f"samples={samples}: at least two sampled genomes are needed")
    return counts
