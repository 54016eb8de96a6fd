"""``Demography``: a demes model with its samples, as JAX functions of the model's values."""

from __future__ import annotations

from typing import Any

import numpy as np

from .chain import (
    absorption_moments,
    durations,
    expected_rewards,
    interval_starts,
    matrix_exponential,
    reward_cross_moments,
    valid,
)
from .engine_chain import EngineChain, relabels_only
from .lineage_counts import time_with_k_lineages
from .lineages import Structure, build, check_meeting, reward_matrix
from .schedule import Schedule, check_samples

KINDS = ("joint", "pooled", "marginal")
DENSE_MAX_STATES = 5_000
"""Largest chain built for the dense route (its block exponentials hold a few matrices of
this order squared: 5,000 states are about 0.8 GB each)."""
ENGINE_MAX_STATES = 200_000
"""Largest chain built where the engine's sparse route can take it (memory grows with the
edges; Python builds about 14,000 states a second)."""


def lumping_weights(n: int) -> np.ndarray:
    """((n - 1) x (n + 1)): from the expected time with k = 2..n lineages to the expected
    SFS, E[xi_i] = sum_k k E[T_k] C(n-i-1, k-2) / C(n-1, k-1) (one panmictic deme: the
    tree's shape does not depend on its times; Griffiths and Tavare 1998).

    By the ratio of consecutive entries, C(n-i-2, k-2) / C(n-i-1, k-2) =
    (n-i-k+1) / (n-i-1), from W[k, 1] = k (k - 1) / (n - 1): positive factors, so every
    entry is exact to n ulps (n = 1,000 in milliseconds, where binomials take seconds)."""
    k = np.arange(2, n + 1, dtype=np.float64)
    W = np.zeros((n - 1, n + 1))
    W[:, 1] = k * (k - 1.0) / (n - 1.0)
    for i in range(1, n - 1):
        W[:, i + 1] = W[:, i] * np.maximum(n - i - k + 1.0, 0.0) / (n - i - 1.0)
    return W


class Demography:
    """A demographic model and a sample, built once; see :func:`from_demes`.

    Attributes
    ----------
    parameter_names : list of str
        Every number of the model a user may fit (demes paths); event times equal in the
        model are one parameter, named by the first of ``aliases[name]``.
    values : numpy.ndarray
        Their values in the model.
    representation : str
        The state space used for the SFS, and its size.
    """

    def __init__(self, sched: Schedule, samples: dict[str, int], ploidy: int = 2,
                 max_states: int | None = None) -> None:  # fmt: skip
        if ploidy not in (1, 2) and not (isinstance(ploidy, int) and ploidy > 0):
            raise ValueError(f"ploidy={ploidy!r}: a positive integer")
        self.schedule = sched
        self.ploidy = int(ploidy)
        self.counts = check_samples(sched, samples)
        self.sampled = [sched.demes[d] for d in np.flatnonzero(self.counts)]
        self.sample_sizes = tuple(int(c) for c in self.counts[self.counts > 0])
        self.shape = tuple(c + 1 for c in self.sample_sizes)
        self.parameter_names = list(sched.names)
        self.values = np.array(sched.values, dtype=np.float64)
        self.aliases = dict(sched.aliases)
        self._engine_possible = relabels_only(sched)
        if max_states is None:
            max_states = ENGINE_MAX_STATES if self._engine_possible else DENSE_MAX_STATES
        self._max_states = max_states
        self._chains: dict[str, Structure] = {}
        self._engine_chains: dict[str, EngineChain] = {}
        self._counts_chain = self._chain("count")
        check_meeting(sched, self._counts_chain)
        n = self._n = int(self.counts.sum())  # all sampled genomes
        panmictic = all(len({d for d, _, _ in s}) == 1 for s in self._counts_chain.states)
        self.lumped = panmictic and len(self.sampled) == 1
        if self.lumped:
            self._lumping_weights = lumping_weights(n)
            self.representation = f"lineage counts ({n} lineages: their distribution, no matrix)"
        else:
            self.representation = (
                "block counts per deme (joint: lineage types are sample counts per deme; "
                "pooled: their total), built on first use; "
                + ("on the engine (sparse) where one interval or more than "
                   f"{DENSE_MAX_STATES:,} states, else dense"
                   if self._engine_possible else "dense")
            )  # fmt: skip
        self._cache: dict[str, Any] = {}

    def _chain(self, types: str) -> Structure:
        """The lineage chain with these lineage types, built once, on first use."""
        if types not in self._chains:
            self._chains[types] = build(self.schedule, self.counts, types, self._max_states)
        return self._chains[types]

    def state_space_size(self, kind: str = "joint") -> int:
        """The number of states behind ``expected_sfs(kind=...)`` (building it)."""
        if self.lumped:
            return self._counts_chain.size
        kind = "pooled" if kind == "pooled" else "joint"
        sparse = self._on_engine(kind)
        return self._chain(kind).size if sparse is None else sparse.size

    def _lumped_sizes(self) -> np.ndarray:
        """The index of the size of the deme that holds the lineages, per interval (one
        deme: the sampled one and its ancestors)."""
        chain, intervals = self._counts_chain, self.schedule.intervals
        holder = [chain.states[int(chain.active[k][0])][0][0] for k in range(len(intervals))]
        return np.array([intervals[k].size[d] for k, d in enumerate(holder)])

    def _lumped_times(self, v: Any) -> Any:
        """E[T_k], k = 2..n, of the lumped model (generations), by the lineage-count
        distribution at the event times in coalescent units (no n x n matrix)."""
        import jax.numpy as jnp

        sizes = v[self._lumped_sizes()]
        spans = jnp.stack(durations(self.schedule, v)) if self.schedule.times else sizes[:0]
        coalescent = jnp.cumsum(spans / (self.ploidy * sizes[:-1]))
        return time_with_k_lineages(self._n, sizes, coalescent, self.ploidy)

    def _shape(self, kind: str) -> tuple[int, ...]:
        """The shape of the SFS computed for ``kind`` ("pooled" or "joint")."""
        return (self._n + 1,) if kind == "pooled" else self.shape

    def _sfs_route(self, kind: str) -> tuple[Structure, np.ndarray]:
        """(chain, rewards) of the dense expected SFS of this kind, shaped as
        ``_shape(kind)`` (structured models: the lumped one needs no chain)."""
        chain = self._chain(kind)
        return chain, reward_matrix(chain.states, self._shape(kind))

    def _on_engine(self, kind: str) -> EngineChain | None:
        """The engine's sparse chain for this kind, where the model allows it (its events
        only relabel lineages) and it is the better route: one interval (a solve), or
        more states than the dense route takes. None: the dense route."""
        if not self._engine_possible:
            return None
        if kind not in self._engine_chains:
            self._engine_chains[kind] = EngineChain(
                self.schedule, self.counts, kind, self._shape(kind), self.ploidy, self._max_states
            )
        sparse = self._engine_chains[kind]
        if len(self.schedule.intervals) > 1 and sparse.size <= DENSE_MAX_STATES:
            return None
        return sparse

    def __repr__(self) -> str:
        return (
            f"Demography(samples={dict(zip(self.sampled, self.sample_sizes, strict=True))}, "
            f"{len(self.parameter_names)} parameters, {self.representation})"
        )

    # -- values ---------------------------------------------------------------------
    def _values(self, values: Any) -> Any:
        import jax.numpy as jnp

        from ..float64 import require_float64

        require_float64("ptdcore.demography")
        v = jnp.asarray(self.values if values is None else values, dtype=jnp.float64)
        if v.shape != self.values.shape:
            raise ValueError(
                f"values has shape {v.shape}; this model has {self.values.size} parameters "
                f"({self.parameter_names})"
            )
        return v

    def _jitted(self, name: str, fn: Any) -> Any:
        if name not in self._cache:
            import jax

            self._cache[name] = jax.jit(fn)
        return self._cache[name]

    def _guard(self, values: Any, out: Any) -> Any:
        import jax.numpy as jnp

        return jnp.where(valid(self.schedule, values), out, jnp.nan)

    # -- the SFS ----------------------------------------------------------------------
    def expected_sfs(self, values: Any = None, kind: str = "joint") -> Any:
        """The expected SFS in generations (branch lengths; times a per-generation
        mutation rate and the sequence length: expected counts).

        Parameters
        ----------
        values : array of shape (len(parameter_names),), optional
            The model's numbers (default: ``self.values``); a JAX array to differentiate.
        kind : {"joint", "pooled", "marginal"}
            ``"joint"``: shape ``prod(n_i + 1)`` over the sampled demes (in the model's
            order), the all-ancestral and all-derived corners included and zero;
            ``"pooled"``: shape ``(n + 1,)``, all samples together (its own, smaller
            chain); ``"marginal"``: a list, one SFS per sampled deme.
        """
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r}; expected one of {KINDS}")
        route = "pooled" if kind == "pooled" and not self.lumped else "joint"
        if route not in self._cache and self.lumped:

            def sfs(v: Any) -> Any:
                out = self._lumped_times(v) @ self._lumping_weights
                return self._guard(v, out).reshape(self.shape)

            self._jitted(route, sfs)
        elif route not in self._cache:
            sparse, shape = self._on_engine(route), self._shape(route)
            if sparse is None:
                struct, R = self._sfs_route(route)

            def sfs(v: Any) -> Any:
                if sparse is not None:
                    out = sparse.means(v)
                else:
                    out = expected_rewards(self.schedule, struct, R, v, self.ploidy)
                return self._guard(v, out).reshape(shape)

            self._jitted(route, sfs)
        out = self._cache[route](self._values(values))
        return out if route == "pooled" else from_joint(out, kind)

    def sfs_moments(self, values: Any = None, kind: str = "pooled") -> tuple[Any, Any]:
        """(mean, cross moments) of the SFS's branch lengths, as ``reward_moments``
        returns them: ``E[xi_i]`` and ``E[xi_i xi_j]`` (flattened joint index for
        ``kind="joint"``; ``kind="pooled"`` sums the demes).

        One deme (the lumped case) goes through the engine's epochs on Kingman's
        block-counting space (exact first derivatives; second ones from the reference
        backend's algorithm up to its 300 states: n <= 17); other models through the
        block-counting chain, on the engine where ``expected_sfs`` uses it (exact first
        derivatives; second ones as there), else dense (derivatives of every order)."""
        if kind not in ("joint", "pooled"):
            raise ValueError(f"kind={kind!r}; expected 'joint' or 'pooled'")
        if self.lumped:
            return self._engine_moments(self._values(values))
        sparse = self._on_engine(kind)
        if sparse is None:
            struct, R = self._sfs_route(kind)

        def moments(v: Any) -> tuple[Any, Any]:
            if sparse is not None:
                mean, cross = sparse.moments(v)
            else:
                mean, cross = reward_cross_moments(self.schedule, struct, R, v, self.ploidy)
            return self._guard(v, mean), self._guard(v, cross)

        return self._jitted(f"moments-{kind}", moments)(self._values(values))

    def _engine_moments(self, v: Any) -> tuple[Any, Any]:
        """The lumped model's SFS moments from the engine: Kingman's SFS chain with one
        epoch per interval, pair rate ``1 / (ploidy N)`` of the deme holding the
        lineages, breaks at the event times; padded with the zero corners."""
        import jax.numpy as jnp

        if "engine-moments" not in self._cache:
            from ..coalescent import kingman_sfs
            from ..reward_matrix import reward_moments

            graph, rewards = kingman_sfs(self._n)
            K = len(self.schedule.intervals)
            sizes = self._lumped_sizes()
            times = np.array(self.schedule.times, dtype=int)
            rm = reward_moments(graph, rewards, epochs=K)

            def moments(x: Any) -> tuple[Any, Any]:
                rows = (1.0 / (self.ploidy * x[sizes]))[:, None]
                mean, cross = rm(rows, x[times]) if K > 1 else rm(rows[0])
                mean = jnp.pad(mean, (1, 1))
                return self._guard(x, mean), self._guard(x, jnp.pad(cross, ((1, 1), (1, 1))))

            self._jitted("engine-moments", moments)
        return self._cache["engine-moments"](v)

    # -- the T_MRCA --------------------------------------------------------------------
    def tmrca(self, values: Any = None) -> TMRCA:
        """The time to the most recent common ancestor of all samples (generations)."""
        return TMRCA(self, self._values(values))


def pooling_matrix(shape: tuple[int, ...]) -> np.ndarray:
    """(prod(shape) x (n + 1)): joint index to the total derived count."""
    idx = np.indices(shape).reshape(len(shape), -1).sum(axis=0)
    P = np.zeros((idx.size, sum(s - 1 for s in shape) + 1))
    P[np.arange(idx.size), idx] = 1.0
    return P


def from_joint(joint: Any, kind: str) -> Any:
    """The pooled or marginal SFS of a joint one (any array module)."""
    if kind == "joint":
        return joint
    if kind == "pooled":
        import jax.numpy as jnp

        return jnp.asarray(joint).reshape(-1) @ pooling_matrix(joint.shape)
    axes = range(joint.ndim)
    return [joint.sum(axis=tuple(a for a in axes if a != d)) for d in axes]


class TMRCA:
    """The T_MRCA of a :class:`Demography` at fixed values: ``pdf``, ``cdf``, ``sf``,
    ``moments`` and ``sample`` (generations)."""

    def __init__(self, model: Demography, values: Any) -> None:
        self._model, self._values = model, values
        sched, struct, ploidy = model.schedule, model._counts_chain, model.ploidy
        starts, gens, exits = interval_starts(sched, struct, values, ploidy)
        self._starts, self._gens, self._exits = starts, gens, exits
        import jax.numpy as jnp

        self._edges = jnp.concatenate([jnp.zeros(1), values[np.array(sched.times, dtype=int)]])
        self._ok = valid(sched, values)

    def _state(self, t: Any) -> tuple[Any, Any]:
        import jax
        import jax.numpy as jnp

        t = jnp.asarray(t, dtype=jnp.float64)

        def one(s: Any) -> tuple[Any, Any]:
            k = jnp.clip(jnp.searchsorted(self._edges, s, side="right") - 1, 0)
            tau = jnp.maximum(s - self._edges[k], 0.0)
            p = self._starts[k] @ matrix_exponential(tau * self._gens[k])
            return p, self._exits[k]

        p, ex = jax.vmap(one)(t.reshape(-1))
        return p.reshape((*t.shape, -1)), ex.reshape((*t.shape, -1))

    def _finish(self, t: Any, out: Any, below: float) -> Any:
        import jax.numpy as jnp

        t = jnp.asarray(t, dtype=jnp.float64)
        out = jnp.where(t < 0, below, out)
        return jnp.where(self._ok & ~jnp.isnan(t), out, jnp.nan)

    def pdf(self, t: Any) -> Any:
        p, ex = self._state(t)
        return self._finish(t, (p * ex).sum(-1), 0.0)

    def sf(self, t: Any) -> Any:
        p, _ = self._state(t)
        return self._finish(t, p.sum(-1), 1.0)

    def cdf(self, t: Any) -> Any:
        return 1.0 - self.sf(t)

    def moments(self) -> Any:
        """``[E[T], E[T^2]]``."""
        import jax.numpy as jnp

        m = self._model
        m1, m2 = absorption_moments(m.schedule, m._counts_chain, self._values, m.ploidy)
        return jnp.where(self._ok, jnp.stack([m1, m2]), jnp.nan)

    def sample(self, size: int, seed: int = 0) -> np.ndarray:
        """Draws by inverting the cdf (bisection to 1e-12 relative)."""
        rng = np.random.default_rng(seed)
        u = rng.uniform(size=size)
        hi = np.full(size, float(self.moments()[0]) * 4.0)
        while np.any(self.cdf(hi) < u):
            hi = np.where(np.asarray(self.cdf(hi)) < u, hi * 2.0, hi)
        lo = np.zeros(size)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            below = np.asarray(self.cdf(mid)) < u
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return 0.5 * (lo + hi)
