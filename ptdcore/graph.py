"""``ptdcore.Graph``: build a phase-type model from a callback, an edge list or matrices."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from numbers import Real
from typing import Any

import numpy as np

from .errors import ModelError
from .frontier import too_many_states
from .structure import Structure

Weight = Any  # float | Sequence[float] | tuple[float, Sequence[float]]
Callback = Callable[[tuple[int, ...]], Iterable[tuple[Sequence[int], Weight]]]

# Entries of from_matrices below this fraction of the row's magnitude are rounding noise.
_MATRIX_ROUNDING = 1e-13


MAX_STATES = 2_000_000
"""Default cap on the states a callback may generate (:meth:`Graph.from_callback`,
:meth:`Graph.from_frontier`): about 2 GB of Python state labels for ``from_callback``.
Pass ``max_states=`` to build larger spaces."""


def _check_max_states(max_states: int) -> None:
    if isinstance(max_states, bool) or int(max_states) != max_states or max_states < 1:
        raise ModelError(f"max_states must be a whole number >= 1, got {max_states!r}")


def _parse_weight(weight: Weight, nr_params: int, where: str) -> tuple[float, list[float]]:
    """(constant, coefficients) from a callback or edge-list weight."""
    if isinstance(weight, Real):
        return float(weight), []
    try:
        items = list(weight)
    except TypeError:
        raise ModelError(f"{where}: weight {weight!r} is neither a number nor a sequence") from None
    if len(items) == 2 and isinstance(items[0], Real) and not isinstance(items[1], Real):
        constant = float(items[0])
        coefs = [float(c) for c in items[1]]
    else:
        constant = 0.0
        coefs = [float(c) for c in items]
    if len(coefs) != nr_params:
        raise ModelError(
            f"{where}: weight has {len(coefs)} coefficients, expected nr_params = {nr_params}"
        )
    return constant, coefs


class _EdgeAccumulator:
    """Collects edges as (src, dst, constant, sparse coefficients)."""

    def __init__(self, nr_params: int) -> None:
        self.nr_params = nr_params
        self.src: list[int] = []
        self.dst: list[int] = []
        self.constant: list[float] = []
        self.coef_ptr: list[int] = [0]
        self.coef_index: list[int] = []
        self.coef_value: list[float] = []

    def add(self, src: int, dst: int, constant: float, coefs: Sequence[float]) -> None:
        self.src.append(src)
        self.dst.append(dst)
        self.constant.append(constant)
        for p, c in enumerate(coefs):
            if c != 0.0:
                self.coef_index.append(p)
                self.coef_value.append(c)
        self.coef_ptr.append(len(self.coef_index))

    def arrays(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "dst": self.dst,
            "constant": self.constant,
            "coef_ptr": self.coef_ptr,
            "coef_index": self.coef_index,
            "coef_value": self.coef_value,
        }


class Graph:
    """A phase-type model: transient states, an initial distribution and weighted edges.

    Every edge weight is linear in the parameters, ``constant + coefficients . theta``.
    Build one with :meth:`from_callback`, :meth:`from_edges` or :meth:`from_matrices`;
    each validates the model and raises ``ValueError`` naming the state or edge at fault.
    """

    def __init__(self, structure: Structure | None = None, **old_keywords: Any) -> None:
        if old_keywords or not isinstance(structure, Structure):
            got = ", ".join(sorted(old_keywords)) or type(structure).__name__
            raise TypeError(
                f"Graph() got {got}: build a graph with Graph.from_callback(callback, "
                "initial_state, nr_params=...) (the old Graph(callback=..., parameterized=True,"
                " nr_samples=...) call), Graph.from_edges(...) or Graph.from_matrices(...); "
                "see docs/migration.md"
            )
        self._structure = structure  # validated when the Structure was made
        self._state_tuples: tuple[tuple[int, ...], ...] | None = None

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_callback(
        cls,
        callback: Callback,
        initial_state: Sequence[int],
        nr_params: int = 1,
        *,
        discrete: bool = False,
        rewards: Callable[[tuple[int, ...]], float] | None = None,
        max_states: int = MAX_STATES,
    ) -> Graph:
        """Expand the state space breadth first from ``initial_state``.

        Parameters
        ----------
        callback
            ``callback(state) -> [(next_state, weight), ...]``; ``weight`` is a float
            (constant), a sequence of ``nr_params`` coefficients, or
            ``(constant, coefficients)``. A state with no transitions is absorbing.
        initial_state
            Tuple of ints; the chain starts there with probability 1.
        nr_params
            Length of theta.
        discrete
            Weights are one-step probabilities instead of rates.
        rewards
            Optional ``rewards(state) -> float >= 0``.
        max_states
            Stop with a :class:`~ptdcore.ModelError` once more states than this are found
            (default :data:`MAX_STATES`): a callback whose states never end would
            otherwise run until memory runs out.
        """
        _check_max_states(max_states)
        start = tuple(int(x) for x in initial_state)
        transitions: dict[tuple[int, ...], list[tuple[tuple[int, ...], float, list[float]]]] = {}
        order: list[tuple[int, ...]] = []
        queue = deque([start])
        seen = {start}
        while queue:
            state = queue.popleft()
            out = []
            for item in callback(state):
                try:
                    nxt, weight = item
                except (TypeError, ValueError):
                    raise ModelError(
                        f"callback for state {state}: expected (next_state, weight) pairs, "
                        f"got {item!r}"
                    ) from None
                nxt = tuple(int(x) for x in nxt)
                constant, coefs = _parse_weight(weight, nr_params, f"transition {state} -> {nxt}")
                out.append((nxt, constant, coefs))
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
                    if len(seen) > max_states:
                        raise too_many_states(max_states, len(seen), len(transitions) + 1)
            transitions[state] = out
            if out:
                order.append(state)
        if not transitions[start]:
            raise ModelError(f"initial state {start} has no transitions: there is nothing to model")
        index = {state: i for i, state in enumerate(order)}
        edges = _EdgeAccumulator(nr_params)
        for state in order:
            i = index[state]
            for nxt, constant, coefs in transitions[state]:
                edges.add(i, index.get(nxt, -1), constant, coefs)
        alpha = np.zeros(len(order))
        alpha[index[start]] = 1.0
        reward_values = None if rewards is None else [float(rewards(s)) for s in order]
        return cls(
            Structure(
                nr_states=len(order),
                nr_params=nr_params,
                discrete=discrete,
                alpha=alpha,
                rewards=reward_values,
                states=order,
                **edges.arrays(),
            )
        )

    @classmethod
    def from_frontier(
        cls,
        callback: Callable[[np.ndarray], tuple[Any, Any, Any]],
        initial_state: Sequence[int],
        nr_params: int = 1,
        *,
        discrete: bool = False,
        dtype: Any = np.int32,
        max_states: int = MAX_STATES,
    ) -> Graph:
        """Expand the state space breadth first, one whole frontier per callback call.

        The vectorised twin of :meth:`from_callback`, for large state spaces: no Python
        runs per state or per edge. Given the same transitions in the same order it
        builds the same graph (same states, same order, same content hash).

        Parameters
        ----------
        callback
            ``callback(states) -> (source, targets, weights)``. ``states`` is an
            ``(F, d)`` integer array, every state of one breadth-first level.
            ``source`` ``(K,)``: the row of ``states`` each transition leaves;
            ``targets`` ``(K, d)``: the states they enter; ``weights``: coefficients
            ``(K, nr_params)``, or ``(constant (K,), coefficients (K, nr_params))``.
            A state with no transitions is absorbing.
        initial_state
            The chain starts there with probability 1.
        nr_params
            Length of theta.
        discrete
            Weights are one-step probabilities instead of rates.
        dtype
            Integer type that stores the states (a narrower one saves memory).
        max_states
            Stop with a :class:`~ptdcore.ModelError` once more states than this are found
            (default :data:`MAX_STATES`).
        """
        from .frontier import expand

        _check_max_states(max_states)
        arrays = expand(callback, initial_state, nr_params, dtype=dtype, max_states=max_states)
        states = arrays.pop("states")
        return cls(
            Structure(
                nr_states=states.shape[0],
                nr_params=nr_params,
                discrete=discrete,
                states=states,
                **arrays,
            )
        )

    @classmethod
    def from_edges(
        cls,
        alpha: Sequence[float],
        edges: Iterable[tuple[int, int, float, Sequence[float] | None]],
        nr_params: int = 2,
        rewards: Sequence[float] | None = None,
        discrete: bool = False,
    ) -> Graph:
        """Build from an explicit edge list ``(src, dst, constant, coefficients)``.

        ``dst = -1`` means absorption; ``coefficients`` has ``nr_params`` entries
        (or is None / empty for a constant weight).
        """
        alpha_arr = np.asarray(alpha, dtype=np.float64)
        if alpha_arr.ndim != 1:
            raise ModelError(f"alpha must be one-dimensional, got shape {alpha_arr.shape}")
        acc = _EdgeAccumulator(nr_params)
        for e, edge in enumerate(edges):
            try:
                src, dst, constant, coefs = edge
            except (TypeError, ValueError):
                raise ModelError(
                    f"edge {e}: expected (src, dst, constant, coefficients), got {edge!r}"
                ) from None
            coefs = [] if coefs is None else [float(c) for c in np.ravel(coefs)]
            if coefs and len(coefs) != nr_params:
                raise ModelError(
                    f"edge {e} ({src} -> {dst}): {len(coefs)} coefficients, "
                    f"expected nr_params = {nr_params}"
                )
            acc.add(int(src), int(dst), float(constant), coefs)
        return cls(
            Structure(
                nr_states=alpha_arr.shape[0],
                nr_params=nr_params,
                discrete=discrete,
                alpha=alpha_arr,
                rewards=rewards,
                **acc.arrays(),
            )
        )

    @classmethod
    def from_matrices(
        cls,
        alpha: Sequence[float],
        base: Any,
        params: Sequence[Any] = (),
        discrete: bool = False,
        rewards: Sequence[float] | None = None,
    ) -> Graph:
        """Build from the textbook form ``M(theta) = base + sum_j theta_j params[j]``.

        Continuous: ``M`` is the sub-intensity matrix ``S`` (diagonal included) and
        the exit rates are ``-S 1``. Discrete: ``M`` is the sub-transition matrix ``T``
        and the exit probabilities are ``1 - T 1``.
        """
        alpha_arr = np.asarray(alpha, dtype=np.float64)
        base_arr = np.asarray(base, dtype=np.float64)
        n = alpha_arr.shape[0] if alpha_arr.ndim == 1 else -1
        if base_arr.shape != (n, n):
            raise ModelError(f"base has shape {base_arr.shape}, expected ({n}, {n}) to match alpha")
        param_arr = (
            np.asarray(params, dtype=np.float64).reshape(-1, n, n)
            if len(params)
            else np.zeros((0, n, n))
        )
        if param_arr.shape[1:] != (n, n):
            raise ModelError(f"params must be a sequence of ({n}, {n}) matrices")
        P = param_arr.shape[0]
        for name, arr in (("base", base_arr), ("params", param_arr)):
            if not np.all(np.isfinite(arr)):
                raise ModelError(f"{name} contains NaN or infinite entries")
        acc = _EdgeAccumulator(P)
        for i in range(n):
            scale = max(np.abs(base_arr[i]).max(), 1.0)
            for j in range(n):
                if i == j:
                    continue
                c, coefs = base_arr[i, j], param_arr[:, i, j]
                if c != 0 or np.any(coefs != 0):
                    acc.add(i, j, float(c), coefs.tolist())
            # Exit: -S 1 (continuous) or 1 - T 1 (discrete); linear in theta as well.
            exit_c = (1.0 if discrete else 0.0) - base_arr[i].sum()
            exit_coefs = -param_arr[:, i, :].sum(axis=1)
            if abs(exit_c) <= _MATRIX_ROUNDING * scale:
                exit_c = 0.0
            exit_coefs[
                np.abs(exit_coefs)
                <= _MATRIX_ROUNDING * np.abs(param_arr[:, i, :]).max(axis=1, initial=0)
            ] = 0.0
            if exit_c != 0 or np.any(exit_coefs != 0):
                acc.add(i, -1, float(exit_c), exit_coefs.tolist())
        return cls(
            Structure(
                nr_states=n,
                nr_params=P,
                discrete=discrete,
                alpha=alpha_arr,
                rewards=rewards,
                **acc.arrays(),
            )
        )

    @classmethod
    def from_json(cls, text: str) -> Graph:
        """Rebuild a graph from :meth:`to_json` output."""
        return cls(Structure.from_json(text))

    # -- properties -----------------------------------------------------------------------
    def structure(self) -> Structure:
        """The immutable structure that backends receive."""
        return self._structure

    def to_json(self) -> str:
        """Versioned JSON serialisation of the structure."""
        return self._structure.to_json()

    def with_rewards(self, rewards: Sequence[float] | Callable[[tuple[int, ...]], float]) -> Graph:
        """The same chain with rewards (a sequence, or a function of the state label)."""
        s = self._structure
        if callable(rewards):
            if s.states is None:
                raise ModelError("reward function given but the graph has no state labels")
            rewards = [float(rewards(state)) for state in self.states]
        fields = {k: getattr(s, k) for k in s.__dataclass_fields__}
        fields["rewards"] = rewards
        return Graph(Structure(**fields))

    @property
    def nr_states(self) -> int:
        return self._structure.nr_states

    @property
    def nr_edges(self) -> int:
        return self._structure.nr_edges

    @property
    def nr_params(self) -> int:
        return self._structure.nr_params

    @property
    def discrete(self) -> bool:
        return self._structure.discrete

    @property
    def states(self) -> tuple[tuple[int, ...], ...] | None:
        """State tuples in index order (None when built without labels).

        Graphs built with :meth:`from_frontier` keep their labels as one integer array,
        ``graph.structure().states`` (N, d); the tuples are made on first access.
        """
        labels = self._structure.states
        if not isinstance(labels, np.ndarray):
            return labels
        if self._state_tuples is None:
            self._state_tuples = tuple(map(tuple, labels.tolist()))
        return self._state_tuples

    @property
    def alpha(self) -> np.ndarray:
        return self._structure.alpha

    @property
    def rewards(self) -> np.ndarray | None:
        return self._structure.rewards

    def sub_intensity(self, theta: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Dense ``(M, exit)`` at theta: ``S`` and ``-S 1`` (continuous) or ``T`` and ``t``.

        For small models, tests and teaching; backends never use it.
        """
        s = self._structure
        w = s.weights(np.asarray(theta, dtype=np.float64))
        n = s.nr_states
        M = np.zeros((n, n))
        exit_w = np.zeros(n)
        for e in range(s.nr_edges):
            i, j = int(s.src[e]), int(s.dst[e])
            if j == i:
                continue
            if j < 0:
                exit_w[i] += w[e]
            else:
                M[i, j] += w[e]
            M[i, i] -= w[e]
        if s.discrete:
            M[np.diag_indices(n)] += 1.0
        return M, exit_w

    def __repr__(self) -> str:
        kind = "discrete" if self.discrete else "continuous"
        rew = ", rewards" if self.rewards is not None else ""
        return (
            f"Graph({kind}, nr_states={self.nr_states}, nr_edges={self.nr_edges}, "
            f"nr_params={self.nr_params}{rew})"
        )
