"""Breadth-first expansion of a state space one whole frontier at a time (no per-state Python).

:meth:`ptdcore.Graph.from_frontier` calls a vectorised callback once per breadth-first
level with every state of that level as one integer array. States are identified by a
64-bit hash of their row (a random linear form, wrapping), looked up in a sorted array
of the known hashes; every match is then compared with the stored state, so a hash
collision is detected, never silently merged (the build then starts over with other
multipliers). Memory is linear in states and edges: the states as one integer array,
the edges as flat arrays; nothing is dense in the number of states.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import ModelError

FrontierCallback = Callable[[np.ndarray], tuple[Any, Any, Any]]

_MAX_ATTEMPTS = 3


class _HashCollision(Exception):
    pass


class _GrowingArray:
    """A 2-D array with amortised O(1) appends of row blocks."""

    def __init__(self, width: int, dtype: Any) -> None:
        self.data = np.empty((1024, width), dtype=dtype)
        self.size = 0

    def extend(self, rows: np.ndarray) -> None:
        need = self.size + rows.shape[0]
        if need > self.data.shape[0]:
            grown = np.empty(
                (max(need, 2 * self.data.shape[0]), self.data.shape[1]), self.data.dtype
            )
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : need] = rows
        self.size = need

    def view(self) -> np.ndarray:
        return self.data[: self.size]


def _row_hashes(rows: np.ndarray, multipliers: np.ndarray) -> np.ndarray:
    """uint64 hash of each row: sum of entries times odd random multipliers, mod 2**64."""
    h = np.zeros(rows.shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(rows.shape[1]):
            h += rows[:, j].astype(np.uint64) * multipliers[j]
    return h


def _parse_output(
    out: Any, nr_frontier: int, width: int, nr_params: int, level: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(source, targets, constant, coefficients) from what the callback returned."""
    where = f"frontier callback at level {level}"
    try:
        source, targets, weights = out
    except (TypeError, ValueError):
        raise ModelError(
            f"{where}: expected (source, targets, weights), got {type(out).__name__}"
        ) from None
    source = np.asarray(source)
    targets = np.asarray(targets)
    if isinstance(weights, tuple) and len(weights) == 2:
        constant, coefs = (np.asarray(w, dtype=np.float64) for w in weights)
    else:
        coefs = np.asarray(weights, dtype=np.float64)
        constant = np.zeros(coefs.shape[0] if coefs.ndim else 0)
    K = source.shape[0] if source.ndim == 1 else -1
    if source.ndim != 1 or not np.issubdtype(source.dtype, np.integer):
        raise ModelError(f"{where}: source must be a 1-D integer array, got {source.dtype} "
                         f"of shape {source.shape}")  # fmt: skip
    if K and (source.min() < 0 or source.max() >= nr_frontier):
        raise ModelError(f"{where}: source values must index the {nr_frontier} frontier rows")
    if targets.shape != (K, width) or not np.issubdtype(targets.dtype, np.integer):
        raise ModelError(f"{where}: targets must be integers of shape ({K}, {width}), got "
                         f"{targets.dtype} of shape {targets.shape}")  # fmt: skip
    if coefs.shape != (K, nr_params) or constant.shape != (K,):
        raise ModelError(
            f"{where}: weights must be coefficients ({K}, {nr_params}) or (constant ({K},), "
            f"coefficients ({K}, {nr_params})); got shapes {constant.shape}, {coefs.shape}"
        )
    return source.astype(np.int64), targets, constant, coefs


def too_many_states(max_states: int, found: int, expanded: int) -> ModelError:
    """The error for a state space that outgrew ``max_states``."""
    return ModelError(
        f"the state space grew past max_states={max_states:,}: {found:,} states found, "
        f"{expanded:,} of them expanded; if the model is meant to be this large pass a "
        "larger max_states=, else the callback's states never end (a counter that is "
        "never bounded?)"
    )


def expand(
    callback: FrontierCallback,
    initial_state: Any,
    nr_params: int,
    dtype: Any = np.int32,
    seed: int = 0,
    max_states: int | None = None,
) -> dict[str, Any]:
    """Expand from ``initial_state``; the arrays of a Structure plus the transient states.

    Returns a dict with ``states`` (transient states, breadth-first order, an (N, d)
    array), ``alpha``, ``src``, ``dst``, ``constant``, ``coef_ptr``, ``coef_index``,
    ``coef_value``. Raises ModelError for malformed callback output.
    """
    for attempt in range(_MAX_ATTEMPTS):
        try:
            return _expand(callback, initial_state, nr_params, dtype, seed + attempt, max_states)
        except _HashCollision:
            continue
    raise ModelError(
        f"Graph.from_frontier: state hashes collided in all {_MAX_ATTEMPTS} attempts "
        "(different states with the same 64-bit hash)"
    )


def _expand(
    callback: FrontierCallback,
    initial_state: Any,
    nr_params: int,
    dtype: Any,
    seed: int,
    max_states: int | None,
) -> dict[str, Any]:
    start = np.asarray(initial_state, dtype=dtype).reshape(1, -1)
    width = start.shape[1]
    multipliers = np.random.default_rng(seed).integers(
        0, np.iinfo(np.int64).max, size=width, dtype=np.int64
    ).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    states = _GrowingArray(width, dtype)
    states.extend(start)
    known_keys = _row_hashes(start, multipliers)  # sorted
    known_ids = np.zeros(1, dtype=np.int64)
    frontier = np.zeros(1, dtype=np.int64)
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    level = 0
    while frontier.size:
        rows = states.view()[frontier]
        source, targets, constant, coefs = _parse_output(
            callback(rows), rows.shape[0], width, nr_params, level
        )
        info = np.iinfo(dtype)
        if targets.size and (targets.min() < info.min or targets.max() > info.max):
            raise ModelError(
                f"frontier callback at level {level}: a target state does not fit "
                f"{np.dtype(dtype)} (pass a wider dtype=)"
            )
        targets = targets.astype(dtype, copy=False)
        keys = _row_hashes(targets, multipliers)
        # Look up each distinct target once (sorted queries), not each transition.
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        representative = targets[first]
        if not np.array_equal(representative[inverse], targets):
            raise _HashCollision
        pos = np.minimum(np.searchsorted(known_keys, uniq), known_keys.size - 1)
        found = known_keys[pos] == uniq
        ids = np.empty(uniq.size, dtype=np.int64)
        ids[found] = known_ids[pos[found]]
        if not np.array_equal(states.view()[ids[found]], representative[found]):
            raise _HashCollision
        new = np.flatnonzero(~found)
        order = new[np.argsort(first[new], kind="stable")]  # new ids by first appearance
        ids[order] = states.size + np.arange(order.size)
        states.extend(representative[order])
        if max_states is not None and states.size > max_states:
            raise too_many_states(max_states, states.size, states.size - order.size)
        dst = ids[inverse]
        merged_keys = np.concatenate([known_keys, uniq[order]])
        merged_ids = np.concatenate([known_ids, ids[order]])
        sort = np.argsort(merged_keys, kind="stable")
        known_keys, known_ids = merged_keys[sort], merged_ids[sort]
        blocks.append((frontier[source], dst, constant, coefs))
        frontier = states.size - order.size + np.arange(order.size, dtype=np.int64)
        level += 1
    return _assemble(states.view(), blocks, nr_params)


def _assemble(
    states: np.ndarray, blocks: list[tuple[np.ndarray, ...]], nr_params: int
) -> dict[str, Any]:
    """Structure arrays: edges sorted by source, absorbing states (no way out) removed."""
    src = np.concatenate([b[0] for b in blocks])
    dst = np.concatenate([b[1] for b in blocks])
    constant = np.concatenate([b[2] for b in blocks])
    coefs = np.concatenate([b[3] for b in blocks]).reshape(-1, nr_params)
    if np.any(src[1:] < src[:-1]):  # by source; within it, the callback's order
        order = np.argsort(src, kind="stable")
        src, dst, constant, coefs = src[order], dst[order], constant[order], coefs[order]
    transient = np.zeros(states.shape[0], dtype=bool)
    transient[src] = True
    if not transient[0]:
        raise ModelError(
            f"initial state {tuple(states[0].tolist())} has no transitions: there is nothing "
            "to model"
        )
    index = np.cumsum(transient) - 1  # new index of each transient state
    new_src = index[src]
    new_dst = np.where(transient[dst], index[dst], -1)
    nonzero = coefs != 0.0
    edge_of, param = np.nonzero(nonzero)
    coef_ptr = np.zeros(src.size + 1, dtype=np.int64)
    np.cumsum(nonzero.sum(axis=1), out=coef_ptr[1:])
    alpha = np.zeros(int(transient.sum()))
    alpha[0] = 1.0
    return {
        "states": states[transient],
        "alpha": alpha,
        "src": new_src,
        "dst": new_dst,
        "constant": constant,
        "coef_ptr": coef_ptr,
        "coef_index": param.astype(np.int64),
        "coef_value": coefs[edge_of, param],
    }
