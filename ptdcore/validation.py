"""Model checks: each failure is a ModelError (a ValueError) naming the state or edge.

This is the one validation path: :class:`~ptdcore.structure.Structure` runs it on
construction, so a Graph, a structure read from JSON, the CLI and every backend's
input pass through the same checks with the same messages. The engine itself only
guards memory safety (array lengths and index ranges, ``structure.hpp``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ModelError
from .tolerances import ALPHA_SUM_TOLERANCE, DISCRETE_SUM_TOLERANCE

OUTPUTS = ("density", "cdf", "sf")
"""What a call evaluates at the times (an argument of each call, not part of the model):
the density (probability mass for discrete models), the distribution function
P(T <= t) or the survival function P(T > t). Its index is the engine's code."""


def output_code(output: str) -> int:
    """The engine's code of ``output`` (0 density, 1 cdf, 2 sf); ValueError otherwise."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    return OUTPUTS.index(output)


# The checks read a ptdcore.Structure's fields; it is not imported here (structure.py
# imports this module), hence ``Structure = Any`` in the annotations.
Structure = Any


def describe_state(structure: Structure, i: int) -> str:
    """``state 3`` or ``state 3 (2, 1, 0)`` when the state has a label."""
    if i < 0:
        return "absorption"
    if structure.states is not None and 0 <= i < len(structure.states):
        return f"state {i} {tuple(int(x) for x in structure.states[i])}"
    return f"state {i}"


def describe_edge(structure: Structure, e: int) -> str:
    """``edge 5 (state 1 -> state 2)``."""
    src = int(structure.src[e])
    dst = int(structure.dst[e])
    return f"edge {e} ({describe_state(structure, src)} -> {describe_state(structure, dst)})"


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def validate_structure(s: Structure) -> None:
    """Raise ValueError (or NotImplementedError) if ``s`` is not a valid model."""
    n, P = s.nr_states, s.nr_params
    if n < 1:
        raise ModelError("the model has no transient states")
    if P < 0:
        raise ModelError(f"nr_params must be >= 0, got {P}")
    _check_epochs(s)
    _check_alpha(s)
    _check_edges(s)
    if s.rewards is not None:
        _check_rewards(s)
    elif s.reward_matrix:
        raise ModelError("reward moments need rewards of shape (nr_states, m)")
    _check_absorption_reachable(s)


def _check_epochs(s: Structure) -> None:
    E = s.epochs
    if E < 1:
        raise ModelError(f"epochs must be >= 1, got {E}")
    if s.nr_params < E - 1 or (s.nr_params - E + 1) % E:
        raise ModelError(
            f"nr_params = {s.nr_params} does not fit {E} epochs "
            "(epochs x parameters per epoch + epochs - 1 breaks)"
        )


def _check_alpha(s: Structure) -> None:
    alpha = s.alpha
    if alpha.shape != (s.nr_states,):
        raise ModelError(f"alpha has shape {alpha.shape}, expected ({s.nr_states},)")
    bad = ~np.isfinite(alpha) | (alpha < 0) | (alpha > 1)
    if bad.any():
        i = _first(bad)
        raise ModelError(
            f"alpha[{i}] = {float(alpha[i])!r} for {describe_state(s, i)} is outside [0, 1]"
        )
    total = float(alpha.sum())
    if total > 1 + ALPHA_SUM_TOLERANCE:
        raise ModelError(f"alpha sums to {total!r}, which is more than 1")


def _check_edges(s: Structure) -> None:
    n, P, E = s.nr_states, s.base_params, s.nr_edges
    for name in ("dst", "constant"):
        if getattr(s, name).shape != (E,):
            raise ModelError(
                f"edge array {name!r} has length {getattr(s, name).shape[0]}, expected {E}"
            )
    if s.coef_ptr.shape != (E + 1,) or s.coef_ptr[0] != 0 or np.any(np.diff(s.coef_ptr) < 0):
        raise ModelError("coef_ptr must be a non-decreasing array of length nr_edges + 1 from 0")
    if s.coef_ptr[-1] != s.coef_index.shape[0] or s.coef_index.shape != s.coef_value.shape:
        raise ModelError("coef_ptr, coef_index and coef_value do not agree in length")
    bad = (s.src < 0) | (s.src >= n)
    if bad.any():
        e = _first(bad)
        raise ModelError(f"edge {e}: source state {s.src[e]} is out of range [0, {n})")
    bad = (s.dst < -1) | (s.dst >= n)
    if bad.any():
        e = _first(bad)
        raise ModelError(f"edge {e}: destination state {s.dst[e]} is out of range [-1, {n})")
    bad = ~np.isfinite(s.constant)
    if bad.any():
        raise ModelError(f"{describe_edge(s, _first(bad))}: constant weight is not finite")
    edge_of_coef = np.repeat(np.arange(E), np.diff(s.coef_ptr))
    bad = ~np.isfinite(s.coef_value)
    if bad.any():
        raise ModelError(
            f"{describe_edge(s, int(edge_of_coef[_first(bad)]))}: a coefficient is not finite"
        )
    bad = (s.coef_index < 0) | (s.coef_index >= P)
    if bad.any():
        k = _first(bad)
        raise ModelError(
            f"{describe_edge(s, int(edge_of_coef[k]))}: coefficient for parameter "
            f"{s.coef_index[k]} but nr_params = {P}"
            + (f" per epoch ({s.epochs} epochs)" if s.epochs > 1 else "")
        )
    has_coef = _has_coefficients(s)
    bad = (s.constant < 0) & ~has_coef
    if bad.any():
        e = _first(bad)
        raise ModelError(
            f"{describe_edge(s, e)}: negative weight {float(s.constant[e])!r} "
            "with no parameter coefficients"
        )
    if not s.discrete:
        bad = s.src == s.dst
        if bad.any():
            e = _first(bad)
            raise ModelError(
                f"{describe_edge(s, e)}: a self-loop in a continuous model "
                "(the diagonal of the sub-intensity matrix is implied)"
            )
        return
    # Discrete: out-probabilities made of constants alone must sum to <= 1.
    fixed = ~has_coef
    sums = np.bincount(s.src[fixed], weights=s.constant[fixed], minlength=n)
    bad = sums > 1 + DISCRETE_SUM_TOLERANCE
    if bad.any():
        i = _first(bad)
        raise ModelError(f"{describe_state(s, i)}: out-probabilities sum to {float(sums[i])!r} > 1")


def _has_coefficients(s: Structure) -> np.ndarray:
    edge_of_coef = np.repeat(np.arange(s.nr_edges), np.diff(s.coef_ptr))
    nonzero = s.coef_value != 0
    return np.bincount(edge_of_coef[nonzero], minlength=s.nr_edges) > 0


def _check_rewards(s: Structure) -> None:
    r = s.rewards
    n = s.nr_states
    if s.discrete:
        raise NotImplementedError(
            "rewards on discrete models are not supported (only continuous models take rewards)"
        )
    if s.reward_matrix:
        if r.size == 0 or r.size % n:
            raise ModelError(
                f"reward moments need rewards of shape (nr_states, m) = ({n}, m), m >= 1; "
                f"got {r.size} values"
            )
    elif r.shape != (n,):
        raise ModelError(f"rewards has length {r.shape[0]}, expected nr_states = {n}")
    bad = ~np.isfinite(r) | (r < 0)
    if bad.any():
        k = _first(bad)
        m = r.size // n
        column = f" (column {k % m})" if s.reward_matrix else ""
        raise ModelError(
            f"reward {float(r[k])!r} for {describe_state(s, k // m)}{column} "
            "must be finite and >= 0"
        )


def _check_absorption_reachable(s: Structure) -> None:
    """Every state must be able to reach absorption through edges that can be non-zero."""
    from scipy.sparse import csr_array  # lazy: keeps `import ptdcore` light
    from scipy.sparse.csgraph import breadth_first_order

    n = s.nr_states
    live = (s.constant != 0) | _has_coefficients(s)
    live &= s.src != s.dst
    exits = live & (s.dst < 0)
    inner = live & (s.dst >= 0)
    # Reverse graph plus a virtual exit node n: BFS from n.
    rows = np.concatenate([s.dst[inner], np.full(int(exits.sum()), n)])
    cols = np.concatenate([s.src[inner], s.src[exits]])
    adj = csr_array((np.ones(rows.shape[0]), (rows, cols)), shape=(n + 1, n + 1))
    reached = np.zeros(n + 1, dtype=bool)
    reached[breadth_first_order(adj, n, directed=True, return_predecessors=False)] = True
    stuck = np.flatnonzero(~reached[:n])
    if stuck.size:
        shown = ", ".join(describe_state(s, int(i)) for i in stuck[:5])
        more = f" and {stuck.size - 5} more" if stuck.size > 5 else ""
        raise ModelError(
            f"absorption is impossible from {shown}{more}: every state needs a path to "
            "absorption (otherwise the moments are infinite)"
        )
