"""The expected SFS of one deme with one size change (N = 10,000 before 2,000 generations
ago, 1,000 since), at a new parameter each call: ptdcore against moments, momi2 and
PhaseGen, each in its own virtual environment, in one run (issue 26's ratios).

    python asv_bench/compare_peers.py --ptdcore .venv/bin/python \\
        --moments /tmp/peers/moments/bin/python --momi /tmp/peers/momi/bin/python \\
        --phasegen /tmp/peers/phasegen/bin/python --n 10 20 40 100

Each tool runs in a subprocess of its own interpreter (this file, ``--worker TOOL``) and
prints the median milliseconds per call; the table gives each peer's time over ptdcore's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np


def _median_ms(f, reps: int, budget: float) -> float:
    f()
    times, start = [], time.time()
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
        if time.time() - start > budget:
            break
    return float(np.median(times) * 1e3)


def new_values(start: float = 1000.0):
    """A function that returns a new size each call (no tool may serve it from a cache)."""
    k = [0]

    def next_value() -> float:
        k[0] += 1
        return start + 1e-3 * k[0]

    return next_value


def _graph(recent: float):
    import demes

    b = demes.Builder(time_units="generations")
    b.add_deme("A", epochs=[dict(start_size=10000, end_time=2000), dict(start_size=recent)])
    return b.resolve()


def worker(tool: str, n: int) -> dict:
    recent = new_values()

    if tool == "ptdcore":
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        from ptdcore import demography

        d = demography.from_demes(_graph(1000.0), {"A": n})
        v = np.asarray(d.values)
        i = d.parameter_names.index("A.epochs[1].start_size")
        f = jax.jit(d.expected_sfs)
        g = jax.jit(jax.grad(lambda x: jnp.log(d.expected_sfs(x)[1:-1]).sum()))
        J = jax.jit(jax.jacfwd(d.expected_sfs))  # all 3 values: sizes and the time

        def call(fn):
            x = v.copy()
            x[i] = recent()
            return fn(jnp.asarray(x)).block_until_ready()

        return {
            "sfs": _median_ms(lambda: call(f), 200, 20),
            "grad": _median_ms(lambda: call(g), 200, 20),
            "jac": _median_ms(lambda: call(J), 200, 20),
        }
    if tool == "moments":
        import moments

        def moments_sfs():
            return moments.Demes.SFS(_graph(recent()), sampled_demes=["A"], sample_sizes=[n])

        def moments_jacobian():  # its optimisers' forward differences: 1 + 3 spectra
            return [moments_sfs() for _ in range(4)]

        return {"sfs": _median_ms(moments_sfs, 20, 20), "jac": _median_ms(moments_jacobian, 10, 20)}
    if tool == "momi":
        import momi

        configs = momi.build_config_list(["A"], np.array([[[n - i, i]] for i in range(1, n)]))

        def momi_sfs():
            m = momi.DemographicModel(N_e=1000, gen_time=1, muts_per_gen=1e-8)
            m.add_leaf("A", N=recent())
            m.set_size("A", t=2000, N=10000)
            return m.expected_sfs(configs, normalized=False, length=1, return_dict=False)

        import autograd

        model = momi.DemographicModel(N_e=1000, gen_time=1, muts_per_gen=1e-8)
        model.add_size_param("recent", N0=1000.0)
        model.add_size_param("ancient", N0=10000.0)
        model.add_time_param("t", t0=2000.0)
        model.add_leaf("A", N="recent")
        model.set_size("A", t="t", N="ancient")
        counts = {((n - i, i),): 100.0 / i for i in range(1, n)}
        model.set_data(momi.site_freq_spectrum(["A"], [counts]), length=1e6)
        surface = model._get_surface()  # what momi's optimisers differentiate (autograd)
        gradient = autograd.grad(surface.kl_div)
        x0 = np.asarray(model._get_x(), dtype=float)

        def momi_gradient():
            return gradient(x0 + 1e-6 * recent())

        return {"sfs": _median_ms(momi_sfs, 20, 20), "grad": _median_ms(momi_gradient, 20, 20)}
    if tool == "phasegen":
        import logging

        import phasegen as pg

        logging.disable(logging.WARNING)

        def phasegen_sfs():  # coalescent units of 2 x 1,000 generations
            sizes = {0: recent() / 1000.0, 1.0: 10.0}
            return pg.Coalescent(n=n, demography=pg.Demography(pop_sizes=sizes)).sfs.mean.data

        return {"sfs": _median_ms(phasegen_sfs, 10, 60)}
    raise ValueError(tool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "N"))
    for tool in ("ptdcore", "moments", "momi", "phasegen"):
        parser.add_argument(f"--{tool}", metavar="PYTHON", help=f"interpreter with {tool}")
    parser.add_argument("--n", type=int, nargs="+", default=[10, 20, 40])
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]))))
        return
    tools = [t for t in ("ptdcore", "moments", "momi", "phasegen") if getattr(args, t)]
    rows = {}
    for n in args.n:
        for tool in tools:
            proc = subprocess.run(
                [getattr(args, tool), __file__, "--worker", tool, str(n)],
                capture_output=True, text=True, timeout=900,
            )  # fmt: skip
            rows[n, tool] = (
                json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
            )
    print("| n | " + " | ".join(f"{t} (ms)" for t in tools) + " | ptdcore grad (ms) |")
    print("|---" * (len(tools) + 2) + "|")
    for n in args.n:
        base = (rows[n, "ptdcore"] or {}).get("sfs") if "ptdcore" in tools else None
        cells = []
        for tool in tools:
            r = rows[n, tool]
            if r is None:
                cells.append("failed")
            elif tool == "ptdcore" or base is None:
                cells.append(f"{r['sfs']:.3f}")
            else:
                cells.append(f"{r['sfs']:.3f} ({r['sfs'] / base:.1f}x)")
        grad = (rows.get((n, "ptdcore")) or {}).get("grad")
        print(f"| {n} | " + " | ".join(cells) + f" | {grad:.3f} |" if grad else " |")
    print()
    print(
        "| n | ptdcore Jacobian, 3 values (ms) | ptdcore log-SFS gradient (ms) | "
        "moments Jacobian by differences, 4 spectra (ms) | momi autograd gradient (ms) |"
    )
    print("|---|---|---|---|---|")
    for n in args.n:
        keys = (("ptdcore", "jac"), ("ptdcore", "grad"), ("moments", "jac"), ("momi", "grad"))
        cells = [(rows.get((n, tool)) or {}).get(key) for tool, key in keys]
        print(f"| {n} | " + " | ".join("-" if c is None else f"{c:.3f}" for c in cells) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
