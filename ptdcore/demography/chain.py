"""The lineage chain of a demographic model as JAX functions of the model's values.

Between event times the chain is homogeneous with generator S_k; across an interval of
length D it is carried by Van Loan's block exponentials,

    expm(D [[S, R], [0, 0]]) = [[e^{SD}, int_0^D e^{Ss} ds R], [0, I]],

which give the state at the interval's end and the rewards accumulated over it at once
(the second-order block [[S, D_i, 0], [0, S, R], [0, 0, 0]] the cross moments); the last,
open interval by solves with S. At an event time the state vector is multiplied by the
event's map (a pulse, a split). Every step is a JAX operation, so that jit, grad and
hessian are exact in every value, event times included. Dense: for state spaces up to a
few thousand states (the model reports its size).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from .lineages import Structure
from .schedule import Schedule

MAX_SQUARINGS = 64
"""Squarings allowed in the matrix exponential: rate x time up to about 5e19 (jax's default,
16, returns NaN past about 3.5e5, which a long bottleneck reaches)."""


def matrix_exponential(A: Any) -> Any:
    from jax.scipy.linalg import expm

    return expm(A, max_squarings=MAX_SQUARINGS)


STIFF = 1.0
"""An interval whose slowest state's out-rate times its length is at least this is
integrated by solves, ``int_0^D p e^{Ss} ds = (p - p e^{SD}) (-S)^{-1}`` (no cancellation
there, and exact where the block exponential's squarings lose digits: a long bottleneck);
shorter ones by the block exponential (exact where the solves would cancel)."""


def _stiff(S: Any, D: Any) -> tuple[Any, Any]:
    """(the interval is stiff, S where it is and -I where not: safe to solve with)."""
    jnp = _jnp()
    stiff = jnp.min(-jnp.diag(S)) * D >= STIFF
    return stiff, jnp.where(stiff, S, -jnp.eye(S.shape[0], dtype=S.dtype))


def _jnp() -> Any:
    import jax.numpy as jnp

    return jnp


def valid(sched: Schedule, values: Any) -> Any:
    """True where every size is positive, rate non-negative, proportion in [0, 1] and
    the event times positive and in the model's order."""
    jnp = _jnp()
    kinds = np.array(sched.kinds)
    ok = jnp.all(jnp.isfinite(values))
    for kind, test in (
        ("size", lambda v: v > 0), ("rate", lambda v: v >= 0),
        ("proportion", lambda v: (v >= 0) & (v <= 1)),
    ):  # fmt: skip
        idx = np.flatnonzero(kinds == kind)
        if idx.size:
            ok &= jnp.all(test(values[idx]))
    if sched.times:
        t = values[np.array(sched.times)]
        ok &= jnp.all(jnp.diff(jnp.concatenate([jnp.zeros(1), t])) > 0)
    return ok


def generator(struct: Structure, k: int, values: Any, ploidy: int) -> tuple[Any, Any]:
    """(S_k, exit rates) of interval k, over its own states (``struct.active[k]``)."""
    jnp = _jnp()
    n = struct.active[k].size
    S = jnp.zeros((n, n), dtype=values.dtype)
    exit_rate = jnp.zeros(n, dtype=values.dtype)
    coal, mig = struct.coalescence[k], struct.migration[k]
    if coal.size:
        rate = coal[:, 2] / (ploidy * values[coal[:, 3]])
        inner = coal[:, 1] >= 0
        S = S.at[coal[inner, 0], coal[inner, 1]].add(rate[inner])
        exit_rate = exit_rate.at[coal[~inner, 0]].add(rate[~inner])
    if mig.size:
        S = S.at[mig[:, 0], mig[:, 1]].add(mig[:, 2] * values[mig[:, 3]])
    S = S - jnp.diag(S.sum(axis=1) + exit_rate)
    return S, exit_rate


def cross_event(struct: Structure, k: int, values: Any, x: Any) -> Any:
    """Carry x (..., states of interval k) across event time k into interval k + 1: each
    move's map applied as a sparse sum."""
    jnp = _jnp()
    n = struct.size
    full = jnp.zeros((*x.shape[:-1], n), values.dtype).at[..., struct.active[k]].set(x)
    for rows, exps, move in struct.maps[k]:
        named = [values[i] for i in move.prob if i >= 0]
        probs = list(named)
        if -1 in move.prob:
            probs.append(1.0 - sum(named) if named else jnp.ones((), values.dtype))
        if move.stay:
            probs.append(1.0 - sum(probs))
        p = jnp.stack([jnp.asarray(q, values.dtype) for q in probs])
        weight = rows[:, 2] * jnp.prod(p[None, :] ** exps, axis=1)
        src, dst = rows[:, 0].astype(int), rows[:, 1].astype(int)
        full = jnp.zeros_like(full).at[..., dst].add(full[..., src] * weight)
    return full[..., struct.active[k + 1]]


def start(struct: Structure, values: Any) -> Any:
    jnp = _jnp()
    return jnp.zeros(struct.active[0].size, values.dtype).at[0].set(1.0)


def durations(sched: Schedule, values: Any) -> list[Any]:
    jnp = _jnp()
    t = [jnp.zeros((), values.dtype)] + [values[i] for i in sched.times]
    return [t[k + 1] - t[k] for k in range(len(sched.times))]


def expected_rewards(sched: Schedule, struct: Structure, R: np.ndarray, values: Any,
                     ploidy: int) -> Any:  # fmt: skip
    """E[int r(X_t) dt] for every column of R (states x m)."""

    jnp = _jnp()
    m = R.shape[1]
    p = start(struct, values)
    total = jnp.zeros(m, values.dtype)
    spans = durations(sched, values)
    for k in range(len(sched.intervals)):
        S, _ = generator(struct, k, values, ploidy)
        Rk = R[struct.active[k]]
        n = Rk.shape[0]
        if k + 1 == len(sched.intervals):
            w = jnp.linalg.solve(-S.T, p)
            return total + w @ Rk
        wide = m > n
        B = jnp.eye(n, dtype=values.dtype) if wide else jnp.asarray(Rk)
        c = B.shape[1]
        A = jnp.block([[S, B], [jnp.zeros((c, n + c), values.dtype)]])
        E = matrix_exponential(spans[k] * A)
        acc = p @ E[:n, n:]
        v = p @ E[:n, :n]
        stiff, S_safe = _stiff(S, spans[k])
        by_solves = jnp.linalg.solve(-S_safe.T, p - v) @ Rk
        total = total + jnp.where(stiff, by_solves, acc @ Rk if wide else acc)
        p = cross_event(struct, k, values, v)
    raise AssertionError("a schedule has at least one interval")


def reward_cross_moments(sched: Schedule, struct: Structure, R: np.ndarray, values: Any,
                         ploidy: int) -> tuple[Any, Any]:  # fmt: skip
    """(E[Y_j], E[Y_i Y_j]) of the accumulated rewards Y_j = int r_j(X_t) dt."""
    import jax

    jnp = _jnp()
    m = R.shape[1]
    p = start(struct, values)
    u = jnp.zeros((m, p.size), values.dtype)  # u_i = E[Y_i(t); X_t = .]
    mean = jnp.zeros(m, values.dtype)
    C = jnp.zeros((m, m), values.dtype)  # C_ij = int u_i . r_j dt
    spans = durations(sched, values)
    zeros = jnp.zeros
    for k in range(len(sched.intervals)):
        S, _ = generator(struct, k, values, ploidy)
        Rj = jnp.asarray(R[struct.active[k]])
        n = Rj.shape[0]
        if k + 1 == len(sched.intervals):
            X = jnp.linalg.solve(-S, Rj)  # (n x m)
            q = jnp.linalg.solve(-S.T, p)
            mean = mean + q @ Rj
            C = C + u @ X + (Rj * q[:, None]).T @ X
            return mean, C + C.T
        # one column after the other (lax.map): a vmapped expm can wedge XLA CPU's
        # thread pool (jax-ml/jax#25861), and one column's block is all the memory needed
        u_next, acc = jax.lax.map(partial(_second_order, S, Rj, spans[k], p), (Rj.T, u))
        E0 = matrix_exponential(spans[k] * S)
        A1 = jnp.block([[S, Rj], [zeros((m, n + m), values.dtype)]])
        E1 = matrix_exponential(spans[k] * A1)
        v = p @ E0
        # a stiff interval by solves, as the open last one but with the ends subtracted:
        # int v = (p - v(D)) U, int u_i . r_j = sum_s q_s r_i(s) x_j(s) + (u_i - u_i(D)) . x_j
        stiff, S_safe = _stiff(S, spans[k])
        X = jnp.linalg.solve(-S_safe, Rj)
        q = jnp.linalg.solve(-S_safe.T, p - v)
        mean = mean + jnp.where(stiff, q @ Rj, p @ E1[:n, n:])
        C = C + jnp.where(stiff, (Rj * q[:, None]).T @ X + (u - u_next) @ X, acc)
        p, u = cross_event(struct, k, values, v), cross_event(struct, k, values, u_next)
    raise AssertionError("a schedule has at least one interval")


def _second_order(S: Any, R: Any, D: Any, p: Any, column: tuple[Any, Any]) -> tuple[Any, Any]:
    """[v, u_i, acc_i] across an interval of length D from [p, u_i, 0]: (u_i at its end,
    int u_i . r_j for every j); ``column`` is (r_i, u_i)."""

    jnp = _jnp()
    n, m = R.shape
    r_i, u_i = column
    zeros = jnp.zeros
    A = jnp.block([
        [S, jnp.diag(r_i), zeros((n, m), S.dtype)],
        [zeros((n, n), S.dtype), S, R],
        [zeros((m, 2 * n + m), S.dtype)],
    ])  # fmt: skip
    E = matrix_exponential(D * A)
    u_next = p @ E[:n, n : 2 * n] + u_i @ E[n : 2 * n, n : 2 * n]
    acc = p @ E[:n, 2 * n :] + u_i @ E[n : 2 * n, 2 * n :]
    return u_next, acc


def interval_starts(sched: Schedule, struct: Structure, values: Any, ploidy: int):
    """The state vector at the start of each interval, the generators and exit rates."""

    jnp = _jnp()
    p = start(struct, values)
    spans = durations(sched, values)
    starts, gens, exits = [], [], []
    for k in range(len(sched.intervals)):
        S, ex = generator(struct, k, values, ploidy)
        starts.append(p)
        gens.append(S)
        exits.append(ex)
        if k + 1 < len(sched.intervals):
            p = cross_event(struct, k, values, p @ matrix_exponential(spans[k] * S))
    # padded to one size, so that a time picks its interval by index
    n = max(x.size for x in starts)
    pad = lambda x, *axes: jnp.pad(x, [(0, n - x.shape[a]) for a in axes])  # noqa: E731
    return (
        jnp.stack([pad(x, 0) for x in starts]),
        jnp.stack([pad(x, 0, 1) for x in gens]),
        jnp.stack([pad(x, 0) for x in exits]),
    )


def absorption_moments(sched: Schedule, struct: Structure, values: Any, ploidy: int) -> Any:
    """(E[T], E[T^2]) of the time to the last exit: int sf and 2 int t sf over the
    intervals, with the third-order block for int s e^{Ss} ds."""

    jnp = _jnp()
    p = start(struct, values)
    spans = durations(sched, values)
    t0 = jnp.zeros((), values.dtype)
    m1 = m2 = jnp.zeros((), values.dtype)
    for k in range(len(sched.intervals)):
        S, _ = generator(struct, k, values, ploidy)
        n = S.shape[0]
        one = jnp.ones(n, values.dtype)
        eye, zero = jnp.eye(n, dtype=values.dtype), jnp.zeros((n, n), values.dtype)
        if k + 1 == len(sched.intervals):
            w = jnp.linalg.solve(-S.T, p)  # p (-S)^-1
            w2 = jnp.linalg.solve(-S.T, w)  # p S^-2
            return m1 + w @ one, m2 + 2 * (t0 * (w @ one) + w2 @ one)
        D = spans[k]
        A = jnp.block([[S, eye, zero], [zero, zero, eye], [zero, zero, zero]])
        E = matrix_exponential(D * A)
        F1, F2 = E[:n, n : 2 * n], E[:n, 2 * n :]  # int e^{Su}, int e^{Su} (D - u)
        v = p @ E[:n, :n]
        # by solves where stiff: int e^{Su} = (I - e^{SD}) (-S)^-1 and
        # int u e^{Su} = D e^{SD} S^-1 - (e^{SD} - I) S^-2
        stiff, S_safe = _stiff(S, D)
        q = jnp.linalg.solve(-S_safe.T, p - v)  # p int e^{Su}
        r = jnp.linalg.solve(-S_safe.T, v)  # p e^{SD} (-S)^-1
        first = jnp.where(stiff, q @ one, p @ F1 @ one)
        timed = jnp.where(stiff, (jnp.linalg.solve(-S_safe.T, q) - D * r) @ one,
                          p @ (D * F1 - F2) @ one)  # fmt: skip
        m1 = m1 + first
        m2 = m2 + 2 * (t0 * first + timed)
        p = cross_event(struct, k, values, v)
        t0 = t0 + D
    raise AssertionError("a schedule has at least one interval")
