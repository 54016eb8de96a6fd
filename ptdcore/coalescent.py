"""Coalescent state spaces used by the demo, the tests and the benchmarks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .graph import Graph


def kingman_sfs_callback(state: tuple[int, ...]) -> list[tuple[tuple[int, ...], list[float]]]:
    """Kingman coalescent on the SFS state space, one parameter (the pair rate).

    ``state[i]`` is the number of lineages with ``i + 1`` descendants. Two lineages
    merge at rate ``theta`` per pair; a single lineage left is absorption.
    """
    n = len(state)
    if sum(state) <= 1:
        return []
    out = []
    for i in range(n):
        if state[i] == 0:
            continue
        for j in range(i, n):
            pairs = state[i] * (state[i] - 1) // 2 if i == j else state[i] * state[j]
            if pairs == 0:
                continue
            nxt = list(state)
            nxt[i] -= 1
            nxt[j] -= 1
            nxt[i + j + 1] += 1
            out.append((tuple(nxt), [float(pairs)]))
    return out


def kingman_block_counting(n: int, reward: str | None = None) -> Graph:
    """Kingman coalescent with ``n`` samples on the block-counting (SFS) state space.

    Parameters
    ----------
    n
        Sample size (>= 2). The state space has p(n) - 1 states (p = partitions).
    reward
        ``None`` for the time to the most recent common ancestor,
        ``"total_branch_length"`` (reward = lineages) or ``"singleton"``
        (reward = lineages with one descendant; zero in many states).
    """
    if n < 2:
        raise ValueError(f"Kingman coalescent needs n >= 2 samples, got {n}")
    initial = (n,) + (0,) * (n - 1)
    # The vectorised twin of kingman_sfs_callback: the same graph, no Python per state.
    graph = Graph.from_frontier(kingman_sfs_frontier, initial, nr_params=1, dtype=_count_type(n))
    if reward is None:
        return graph
    if reward == "total_branch_length":
        return graph.with_rewards(lambda s: float(sum(s)))
    if reward == "singleton":
        return graph.with_rewards(lambda s: float(s[0]))
    raise ValueError(f"unknown reward {reward!r}; use None, 'total_branch_length' or 'singleton'")


def kingman_tmrca(n: int) -> Graph:
    """Kingman TMRCA on the lineage-count state space (n - 1 states, a chain).

    The state is the number of lineages ``k``; ``theta = (c,)``: every pair of lineages
    coalesces at rate ``c`` (``c = 1`` is coalescent units: ``E[TMRCA] = 2 (1 - 1/n)``).
    """
    if n < 2:
        raise ValueError(f"Kingman coalescent needs n >= 2 samples, got {n}")

    def callback(state: tuple[int, ...]) -> list[tuple[tuple[int, ...], list[float]]]:
        (k,) = state
        if k <= 1:
            return []
        return [((k - 1,), [k * (k - 1) / 2.0])]

    return Graph.from_callback(callback, (n,), nr_params=1)


def structured_graph(samples: tuple[int, ...] | list[int]) -> Graph:
    """Structured coalescent (island model) for the TMRCA: several demes with migration.

    The state is the number of lineages in each deme. ``theta = (c, m)``: every pair
    of lineages in the same deme coalesces at rate ``c`` (``c = 1`` is coalescent
    units), and every lineage migrates to each other deme at rate ``m``. A single
    lineage left is absorption. (:func:`structured` with its defaults.)

    Parameters
    ----------
    samples
        Lineages sampled in each deme, for example two demes with two each: (2, 2).
    """
    return structured(samples)


# -- contract section 9: ready state spaces with their reward matrices ------------------


kingman = kingman_tmrca
"""The contract's name (section 9) of :func:`kingman_tmrca`."""
kingman_tmrca_graph = kingman_tmrca
"""Older name of :func:`kingman_tmrca`."""
kingman_graph = kingman_block_counting
"""Older name of :func:`kingman_block_counting` (the block-counting space, whose TMRCA is
the same as :func:`kingman_tmrca`'s on p(n) - 1 states instead of n - 1)."""


def kingman_sfs(n: int) -> tuple[Graph, np.ndarray]:
    """Kingman coalescent on the block-counting space, with the SFS reward matrix.

    Parameters
    ----------
    n
        Sample size (>= 2).

    Returns
    -------
    graph, rewards
        ``graph``: states ``(a_1, ..., a_n)`` with ``a_i`` lineages that subtend ``i``
        samples; ``theta = (c,)``, the pair coalescence rate (``c = 1``: coalescent
        units, ``E[xi_i] = 2 / (i c)``). ``rewards`` (nr_states, n - 1): column ``i - 1``
        is ``a_i``, so ``Y_{i-1} = integral a_i(X_t) dt`` is the total length of the
        branches subtending ``i`` samples (the expected SFS is ``mutation rate x mean``).
    """
    graph = kingman_block_counting(n)
    return graph, _block_rewards(graph, n, demes=1)


def structured(
    samples: Sequence[int], *, shared_coalescence: bool = True, symmetric_migration: bool = True
) -> Graph:
    """Structured coalescent (island model) for the TMRCA: lineage counts per deme.

    Parameter order: the coalescence rate(s), then the migration rate(s); see
    :func:`structured_parameters`. ``c = 1`` is coalescent units.

    Parameters
    ----------
    samples
        Lineages sampled in each of the D >= 2 demes, for example (2, 2).
    shared_coalescence
        One pair coalescence rate for all demes (True), or one per deme.
    symmetric_migration
        One migration rate per lineage to each other deme (True), or one per ordered
        pair of demes (d, e), d != e, in row-major order.
    """
    samples, demes, P, coal, mig = _structured_layout(samples, shared_coalescence,
                                                      symmetric_migration)  # fmt: skip

    def callback(state: tuple[int, ...]) -> list[tuple[tuple[int, ...], list[float]]]:
        if sum(state) <= 1:
            return []
        out = []
        for d, a in enumerate(state):
            if a >= 2:
                nxt = list(state)
                nxt[d] -= 1
                out.append((tuple(nxt), _coefs(P, coal(d), a * (a - 1) / 2.0)))
            for e in range(demes):
                if e != d and a >= 1:
                    nxt = list(state)
                    nxt[d] -= 1
                    nxt[e] += 1
                    out.append((tuple(nxt), _coefs(P, mig(d, e), float(a))))
        return out

    return Graph.from_callback(callback, samples, nr_params=P)


def structured_sfs(
    samples: Sequence[int], *, shared_coalescence: bool = True, symmetric_migration: bool = True
) -> tuple[Graph, np.ndarray]:
    """Structured coalescent on the block-counting space, with the pooled SFS rewards.

    The state holds, for each deme ``d`` and ``i = 1..n`` (``n = sum(samples)``), the
    number of lineages in ``d`` that subtend ``i`` samples (flattened deme-major).
    Parameters as in :func:`structured`. ``rewards`` (nr_states, n - 1): column
    ``i - 1`` counts the lineages subtending ``i`` samples in every deme (the SFS pooled
    over demes).
    """
    samples, demes, P, coal, mig = _structured_layout(samples, shared_coalescence,
                                                      symmetric_migration)  # fmt: skip
    n = sum(samples)

    initial = [0] * (demes * n)
    for d, a in enumerate(samples):
        initial[d * n] = a
    graph = Graph.from_frontier(_structured_sfs_frontier(n, demes, P, coal, mig), initial,
                                nr_params=P, dtype=_count_type(n))  # fmt: skip
    return graph, _block_rewards(graph, n, demes)


def structured_parameters(
    demes: int, *, shared_coalescence: bool = True, symmetric_migration: bool = True
) -> list[str]:
    """Names of the parameters of :func:`structured` / :func:`structured_sfs`, in order."""
    names = ["c"] if shared_coalescence else [f"c{d}" for d in range(demes)]
    if symmetric_migration:
        return [*names, "m"]
    return names + [f"m{d}{e}" for d in range(demes) for e in range(demes) if d != e]


def _structured_layout(
    samples: Sequence[int], shared_coalescence: bool, symmetric_migration: bool
) -> tuple[tuple[int, ...], int, int, Any, Any]:
    samples = tuple(int(a) for a in samples)
    if len(samples) < 2 or min(samples) < 0 or sum(samples) < 2:
        raise ValueError(
            f"samples must give lineages for two or more demes, at least 2 in all; got {samples}"
        )
    demes = len(samples)
    nr_coal = 1 if shared_coalescence else demes
    P = len(structured_parameters(demes, shared_coalescence=shared_coalescence,
                                  symmetric_migration=symmetric_migration))  # fmt: skip

    def coal(d: int) -> int:
        return 0 if shared_coalescence else d

    def mig(d: int, e: int) -> int:
        if symmetric_migration:
            return nr_coal
        return nr_coal + d * (demes - 1) + (e if e < d else e - 1)

    return samples, demes, P, coal, mig


def _count_type(n: int) -> Any:
    """The narrowest integer type that holds lineage counts up to ``n``."""
    return np.int8 if n <= 127 else np.int16 if n <= 32767 else np.int32


def _coefs(P: int, index: int, value: float) -> list[float]:
    coefs = [0.0] * P
    coefs[index] = value
    return coefs


def _block_rewards(graph: Graph, n: int, demes: int) -> np.ndarray:
    """Column i - 1: lineages subtending i samples, summed over demes."""
    states = np.asarray(graph.structure().states, dtype=np.float64)
    states = states.reshape(graph.nr_states, demes, n)
    return states.sum(axis=1)[:, : n - 1]


def simulate_tmrca(n: int, theta: float, size: int, seed: int) -> np.ndarray:
    """TMRCA draws: sums of Exp(C(k, 2) theta) for k = n..2 (independent of the engine)."""
    rng = np.random.default_rng(seed)
    rates = np.array([k * (k - 1) / 2 * theta for k in range(2, n + 1)])
    return rng.exponential(1.0 / rates, size=(size, rates.size)).sum(axis=1)


def kingman_sfs_frontier(states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`kingman_sfs_callback` for a whole frontier (``Graph.from_frontier``): the
    same transitions in the same order (by state, then by the classes ``i <= j`` that
    merge), from array operations only."""
    rows, classes = np.nonzero(states)  # row-major: by state, then by class
    counts = states[rows, classes].astype(np.int64)
    per_row = np.bincount(rows, minlength=states.shape[0])
    first = np.cumsum(per_row) - per_row  # first entry of each row
    position = np.arange(rows.size) - first[rows]
    partners = per_row[rows] - position  # entry e pairs with itself and the later entries
    left = np.repeat(np.arange(rows.size), partners)
    offset = np.arange(left.size) - np.repeat(np.cumsum(partners) - partners, partners)
    right = left + offset
    i, j = classes[left], classes[right]
    same = offset == 0
    pairs = np.where(same, counts[left] * (counts[left] - 1) // 2, counts[left] * counts[right])
    keep = pairs > 0
    left, i, j, pairs = left[keep], i[keep], j[keep], pairs[keep]
    source = rows[left]
    targets = states[source]
    k = np.arange(source.size)
    targets[k, i] -= 1
    targets[k, j] -= 1
    targets[k, i + j + 1] += 1
    return source, targets, pairs.astype(np.float64)[:, None]


def _structured_sfs_frontier(
    n: int, demes: int, P: int, coal: Any, mig: Any
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The frontier callback of :func:`structured_sfs`: per state the transitions of
    its per-state callback, in the same order, from array operations."""

    def callback(states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = states.astype(np.int64)
        alive = a.sum(axis=1) > 1  # a single lineage left is absorption
        sources, targets, params, values, ranks = [], [], [], [], []

        def emit(rows, nxt, param, value, rank):
            sources.append(rows)
            targets.append(nxt)
            params.append(np.full(rows.size, param))
            values.append(value.astype(np.float64))
            ranks.append(np.full(rows.size, rank))

        for d in range(demes):
            for i in range(n):
                col = d * n + i
                rows_i = np.flatnonzero(a[:, col])
                if rows_i.size == 0:
                    continue
                ai = a[rows_i, col]
                base = col * (n + demes)
                for j in range(i, n - i - 1):
                    pairs = ai * (ai - 1) // 2 if i == j else ai * a[rows_i, d * n + j]
                    keep = pairs > 0
                    if keep.any():
                        rows = rows_i[keep]
                        nxt = states[rows].copy()
                        nxt[:, col] -= 1
                        nxt[:, d * n + j] -= 1
                        nxt[:, d * n + i + j + 1] += 1
                        emit(rows, nxt, coal(d), pairs[keep], base + j)
                rows, moving = rows_i[alive[rows_i]], ai[alive[rows_i]]
                for e in range(demes):
                    if e != d and rows.size:
                        nxt = states[rows].copy()
                        nxt[:, col] -= 1
                        nxt[:, e * n + i] += 1
                        emit(rows, nxt, mig(d, e), moving, base + n + e)
        width = states.shape[1]
        if not sources:
            return np.zeros(0, np.int64), np.zeros((0, width), states.dtype), np.zeros((0, P))
        source = np.concatenate(sources)
        order = np.lexsort((np.concatenate(ranks), source))
        coefs = np.zeros((source.size, P))
        coefs[np.arange(source.size), np.concatenate(params)] = np.concatenate(values)
        return source[order], np.concatenate(targets)[order], coefs[order]

    return callback
