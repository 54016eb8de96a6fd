"""Coalescent state spaces used by the demo, the tests and the benchmarks."""

from __future__ import annotations

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


def kingman_graph(n: int, reward: str | None = None) -> Graph:
    """Kingman coalescent with ``n`` samples on the SFS state space.

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
    graph = Graph.from_callback(kingman_sfs_callback, initial, nr_params=1)
    if reward is None:
        return graph
    if reward == "total_branch_length":
        return graph.with_rewards(lambda s: float(sum(s)))
    if reward == "singleton":
        return graph.with_rewards(lambda s: float(s[0]))
    raise ValueError(f"unknown reward {reward!r}; use None, 'total_branch_length' or 'singleton'")


def kingman_tmrca_graph(n: int) -> Graph:
    """Kingman TMRCA on the lineage-count state space (n - 1 states, a chain)."""
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

    Parameters
    ----------
    samples
        Lineages sampled in each deme, e.g. ``(2, 2)`` for two demes with two each.

    The state is the number of lineages in each deme. ``theta = (c, m)``: every pair
    of lineages in the same deme coalesces at rate ``c`` (``c = 1`` is coalescent
    units), and every lineage migrates to each other deme at rate ``m``. A single
    lineage left is absorption.
    """
    samples = tuple(int(a) for a in samples)
    if len(samples) < 2 or min(samples) < 0 or sum(samples) < 2:
        raise ValueError(
            f"samples must give lineages for two or more demes, at least 2 in all; got {samples}"
        )
    demes = len(samples)

    def callback(state: tuple[int, ...]) -> list[tuple[tuple[int, ...], list[float]]]:
        if sum(state) <= 1:
            return []
        out = []
        for d, a in enumerate(state):
            if a >= 2:
                nxt = list(state)
                nxt[d] -= 1
                out.append((tuple(nxt), [a * (a - 1) / 2.0, 0.0]))
            if a >= 1:
                for e in range(demes):
                    if e != d:
                        nxt = list(state)
                        nxt[d] -= 1
                        nxt[e] += 1
                        out.append((tuple(nxt), [0.0, float(a)]))
        return out

    return Graph.from_callback(callback, samples, nr_params=2)
