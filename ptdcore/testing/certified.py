"""A certified reference: ball arithmetic (Arb, through python-flint) with rigorous bounds.

The ``reference`` backend is independent of the engine but computes in float64, so on
stiff chains or far tails it is 1e2 to 1e6 times less accurate than the engine it
checks. Here every value is computed in arbitrary-precision interval (ball) arithmetic:
the result is a midpoint and a radius, and the true value lies within the radius
(Arb's guarantee). A backend is then judged by how far it lies *outside* the ball, so
the check is as sharp as the tolerance asked for.

What is computed, for one theta (continuous models; each ``expm`` is Arb's certified
matrix exponential):

- density ``alpha expm(S t) s``, survival ``alpha expm(S t) 1``, distribution function
  ``atom + alpha [expm([[S, s], [0, 0]] t)]_{:n, n}``;
- their derivatives in theta by Van Loan's block exponential:
  ``d expm(A) = [expm([[A, dA], [0, A]])]_{upper right}``;
- moments ``E[T^k] = alpha x_k`` with ``x_k = k (-S)^{-1} x_{k-1}``, ``x_0 = 1`` (the
  factorial folded in), and ``dx_k = (-S)^{-1} (dS x_k + k dx_{k-1})``;
- discrete models: ``P(N = n) = alpha T^{n-1} t`` with derivatives from the block
  power ``[[T, dT], [0, T]]^{n-1}`` (moments of discrete models are not certified).

Rewards and epochs are not covered (:class:`NotImplementedError`). Values that cannot be
certified (a singular solve, a ball wider than ``1e-3`` of its midpoint) are NaN and
are counted, never silently compared. python-flint is an optional dependency
(``pip install python-flint``); its precision is set for the call and restored after.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Any

import numpy as np

from ..structure import Structure
from ..validation import output_code

MAX_STATES = 40
"""Larger models are refused (dense ball matrices of size 2n per parameter and time)."""
PRECISION_BITS = 256
UNCERTIFIED_WIDTH = 1e-3
"""A ball whose radius exceeds this fraction of its midpoint does not certify a value."""


@dataclass(frozen=True)
class CertifiedValues:
    """Midpoints and radii of pmf (B, T), moments (B, K) and their Jacobians; NaN where
    not certified."""

    mid: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    rad: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _flint() -> Any:
    try:
        import flint
    except ImportError:
        raise ImportError(
            "the certified reference needs python-flint: pip install python-flint"
        ) from None
    return flint


def certified_values(
    structure: Structure,
    thetas: Any,
    times: Any,
    nr_moments: int,
    prec: int = PRECISION_BITS,
    output: str = "density",
) -> CertifiedValues:
    """Certified pmf (``output`` at the times: "density", "cdf" or "sf"), moments and both
    Jacobians of ``structure`` at each theta row."""
    output_code(output)
    flint = _flint()
    if structure.nr_states > MAX_STATES:
        raise ValueError(
            f"the certified reference accepts at most {MAX_STATES} states, the model has "
            f"{structure.nr_states}"
        )
    if structure.rewards is not None or structure.epochs != 1:
        raise NotImplementedError("the certified reference covers models without rewards or epochs")
    thetas = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
    times = np.asarray(times, dtype=np.float64)
    B, T, K, P = thetas.shape[0], times.shape[0], int(nr_moments), structure.nr_params
    shapes = [(B, T), (B, K), (B, T, P), (B, K, P)]
    mid = tuple(np.full(s, np.nan) for s in shapes)
    rad = tuple(np.full(s, np.nan) for s in shapes)
    old = flint.ctx.prec
    flint.ctx.prec = prec
    try:
        for b, theta in enumerate(thetas):
            chain = _Chain(flint, structure, theta, output)
            if not chain.valid:
                continue
            for q, t in enumerate(times):
                if not (np.isfinite(t) and t >= 0) or (structure.discrete and t != np.floor(t)):
                    continue
                value, grads = chain.functional(float(t))
                _store(value, mid[0], rad[0], (b, q))
                for p in range(P):
                    _store(grads[p], mid[2], rad[2], (b, q, p))
            if K and not structure.discrete:
                for k, (value, grads) in enumerate(chain.moments(K)):
                    _store(value, mid[1], rad[1], (b, k))
                    for p in range(P):
                        _store(grads[p], mid[3], rad[3], (b, k, p))
    finally:
        flint.ctx.prec = old
    return CertifiedValues(mid, rad)


def _submatrix(flint: Any, M: Any, row: int, col: int, rows: int, cols: int) -> Any:
    """The ``rows`` x ``cols`` block of the ball matrix ``M`` at (``row``, ``col``)."""
    out = flint.arb_mat(rows, cols)
    for i in range(rows):
        for j in range(cols):
            out[i, j] = M[row + i, col + j]
    return out


def _store(ball: Any, mid: np.ndarray, rad: np.ndarray, index: tuple[int, ...]) -> None:
    if ball is None or not ball.is_finite():
        return
    m, r = float(ball.mid()), float(ball.rad())
    if r > UNCERTIFIED_WIDTH * abs(m) and r > 1e-300:
        return  # too wide to certify anything: left NaN
    mid[index], rad[index] = m, r


class _Chain:
    """The model at one theta as ball matrices: S (or T), s, alpha and their derivatives."""

    def __init__(self, flint: Any, s: Structure, theta: np.ndarray, output: str) -> None:
        arb, arb_mat = flint.arb, flint.arb_mat
        self.flint, self.arb, self.arb_mat = flint, arb, arb_mat
        n, P = s.nr_states, s.nr_params
        self.n, self.P, self.discrete = n, P, s.discrete
        coef = s.coefficient_matrix()
        self.valid = bool(np.all(np.isfinite(theta)))
        self.S = arb_mat(n, n)
        self.exit = arb_mat(n, 1)
        self.dS = [arb_mat(n, n) for _ in range(P)]
        self.dexit = [arb_mat(n, 1) for _ in range(P)]
        out = [arb(0) for _ in range(n)]
        dout = [[arb(0) for _ in range(P)] for _ in range(n)]
        for e in range(s.nr_edges):
            w = arb(float(s.constant[e]))
            for p in range(P):
                if coef[e, p]:
                    w += arb(float(coef[e, p])) * arb(float(theta[p]))
            if not self.valid or w < 0:
                self.valid = False
                return
            i, j = int(s.src[e]), int(s.dst[e])
            if j == i:  # discrete self-loop: the remainder 1 - out stays
                continue
            out[i] += w
            for p in range(P):
                dout[i][p] += arb(float(coef[e, p]))
            if j < 0:
                self.exit[i, 0] += w
                for p in range(P):
                    self.dexit[p][i, 0] += arb(float(coef[e, p]))
            else:
                self.S[i, j] += w
                for p in range(P):
                    self.dS[p][i, j] += arb(float(coef[e, p]))
        for i in range(n):
            self.S[i, i] = (1 - out[i]) if s.discrete else -out[i]
            for p in range(P):
                self.dS[p][i, i] = -dout[i][p]
        self.alpha = arb_mat([[float(a) for a in s.alpha]])
        self.atom = arb(1) - sum((arb(float(a)) for a in s.alpha), arb(0))
        self.ones = arb_mat([[1.0] for _ in range(n)])
        self.output = output

    def _van_loan(self, A: Any, dA: Any) -> Any:
        """[[A, dA], [0, A]]."""
        m = A.nrows()
        big = self.arb_mat(2 * m, 2 * m)
        for i in range(m):
            for j in range(m):
                big[i, j] = A[i, j]
                big[m + i, m + j] = A[i, j]
                big[i, m + j] = dA[i, j]
        return big

    def _corner(self, big: Any, m: int) -> tuple[Any, Any]:
        """(upper-left block, upper-right block) of a 2m x 2m matrix."""
        return _submatrix(self.flint, big, 0, 0, m, m), _submatrix(self.flint, big, 0, m, m, m)

    def _augmented(self) -> tuple[Any, list[Any]]:
        """[[S, s], [0, 0]] (discrete: [[T, t], [0, 1]]) and its derivatives."""
        n = self.n
        A = self.arb_mat(n + 1, n + 1)
        dA = [self.arb_mat(n + 1, n + 1) for _ in range(self.P)]
        for i in range(n):
            for j in range(n):
                A[i, j] = self.S[i, j]
                for p in range(self.P):
                    dA[p][i, j] = self.dS[p][i, j]
            A[i, n] = self.exit[i, 0]
            for p in range(self.P):
                dA[p][i, n] = self.dexit[p][i, 0]
        if self.discrete:
            A[n, n] = 1
        return A, dA

    def _propagate(self, A: Any, dA: Any, t: float) -> tuple[Any, Any]:
        """(expm(A t), its derivative along dA), or (A^t, its derivative) if discrete."""
        if self.discrete:
            steps = int(t)
            m = A.nrows()
            big = self._van_loan(A, dA)
            power = self.arb_mat(2 * m, 2 * m)
            for i in range(2 * m):
                power[i, i] = 1
            base = big
            while steps:
                if steps & 1:
                    power = power * base
                base = base * base
                steps >>= 1
            return self._corner(power, m)
        tt = self.arb(t)
        return self._corner(self._van_loan(A * tt, dA * tt).exp(), A.nrows())

    def functional(self, t: float) -> tuple[Any, list[Any]]:
        """The model's output (density/pmf, cdf or sf) at t, and its theta gradient."""
        n, P = self.n, self.P
        if self.output == "cdf":
            A, dA = self._augmented()
            values, grads = [], []
            for p in range(max(P, 1)):
                E, dE = self._propagate(A, dA[p] if P else A * 0, t)
                corner = self.arb_mat([[E[i, n]] for i in range(n)])
                values.append(self.atom + (self.alpha * corner)[0, 0])
                grads.append((self.alpha * self.arb_mat([[dE[i, n]] for i in range(n)]))[0, 0])
            return values[0], grads[:P]
        vector = self.ones if self.output == "sf" else self.exit
        steps = t - 1 if (self.discrete and self.output == "density") else t
        if self.discrete and self.output == "density" and t == 0:
            return self.arb(self.atom), [self.arb(0)] * P
        values, grads = [], []
        for p in range(max(P, 1)):
            E, dE = self._propagate(self.S, self.dS[p] if P else self.S * 0, steps)
            values.append((self.alpha * E * vector)[0, 0])
            if P:
                dvec = self.dexit[p] if self.output == "density" else self.ones * 0
                grads.append((self.alpha * dE * vector + self.alpha * E * dvec)[0, 0])
        return values[0], grads

    def moments(self, K: int) -> list[tuple[Any, list[Any]]]:
        """E[T^k] and its gradient, k = 1..K; None where the chain cannot be solved."""
        A = -self.S
        x = self.ones
        dx = [self.ones * 0 for _ in range(self.P)]
        out = []
        for k in range(1, K + 1):
            try:
                x_new = A.solve(x * k)
                dx = [A.solve(self.dS[p] * x_new + dx[p] * k) for p in range(self.P)]
            except ZeroDivisionError:  # singular (a closed class) or not certifiable
                return out + [(None, [None] * self.P)] * (K - len(out))
            x = x_new
            out.append(((self.alpha * x)[0, 0], [(self.alpha * d)[0, 0] for d in dx]))
        return out


def excess_over_ball(
    values: np.ndarray, mid: np.ndarray, rad: np.ndarray, floor_fraction: float
) -> np.ndarray:
    """How far each value lies outside its certified ball, relative to the midpoint's size
    (or ``floor_fraction`` of the row's largest midpoint): 0 inside the ball, NaN where the
    value was not certified."""
    values = np.asarray(values, dtype=np.float64)
    certified = np.isfinite(mid)
    mag = np.where(certified, np.abs(mid), 0.0)
    axes = tuple(range(1, mid.ndim))
    row_max = mag.max(axis=axes, keepdims=True) if mid.ndim > 1 and mid.size else mag
    denom = np.maximum(mag, floor_fraction * row_max)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        outside = np.maximum(np.abs(values - mid) - rad, 0.0)
        rel = np.where(denom > 0, outside / np.where(denom > 0, denom, 1.0), 0.0)
    rel = np.where(np.isfinite(values), rel, np.inf)
    return np.where(certified, rel, np.nan)


def certified_epoch_moments(
    structure: Structure, thetas: Any, breaks: Any, nr_moments: int, prec: int = PRECISION_BITS
) -> tuple[np.ndarray, np.ndarray]:
    """Certified ``E[T^k]``, k = 1..K, of a model whose parameters change at ``breaks``.

    ``structure`` is the model without epochs; ``thetas`` (E, P) one row per epoch. A
    finite epoch from ``a`` to ``a + D`` adds ``int_0^D (a + u)^k pi e^{S u} s du``, from
    Van Loan's ``V_i = int_0^D (D - u)^i e^{S u} du = i! expm(G D)[0, i + 1]`` (``G`` the
    block matrix with ``S`` first and identities above the diagonal) and the binomial
    expansion of ``(a + D - (D - u))^k`` (ball arithmetic keeps the cancellation honest);
    the open-ended last epoch adds ``sum_j C(k, j) a^(k - j) j! pi U^j 1``. Returns
    (midpoints, radii); NaN where a solve fails.
    """
    flint = _flint()
    arb, arb_mat = flint.arb, flint.arb_mat
    thetas = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
    breaks = np.asarray(breaks, dtype=np.float64)
    K, n = int(nr_moments), structure.nr_states
    old = flint.ctx.prec
    flint.ctx.prec = prec
    try:
        total = [arb(0) for _ in range(K)]
        pi = None
        start = arb(0)
        for e, theta in enumerate(thetas):
            chain = _Chain(flint, structure, theta, "density")
            if not chain.valid:
                return np.full(K, np.nan), np.full(K, np.nan)
            pi = chain.alpha if pi is None else pi
            if e + 1 < len(thetas):
                D = arb(float(breaks[e])) - start
                size = (K + 2) * n
                G = arb_mat(size, size)
                for i in range(n):
                    for j in range(n):
                        G[i, j] = chain.S[i, j]
                for b in range(K + 1):
                    for i in range(n):
                        G[b * n + i, (b + 1) * n + i] = 1
                X = (G * D).exp()
                v = []
                factorial = arb(1)
                for i in range(K + 1):
                    if i:
                        factorial *= i
                    block = _submatrix(flint, X, 0, (i + 1) * n, n, n)
                    v.append(factorial * (pi * block * chain.exit)[0, 0])
                end = start + D
                for k in range(1, K + 1):
                    for i in range(k + 1):
                        sign = -1 if i % 2 else 1
                        total[k - 1] += sign * comb(k, i) * end ** (k - i) * v[i]
                pi = pi * _submatrix(flint, X, 0, 0, n, n)
                start = end
            else:
                A = -chain.S
                row = pi
                J = [sum((row[0, i] for i in range(n)), arb(0))]
                try:
                    for j in range(1, K + 1):
                        row = A.transpose().solve(row.transpose() * j).transpose()
                        J.append(sum((row[0, i] for i in range(n)), arb(0)))
                except ZeroDivisionError:
                    return np.full(K, np.inf), np.zeros(K)
                for k in range(1, K + 1):
                    for j in range(k + 1):
                        total[k - 1] += comb(k, j) * start ** (k - j) * J[j]
        return (
            np.array([float(t.mid()) for t in total]),
            np.array([float(t.rad()) for t in total]),
        )
    finally:
        flint.ctx.prec = old
