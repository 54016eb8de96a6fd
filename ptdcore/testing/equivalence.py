"""Cross-backend equivalence: pmf, moments and both Jacobians, pairwise and against the reference.

What each comparison proves:

- the engine backends (``ffi``, ``pybind11``, ``cffi``, ``legacy``) compile the same
  C++ engine, so their pairwise agreement (rtol 1e-12) checks bindings, layouts and
  batching, never the engine's mathematics;
- the ``reference`` backend computes the same outputs by an independent algorithm
  (pure JAX dense linear algebra), so agreement with it, within the sum of both
  backends' declared tolerances, checks the engine itself.

A comparison cannot pass on nothing: a backend that raises, and an output that is
NaN or infinite everywhere in every backend, are failures.
"""

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
REFERENCE = "reference"
"""The independent backend every other backend is compared with."""
CERTIFIED = "certified"
"""The name of the certified (ball-arithmetic) reference in comparisons."""
CONTRACT_BOUNDS = {"pmf": 1e-12, "moments": 1e-13, "dpmf": 1e-10, "dmoments": 1e-10}
"""The contract's accuracy bounds, used against the certified reference (a backend's
declared ``rtol`` where it is looser, for values)."""


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
    floor: float = FLOOR_FRACTION
    problem: str = ""
    """Set when nothing could be compared (a backend raised, every value non-finite)."""
    uncertified: int = 0
    """Against the certified reference: values it could not certify (a singular solve, a
    ball too wide), which were not compared (reported, never counted as agreement)."""

    @property
    def passed(self) -> bool:
        return not self.problem and bool(self.max_rel_diff <= self.rtol)

    def describe(self) -> str:
        if self.problem:
            return f"{self.first} vs {self.second}: {self.output}: {self.problem}"
        return (
            f"{self.first} vs {self.second}: {self.output}{list(self.index)} differs by "
            f"{self.max_rel_diff:.3e} relative ({self.first_value!r} vs {self.second_value!r}; "
            f"rtol={self.rtol:g})"
            + (f"; {self.uncertified} values not certified" if self.uncertified else "")
        )


def relative_difference(a: np.ndarray, b: np.ndarray, floor: float = FLOOR_FRACTION) -> np.ndarray:
    """Elementwise |a - b| / max(|a|, |b|, floor x the row's largest finite value).

    Rows are the first axis (one theta). Matching NaNs count as equal; a NaN
    against a number counts as infinitely different.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    both_nan = np.isnan(a) & np.isnan(b)
    one_nan = np.isnan(a) ^ np.isnan(b)
    finite = np.isfinite(a) & np.isfinite(b)
    same_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    mag = np.where(finite, np.maximum(np.abs(a), np.abs(b)), 0.0)
    axes = tuple(range(1, a.ndim))
    row_max = mag.max(axis=axes, keepdims=True) if a.ndim > 1 and a.size else mag
    denom = np.maximum(mag, floor * row_max)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        diff = np.where(finite, np.abs(a - b), 0.0)
        rel = np.where(denom > 0, diff / np.where(denom > 0, denom, 1.0), 0.0)
    rel = np.where(finite | both_nan | same_inf, rel, np.inf)
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
) -> tuple[dict[str, tuple[np.ndarray, ...]], dict[str, str]]:
    """Each backend's (pmf, moments, dpmf, dmoments) at the same inputs, and the errors.

    Returns ``(results, errors)``: ``errors[name]`` says what a backend raised.
    """
    structure = _as_structure(model)
    thetas = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
    times = np.asarray(times, dtype=np.float64)
    chosen = list(backends) if backends is not None else list_backends()
    results, errors = {}, {}
    for b in chosen:
        backend = get_backend(b)
        try:
            out = backend.compute_pmf_and_moments(
                structure, thetas, times, nr_moments, jacobian=True
            )
            results[backend.name] = tuple(np.asarray(x, dtype=np.float64) for x in out)
        except Exception as exc:  # a raising backend is a finding, not a crash
            errors[backend.name] = f"{type(exc).__name__}: {exc}"
    return results, errors


def _pair_tolerance(first: str, second: str, rtol: float) -> tuple[float, float]:
    """(rtol, floor) for a pair: ``rtol`` among engine backends, declared bounds otherwise."""
    if REFERENCE not in (first, second):
        return rtol, FLOOR_FRACTION
    caps = [get_backend(name).capabilities for name in (first, second)]
    pair_rtol = sum(c.rtol for c in caps)
    return pair_rtol, sum(c.atol for c in caps) / pair_rtol


def compare_backends(
    model: Any,
    thetas: Any,
    times: Any,
    nr_moments: int = 2,
    backends: Sequence[str | Backend] | None = None,
    rtol: float = 1e-12,
    reference: bool = True,
    certified: bool = False,
) -> list[Comparison]:
    """Every pair of backends on every output, and each against the reference.

    Parameters
    ----------
    rtol
        Tolerance between engine backends (which share one engine).
    reference
        Add the ``reference`` backend when it is not among ``backends``; every
        backend is then also compared with it within the sum of both backends'
        declared tolerances (:class:`ptdcore.Capabilities` ``rtol`` and ``atol``).
        A model too large for the reference is compared among the others only,
        with a :class:`Comparison` whose ``problem`` starts with "skipped".
    certified
        Also compare every backend with the certified ball-arithmetic reference
        (:mod:`ptdcore.testing.certified`, needs python-flint): a backend's error is
        how far it lies outside the certified ball, judged against the contract's bounds
        (:data:`CONTRACT_BOUNDS`).
    """
    chosen = [get_backend(b).name for b in (backends if backends is not None else list_backends())]
    if reference and REFERENCE not in chosen:
        chosen.append(REFERENCE)
    results, errors = evaluate_backends(model, thetas, times, nr_moments, chosen)
    comparisons = []
    for name, error in errors.items():
        too_large = name == REFERENCE and error.startswith("ValueError") and "at most" in error
        problem = f"skipped: {error}" if too_large else f"raised {error}"
        comparisons.append(
            Comparison(name, "-", "all", np.inf, (), np.nan, np.nan, rtol, problem=problem)
        )
    hopeless = {
        label: all(
            results[name][k].size and not np.isfinite(results[name][k]).any() for name in results
        )
        for k, label in enumerate(OUTPUTS)
    }
    for first, second in itertools.combinations(results, 2):
        pair_rtol, floor = _pair_tolerance(first, second, rtol)
        for label, a, b in zip(OUTPUTS, results[first], results[second], strict=True):
            if a.shape != b.shape:
                raise AssertionError(f"{first} vs {second}: {label} shapes {a.shape} vs {b.shape}")
            if hopeless[label] and results:
                comparisons.append(Comparison(
                    first, second, label, np.inf, (), np.nan, np.nan, pair_rtol, floor,
                    problem="every value is NaN or infinite in every backend: nothing compared",
                ))  # fmt: skip
                continue
            rel = relative_difference(a, b, floor)
            if rel.size == 0:
                comparisons.append(
                    Comparison(first, second, label, 0.0, (), np.nan, np.nan, pair_rtol, floor)
                )
                continue
            idx = np.unravel_index(int(np.argmax(rel)), rel.shape)
            comparisons.append(Comparison(
                first, second, label, float(rel[idx]), tuple(int(i) for i in idx),
                float(a[idx]), float(b[idx]), pair_rtol, floor,
            ))  # fmt: skip
    if certified:
        comparisons += _against_certified(model, thetas, times, nr_moments, results)
    return comparisons


def _against_certified(
    model: Any, thetas: Any, times: Any, nr_moments: int, results: dict[str, tuple]
) -> list[Comparison]:
    """Each backend's outputs against the certified balls (see :func:`compare_backends`)."""
    from .certified import certified_values, excess_over_ball

    try:
        balls = certified_values(_as_structure(model), thetas, times, nr_moments)
    except (ImportError, ValueError, NotImplementedError) as exc:
        return [Comparison(CERTIFIED, "-", "all", np.inf, (), np.nan, np.nan, 0.0,
                           problem=f"skipped: {exc}")]  # fmt: skip
    out = []
    for name, arrays in results.items():
        declared = get_backend(name).capabilities.rtol
        for k, label in enumerate(OUTPUTS):
            tol = max(CONTRACT_BOUNDS[label], declared if k < 2 else 0.0)
            mid, rad = balls.mid[k], balls.rad[k]
            rel = excess_over_ball(arrays[k], mid, rad, FLOOR_FRACTION)
            if not np.isfinite(mid).any():
                out.append(Comparison(name, CERTIFIED, label, 0.0, (), np.nan, np.nan, tol,
                                      problem="skipped: nothing certified"))  # fmt: skip
                continue
            idx = np.unravel_index(int(np.nanargmax(rel)), rel.shape)
            out.append(Comparison(
                name, CERTIFIED, label, float(rel[idx]), tuple(int(i) for i in idx),
                float(arrays[k][idx]), float(mid[idx]), tol,
                uncertified=int(np.isnan(mid).sum()),
            ))  # fmt: skip
    return out


def assert_backends_equivalent(
    model_or_structure: Any,
    thetas: Any,
    times: Any,
    nr_moments: int = 2,
    backends: Sequence[str | Backend] | None = None,
    rtol: float = 1e-12,
    reference: bool = True,
) -> list[Comparison]:
    """Assert every pair of backends agrees on pmf, moments and both Jacobians.

    Engine backends must agree to ``rtol``; each must also agree with the independent
    ``reference`` backend within their declared tolerances (``reference=False`` skips
    that). A comparison of outputs that are NaN everywhere, or with a backend that
    raised, fails. A model too large for the reference is only compared pairwise.

    Raises
    ------
    AssertionError
        Naming the backends, the output, the index and the size of each disagreement.
    """
    comparisons = compare_backends(
        model_or_structure, thetas, times, nr_moments, backends, rtol, reference
    )
    failures = [c for c in comparisons if not c.passed and not c.problem.startswith("skipped")]
    if failures:  # (certified comparisons are made by compare_backends(certified=True))
        raise AssertionError(
            "backends disagree:\n" + "\n".join("  " + c.describe() for c in failures)
        )
    return comparisons


def format_table(comparisons: Sequence[Comparison]) -> str:
    """A text table: one row per backend pair, the worst relative difference per output."""
    pairs: dict[tuple[str, str], dict[str, Comparison]] = {}
    notes = []
    for c in comparisons:
        if c.output == "all":
            notes.append(c)
            continue
        pairs.setdefault((c.first, c.second), {})[c.output] = c
    header = f"{'backends':<24}" + "".join(f"{o:>12}" for o in OUTPUTS) + f"{'rtol':>10}  result"
    lines = [header, "-" * len(header)]
    for (first, second), row in pairs.items():
        ok = all(c.passed or c.problem.startswith("skipped") for c in row.values())
        cells = "".join(
            (
                f"{'-':>12}"
                if row[o].problem.startswith("skipped")
                else f"{'non-finite':>12}"
                if row[o].problem
                else f"{row[o].max_rel_diff:>12.2e}"
            )
            if o in row
            else f"{'-':>12}"
            for o in OUTPUTS
        )
        tol = next(iter(row.values())).rtol
        lines.append(f"{first + ' / ' + second:<24}{cells}{tol:>10.0e}  {'pass' if ok else 'FAIL'}")
    for c in notes:
        lines.append(f"{c.first}: {c.problem}")
    for c in comparisons:
        if c.uncertified:
            lines.append(
                f"{c.first} / {c.second}: {c.output}: {c.uncertified} values not certified "
                "(a singular solve or a ball too wide), not compared with it"
            )
    return "\n".join(lines)
