"""The ``ptdcore`` command line: demo, backends, check, bench."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(quick=args.quick, out=args.out)


def _cmd_backends(args: argparse.Namespace) -> int:
    from ..registry import backend_info

    rows = [("name", "status", "jit", "GIL free", "parallel", "priority", "description")]
    for info in backend_info():
        caps = info.capabilities
        status = "available" if info.available else f"unavailable: {info.reason}"
        rows.append(
            (
                info.name,
                status,
                _yes(caps.jit_native),
                _yes(caps.releases_gil),
                _yes(caps.parallel_batch),
                str(info.priority),
                info.description,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _parse_vector(text: str) -> list[float]:
    return [float(x) for x in text.replace(" ", ",").split(",") if x]


def _parse_times(text: str, discrete: bool, command: str) -> Any:
    """The --times values, checked as the model checks them; None after printing why not."""
    import numpy as np

    from ..jax_model import _check_concrete_times

    try:
        times = np.array(_parse_vector(text))
        _check_concrete_times(times, discrete)
    except ValueError as exc:
        print(f"ptdcore {command}: --times {text!r}: {exc}", file=sys.stderr)
        return None
    return times


def _read_model(path: str, command: str) -> Any:
    """The Structure saved at ``path``, or None after printing why it cannot be read."""
    from ..structure import Structure

    try:
        return Structure.from_json(Path(path).read_text())
    except (OSError, ValueError, KeyError) as exc:
        print(f"ptdcore {command}: cannot read {path}: {exc}", file=sys.stderr)
        return None


def _cmd_check(args: argparse.Namespace) -> int:
    import numpy as np

    from ..testing.equivalence import compare_backends, format_table

    structure = _read_model(args.model, "check")
    if structure is None:
        return 2
    P = structure.nr_params
    if args.theta:
        thetas = np.array([_parse_vector(t) for t in args.theta])
    else:
        thetas = default_thetas(P, structure.discrete)
    if thetas.shape[1] != P:
        print(
            f"ptdcore check: --theta needs {P} values per vector, got {thetas.shape[1]}",
            file=sys.stderr,
        )
        return 2
    if args.times:
        times = _parse_times(args.times, structure.discrete, "check")
        if times is None:
            return 2
    else:
        times = np.arange(0.0, 21.0) if structure.discrete else np.linspace(0.0, 5.0, 11)
    backends = [b for b in args.backends.split(",") if b] if args.backends else None
    try:
        comparisons = compare_backends(
            structure, thetas, times, args.nr_moments, backends, args.rtol,
            certified=args.certified,
        )  # fmt: skip
    except ValueError as exc:
        print(f"ptdcore check: {exc}", file=sys.stderr)
        return 2
    kind = "discrete" if structure.discrete else "continuous"
    print(
        f"model {args.model}: {kind}, {structure.nr_states} states, {structure.nr_edges} edges, "
        f"{P} parameters; {len(thetas)} theta x {len(times)} times, {args.nr_moments} moments, "
        f"rtol={args.rtol:g} between engine backends"
    )
    shown = "; ".join(",".join(f"{v:g}" for v in row) for row in thetas)
    print(f"theta: {shown}  (another: --theta 0.5,1.0 per vector, repeatable)\n")
    print(format_table(comparisons))
    skipped = [c for c in comparisons if c.problem.startswith("skipped")]
    failures = [c for c in comparisons if not c.passed and c not in skipped]
    if failures:
        print("\nFAILED:")
        for c in failures:
            print("  " + c.describe())
        return 1
    if skipped:
        print(
            "\nall backends agree with each other; NOT checked against the independent "
            "reference (model too large for it)"
        )
        return 0
    certified = " and with the certified ball-arithmetic values" if args.certified else ""
    print(f"\nall backends agree, with each other and with the independent reference{certified}")
    return 0


def default_thetas(nr_params: int, discrete: bool) -> Any:
    """The grid of ``ptdcore check``: every parameter at a few common values, then each
    parameter in turn at 0, the boundary of the parameter space (the others at the
    middle value), where states drop out and one-sided derivatives are due."""
    import numpy as np

    base = [0.2, 0.5] if discrete else [0.5, 1.0, 2.0]
    rows = [[b] * nr_params for b in base]
    middle = base[len(base) // 2]
    for p in range(nr_params if nr_params > 1 else 0):
        row = [middle] * nr_params
        row[p] = 0.0
        rows.append(row)
    return np.array(rows)


def _cmd_cache(args: argparse.Namespace) -> int:
    """Show or clear the backends' persistent caches (``Backend.cache_info`` and
    ``Backend.clear_cache``; today only the legacy backend keeps one)."""
    from ..registry import get_backend, list_backends

    lines = []
    for name in list_backends():
        backend = get_backend(name)
        line = backend.clear_cache() if args.action == "clear" else backend.cache_info()
        if line:
            lines.append(line)
    print("\n".join(lines) if lines else "no backend keeps a persistent cache")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import numpy as np

    from .bench import run_bench, run_model_bench

    backends = [b for b in args.backends.split(",") if b] if args.backends else None
    if args.model is None:
        return run_bench(args.n, args.observations, backends)
    structure = _read_model(args.model, "bench")
    if structure is None:
        return 2
    P = structure.nr_params
    theta = np.array(_parse_vector(args.theta)) if args.theta else np.ones(P)
    if theta.shape != (P,):
        print(f"ptdcore bench: --theta needs {P} values, got {theta.size}", file=sys.stderr)
        return 2
    if args.times:
        times = _parse_times(args.times, structure.discrete, "bench")
        if times is None:
            return 2
    elif structure.discrete:
        times = np.arange(1.0, args.observations + 1.0) % 20 + 1
    else:
        times = np.linspace(0.1, 5.0, args.observations)
    return run_model_bench(structure, theta, times, backends)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ptdcore", description="Phase-type distributions: exact densities, moments, gradients."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the main job: a coalescent model end to end")
    demo.add_argument("--quick", action="store_true", help="a short run")
    demo.add_argument(
        "--out", default="ptdcore-demo", help="folder for the plots (default: %(default)s)"
    )
    demo.set_defaults(func=_cmd_demo)
    backends = sub.add_parser("backends", help="list the discovered backends")
    backends.set_defaults(func=_cmd_backends)
    check = sub.add_parser("check", help="cross-backend equivalence report on a saved model")
    check.add_argument("model", help="a model saved with Graph.to_json()")
    check.add_argument("--backends", help="comma-separated backends (default: all available)")
    check.add_argument(
        "--theta", action="append", help="a parameter vector, e.g. 0.5,1.0 (repeatable)"
    )
    check.add_argument("--times", help="comma-separated times (default: a grid)")
    check.add_argument("--nr-moments", type=int, default=2, help="moments compared (default: 2)")
    check.add_argument(
        "--rtol", type=float, default=1e-12, help="relative tolerance (default: 1e-12)"
    )
    check.add_argument(
        "--certified",
        action="store_true",
        help="also compare with certified ball arithmetic (python-flint; up to 40 states)",
    )
    check.set_defaults(func=_cmd_check)
    cache = sub.add_parser("cache", help="show or clear the legacy backend's compile cache")
    cache.add_argument("action", nargs="?", choices=["info", "clear"], default="info")
    cache.set_defaults(func=_cmd_cache)
    bench = sub.add_parser(
        "bench", help="timing table across backends (your model, or the Kingman coalescent)"
    )
    bench.add_argument(
        "model", nargs="?", help="a model saved with Graph.to_json() (default: Kingman, -n)"
    )
    bench.add_argument("-n", type=int, default=10, help="Kingman sample size (default: 10)")
    bench.add_argument("--theta", help="your model's parameter vector (default: ones)")
    bench.add_argument("--times", help="comma-separated observed times (default: a grid)")
    bench.add_argument("--observations", type=int, default=100, help="data size (default: 100)")
    bench.add_argument("--backends", help="comma-separated backends (default: all available)")
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ptdcore`` script (its own process: float64 on for JAX)."""
    args = build_parser().parse_args(argv)
    if args.command in ("demo", "bench", "check"):
        import jax

        jax.config.update("jax_enable_x64", True)
    return int(args.func(args) or 0)
