"""Model generators for tests, benchmarks and the equivalence corpus."""

from __future__ import annotations

import numpy as np

from ..graph import Graph


def random_graph(
    seed: int,
    nr_states: int = 5,
    nr_params: int = 2,
    *,
    discrete: bool = False,
    density: float = 0.4,
    rewards: bool = False,
    zero_reward_fraction: float = 0.3,
) -> Graph:
    """A seeded random sparse graph, cyclic in general, every state able to exit.

    Continuous weights are ``constant + coefficients . theta`` with non-negative
    parts, so any theta > 0 is valid. Discrete weights are scaled so that the
    out-probabilities stay below 1 for theta in (0, 1].
    """
    rng = np.random.default_rng(seed)
    n, P = nr_states, nr_params
    edges = []
    for i in range(n):
        targets = [j for j in range(n) if j != i and rng.random() < density]
        if i + 1 < n and i + 1 not in targets:
            targets.append(i + 1)  # a path forward keeps absorption reachable
        exits = rng.random() < 0.5 or i == n - 1
        out = [(j,) for j in targets] + ([(-1,)] if exits else [])
        for (j,) in out:
            constant = float(rng.uniform(0.05, 1.0)) if rng.random() < 0.7 else 0.0
            coefs = (rng.uniform(0.0, 1.0, P) * (rng.random(P) < 0.6)).tolist()
            if constant == 0.0 and not any(coefs) and P:
                coefs[int(rng.integers(P))] = float(rng.uniform(0.1, 1.0))
            if constant == 0.0 and P == 0:
                constant = float(rng.uniform(0.05, 1.0))
            edges.append([i, j, constant, coefs])
    if discrete:
        # Scale each state's out-weights so they sum to at most 0.9 at theta = 1.
        totals = np.zeros(n)
        for i, _, c, coefs in edges:
            totals[i] += c + sum(coefs)
        for edge in edges:
            f = 0.9 / max(totals[edge[0]], 0.9)
            edge[2] *= f
            edge[3] = [c * f for c in edge[3]]
    alpha = rng.uniform(0.0, 1.0, n) * (rng.random(n) < 0.6)
    alpha[0] = max(alpha[0], 0.5)
    alpha = alpha / alpha.sum() * (0.95 if discrete else 1.0)
    reward_values = None
    if rewards:
        reward_values = rng.uniform(0.2, 3.0, n)
        reward_values[rng.random(n) < zero_reward_fraction] = 0.0
        reward_values[0] = max(reward_values[0], 0.5)
    return Graph.from_edges(
        alpha, [tuple(e) for e in edges], nr_params=P, rewards=reward_values, discrete=discrete
    )
