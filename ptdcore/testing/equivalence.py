"""Cross-backend equivalence: compare pmf, moments and both Jacobians pairwise."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import Backend
from ..graph import Graph
from ..registry import get_backend, list_backends
from ..structure import Structure

OUTPUTS = ("pmf", "moments", "dpmf", "dmoments")
# Values below this fraction of the largest magnitude in their row are compared
# in absolute terms against that fraction (the contract's accuracy floor).
FLOOR_FRACTION = 1e-12


@dataclass(frozen=True)
class Comparison:
    """The worst disagreement of one output between two backends."""

    first: str
    second: str
    output: str
    max_rel_diff: float
    index: tuple[int, ...]
    first_value: float
    second_value: float
    rtol: float

    @property
    def passed(self) -> bool:
        return bool(self.max_rel_diff <= self.rtol)

    def describe(self) -> str:
        return (
            f"{self.first} vs {self.second}: {self.output}{list(self.index)} differs by "
            f"{self.max_rel_diff:.3e} relative ({self.first_value!r} vs {self.second_value!r}; "
            f"rtol={self.rtol:g})"
        )


def relative_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise |a - b| / max(|a|, |b|, floor); the floor is 1e-12 x the row's largest value.

    Rows are the first axis (one theta). Matching NaNs count as equal; a NaN
    against a number counts as infinitely different.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    both_nan = np.isnan(a) & np.isnan(b)
    one_nan = np.isnan(a) ^ np.isnan(b)
    mag = np.maximum(np.abs(np.nan_to_num(a)), np.abs(np.nan_to_num(b)))
    axes = tuple(range(1, a.ndim))
    row_max = mag.max(axis=axes, keepdims=True) if a.ndim > 1 and a.size else mag
    denom = np.maximum(mag, FLOOR_FRACTION * row_max)
    diff = np.abs(np.nan_to_num(a) - np.nan_to_num(b))
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(denom > 0, diff / np.where(denom > 0, denom, 1.0), 0.0)
    rel = np.where(both_nan, 0.0, rel)
    return np.where(one_nan, np.inf, rel)


def _as_structure(model: Any) -> Structure:
    if isinstance(model, Structure):
        return model
    if isinstance(model, Graph):
        return model.structure()
    structure = getattr(model, "structure", None)
    if isinstance(structure, Structure):
        return structure
    raise TypeError(f"expected a Graph, Structure or ptdcore.Model, got {type(model).__name__}")


def evaluate_backends(
    model: Any,
    thetas: Any,
    times: Any,
    nr_moments: int,
    backends: Sequence[str | Backend] | None = None,
) -> dict[str, tuple[np.ndarray, ...]]:
    """Each backend's (pmf, moments, dpmf, dmoments) at the same inputs."""
    structure = _as_structure(model)
    thetas = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
    times = np.asarray(times, dtype=np.float64)
    chosen = list(backends) if backends is not None else list_backends()
    results = {}
    for b in chosen:
        backend = get_backend(b)
        out = backend.compute_pmf_and_moments(structure, thetas, times, nr_moments, jacobian=True)
        results[backend.name] = tuple(np.asarray(x, dtype=np.float64) for x in out)
    return results


def compare_backends(
    model: Any,
    thetas: Any,
    times: Any,
    nr_moments: int = 2,
    backends: Sequence[str | Backend] | None = None,
    rtol: float = 1e-12,
) -> list[Comparison]:
    """Every pair of backends on every output; one :class:`Comparison` each."""
    results = evaluate_backends(model, thetas, times, nr_moments, backends)
    comparisons = []
    for first, second in itertools.combinations(results, 2):
        for label, a, b in zip(OUTPUTS, results[first], results[second], strict=True):
            if a.shape != b.shape:
                raise AssertionError(f"{first} vs {second}: {label} shapes {a.shape} vs {b.shape}")
            rel = relative_difference(a, b)
            if rel.size == 0:
                comparisons.append(Comparison(first, second, label, 0.0, (), np.nan, np.nan, rtol))
                continue
            idx = np.unravel_index(int(np.argmax(rel)), rel.shape)
            comparisons.append(Comparison(
                first, second, label, float(rel[idx]), tuple(int(i) for i in idx),
                float(a[idx]), float(b[idx]), rtol,
            ))  # fmt: skip
    return comparisons


def assert_backends_equivalent(
    model_or_structure: Any,
    thetas: Any,
    times: Any,
    nr_moments: int = 2,
    backends: Sequence[str | Backend] | None = None,
    rtol: float = 1e-12,
) -> list[Comparison]:
    """Assert every pair of backends agrees to ``rtol`` on pmf, moments and both Jacobians.

    Raises
    ------
    AssertionError
        Naming the backends, the output, the index and the size of each disagreement.
    """
    comparisons = compare_backends(model_or_structure, thetas, times, nr_moments, backends, rtol)
    failures = [c for c in comparisons if not c.passed]
    if failures:
        raise AssertionError(
            "backends disagree:\n" + "\n".join("  " + c.describe() for c in failures)
        )
    return comparisons


def format_table(comparisons: Sequence[Comparison]) -> str:
    """A text table: one row per backend pair, max relative difference per output."""
    pairs: dict[tuple[str, str], dict[str, Comparison]] = {}
    for c in comparisons:
        pairs.setdefault((c.first, c.second), {})[c.output] = c
    header = f"{'backends':<22}" + "".join(f"{o:>12}" for o in OUTPUTS) + "  result"
    lines = [header, "-" * len(header)]
    for (first, second), row in pairs.items():
        ok = all(c.passed for c in row.values())
        cells = "".join(
            f"{row[o].max_rel_diff:>12.2e}" if o in row else f"{'-':>12}" for o in OUTPUTS
        )
        lines.append(f"{first + ' / ' + second:<22}{cells}  {'pass' if ok else 'FAIL'}")
    return "\n".join(lines)
