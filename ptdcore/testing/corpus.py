"""A corpus of named models, each with parameter values and times, for equivalence testing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from ..coalescent import kingman_block_counting
from ..graph import Graph
from .models import random_graph


@dataclass(frozen=True)
class CorpusModel:
    """A model with the thetas and times at which backends are compared."""

    name: str
    build: Callable[[], Graph] = field(repr=False)
    thetas: np.ndarray = field(repr=False)
    times: np.ndarray = field(repr=False)
    nr_moments: int = 3

    @property
    def graph(self) -> Graph:
        return _built(self.name)


def structured_coalescent(n: int) -> Graph:
    """Two demes with migration: theta = (coalescence rate 1, coalescence rate 2, migration).

    ``state = (a1, a2)`` lineages in each deme; cyclic through migration.
    """

    def callback(state: tuple[int, ...]) -> list:
        a1, a2 = state
        if a1 + a2 <= 1:
            return []
        out = []
        if a1 >= 2:
            out.append(((a1 - 1, a2), [a1 * (a1 - 1) / 2, 0.0, 0.0]))
        if a2 >= 2:
            out.append(((a1, a2 - 1), [0.0, a2 * (a2 - 1) / 2, 0.0]))
        if a1 >= 1:
            out.append(((a1 - 1, a2 + 1), [0.0, 0.0, float(a1)]))
        if a2 >= 1:
            out.append(((a1 + 1, a2 - 1), [0.0, 0.0, float(a2)]))
        return out

    return Graph.from_callback(callback, (n, 0), nr_params=3)


def erlang(k: int) -> Graph:
    edges = [(i, i + 1 if i + 1 < k else -1, 0.0, [1.0]) for i in range(k)]
    return Graph.from_edges(np.eye(k)[0], edges, nr_params=1)


def hyperexponential() -> Graph:
    edges = [(i, -1, 0.0, np.eye(3)[i]) for i in range(3)]
    return Graph.from_edges([0.2, 0.5, 0.3], edges, nr_params=3)


def coxian(k: int) -> Graph:
    """Coxian chain: state i moves on at rate theta_0 or exits at rate theta_1 * (i + 1) / k."""
    edges = []
    for i in range(k):
        if i + 1 < k:
            edges.append((i, i + 1, 0.0, [1.0, 0.0]))
        edges.append((i, -1, 0.1 if i + 1 == k else 0.0, [0.0, (i + 1) / k]))
    return Graph.from_edges(np.eye(k)[0], edges, nr_params=2)


def geometric() -> Graph:
    return Graph.from_edges([1.0], [(0, -1, 0.0, [1.0])], nr_params=1, discrete=True)


def negative_binomial(r: int) -> Graph:
    edges = [(i, i + 1 if i + 1 < r else -1, 0.0, [1.0]) for i in range(r)]
    return Graph.from_edges(np.eye(r)[0], edges, nr_params=1, discrete=True)


def _entries() -> list[CorpusModel]:
    cont_times = np.array([0.0, 0.05, 0.3, 1.0, 2.5, 6.0])
    disc_times = np.arange(0.0, 25.0)
    rate = np.array([[0.5], [1.0], [2.3]])
    out: list[CorpusModel] = []
    for n in range(3, 13):
        out.append(
            CorpusModel(
                f"kingman-tmrca-n{n}", lambda n=n: kingman_block_counting(n), rate, cont_times
            )
        )
    for n in (3, 6, 10):
        out.append(
            CorpusModel(
                f"kingman-total-branch-n{n}",
                lambda n=n: kingman_block_counting(n, "total_branch_length"),
                rate,
                cont_times * 3,
            )
        )
        out.append(
            CorpusModel(
                f"kingman-singleton-n{n}",
                lambda n=n: kingman_block_counting(n, "singleton"),
                rate,
                cont_times * 2,
            )
        )
    out.append(
        CorpusModel(
            "structured-2deme-n4",
            lambda: structured_coalescent(4),
            np.array([[1.0, 1.0, 0.5], [0.5, 2.0, 3.0], [2.0, 0.3, 0.05]]),
            cont_times * 2,
        )
    )
    out.append(CorpusModel("erlang-4", lambda: erlang(4), rate, cont_times * 2))
    out.append(
        CorpusModel(
            "hyperexponential-3",
            hyperexponential,
            np.array([[0.5, 1.0, 4.0], [2.0, 0.2, 1.0]]),
            cont_times,
        )
    )
    out.append(
        CorpusModel("coxian-5", lambda: coxian(5), np.array([[1.0, 0.5], [3.0, 2.0]]), cont_times)
    )
    for seed in range(4):
        out.append(
            CorpusModel(
                f"random-cyclic-{seed}",
                lambda seed=seed: random_graph(seed, nr_states=7, nr_params=3),
                np.array([[0.5, 1.0, 1.5], [2.0, 0.3, 0.9]]),
                cont_times,
            )
        )
    out.append(
        CorpusModel(
            "random-rewards-0",
            lambda: random_graph(100, nr_states=7, nr_params=2, rewards=True),
            np.array([[0.7, 1.3], [1.5, 0.4]]),
            cont_times,
        )
    )
    out.append(CorpusModel("geometric", geometric, np.array([[0.1], [0.5], [0.9]]), disc_times))
    out.append(
        CorpusModel(
            "negative-binomial-4",
            lambda: negative_binomial(4),
            np.array([[0.2], [0.7]]),
            disc_times,
        )
    )
    for seed in range(2):
        out.append(
            CorpusModel(
                f"random-discrete-{seed}",
                lambda seed=seed: random_graph(200 + seed, nr_states=6, nr_params=2, discrete=True),
                np.array([[0.3, 0.6], [0.9, 0.2]]),
                disc_times,
            )
        )
    return out


CORPUS: dict[str, CorpusModel] = {entry.name: entry for entry in _entries()}


@cache
def _built(name: str) -> Graph:
    return CORPUS[name].build()


def corpus_names() -> list[str]:
    """Names of the corpus models."""
    return list(CORPUS)


def get_corpus_model(name: str) -> CorpusModel:
    """One corpus model by name."""
    try:
        return CORPUS[name]
    except KeyError:
        raise KeyError(f"no corpus model {name!r}; known: {', '.join(CORPUS)}") from None
