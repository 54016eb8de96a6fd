"""Two demes with symmetric migration (sizes 1,000, 5e-4 per generation), 10 + 10
genomes, the pooled expected SFS at a new parameter each call: ptdcore (exact, the
engine's sparse route) against PhaseGen (exact) and moments, each in its own virtual
environment, in one run (issue 26's two-deme target).

    python asv_bench/compare_island.py --ptdcore .venv/bin/python \\
        --moments /tmp/peers/moments/bin/python --phasegen /tmp/peers/phasegen/bin/python

moments cannot state the island model (a demes graph with one root only): it gets its
closest model, an ancestor of the same size split 20,000 generations (10 N) ago, and its
deviation from the exact island SFS is reported with its time. ptdcore is also timed on
that split model (two epochs on the engine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
from compare_peers import _median_ms, new_values

SAMPLES = 10


def worker(tool: str) -> dict:
    size = new_values()

    if tool == "ptdcore":
        import time

        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        from ptdcore import demography
        from ptdcore.demography.examples import island

        out = {}
        for name, split in (("island", None), ("split", 20_000.0)):
            start = time.perf_counter()
            d = demography.from_demes(island(split=split), {"A": SAMPLES, "B": SAMPLES})
            f = jax.jit(lambda v, d=d: d.expected_sfs(v, kind="pooled"))
            summary = lambda v, d=d: jnp.log(d.expected_sfs(v, kind="pooled")[1:-1]).sum()  # noqa: E731
            g = jax.jit(jax.grad(summary))
            v = np.asarray(d.values)
            i = d.parameter_names.index("A.epochs[0].start_size")
            exact = np.asarray(f(jnp.asarray(v)))
            jax.block_until_ready(g(jnp.asarray(v)))
            out[f"{name} set-up (s)"] = time.perf_counter() - start

            def call(fn, v=v, i=i):
                x = v.copy()
                x[i] = size()
                return fn(jnp.asarray(x)).block_until_ready()

            out[name] = _median_ms(lambda f=f: call(f), 50, 20)
            out[f"{name} gradient"] = _median_ms(lambda g=g: call(g), 50, 20)
            out[f"{name} sfs"] = exact.tolist()
        return out
    if tool == "phasegen":
        import logging

        import phasegen as pg

        logging.disable(logging.WARNING)

        def phasegen_sfs(a=None):  # ploidy 1 in PhaseGen: pair rate 1 / N, so N = 2 x 1,000
            demography = pg.Demography(
                pop_sizes={"A": 2 * (a or size()), "B": 2000.0},
                migration_rates={("A", "B"): 5e-4, ("B", "A"): 5e-4},
            )
            coalescent = pg.Coalescent(n={"A": SAMPLES, "B": SAMPLES}, demography=demography)
            return coalescent.sfs.mean.data

        exact = np.asarray(phasegen_sfs(1000.0))
        return {"island": _median_ms(phasegen_sfs, 10, 60), "island sfs": exact.tolist()}
    if tool == "moments":
        import demes
        import moments

        def graph(a: float):
            b = demes.Builder(time_units="generations")
            b.add_deme("anc", epochs=[dict(start_size=1000.0, end_time=20_000.0)])
            b.add_deme("A", ancestors=["anc"], epochs=[dict(start_size=a)])
            b.add_deme("B", ancestors=["anc"], epochs=[dict(start_size=1000.0)])
            b.add_migration(demes=["A", "B"], rate=5e-4)
            return b.resolve()

        def moments_sfs(a=None):
            fs = moments.Demes.SFS(graph(a or size()), sampled_demes=["A", "B"],
                                   sample_sizes=[SAMPLES, SAMPLES], u=1.0)  # fmt: skip
            joint = np.asarray(fs)
            pooled = np.zeros(2 * SAMPLES + 1)
            for i in range(SAMPLES + 1):
                pooled[i : i + SAMPLES + 1] += joint[i]
            return pooled

        exact = moments_sfs(1000.0)
        exact[[0, -1]] = 0.0
        return {"split": _median_ms(moments_sfs, 20, 30), "split sfs": exact.tolist()}
    raise ValueError(tool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", metavar="TOOL")
    for tool in ("ptdcore", "moments", "phasegen"):
        parser.add_argument(f"--{tool}", metavar="PYTHON", help=f"interpreter with {tool}")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    rows = {}
    for tool in ("ptdcore", "moments", "phasegen"):
        if getattr(args, tool):
            proc = subprocess.run([getattr(args, tool), __file__, "--worker", tool],
                                  capture_output=True, text=True, timeout=1800)  # fmt: skip
            if proc.returncode:
                print(f"{tool} failed:\n{proc.stderr[-2000:]}")
                continue
            rows[tool] = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = rows["ptdcore"]
    exact = np.asarray(ours["island sfs"])[1:-1]
    print(f"ptdcore set-up, once per model (s): island {ours['island set-up (s)']:.2f}, "
          f"split {ours['split set-up (s)']:.2f}")  # fmt: skip
    print("| tool | model | SFS (ms) | / ptdcore island | largest deviation from exact island |")
    print("|---|---|---|---|---|")
    for tool, model in (("ptdcore", "island"), ("ptdcore", "split"), ("phasegen", "island"),
                        ("moments", "split")):  # fmt: skip
        r = rows.get(tool)
        if r is None:
            continue
        sfs = np.asarray(r[f"{model} sfs"])[1:-1]
        dev = np.abs(sfs / exact - 1).max()
        ratio = r[model] / ours["island"]
        print(f"| {tool} | {model} | {r[model]:.2f} | {ratio:.1f} | {dev:.1e} |")
    print(f"ptdcore log-SFS gradient (ms): island {ours['island gradient']:.2f}, "
          f"split {ours['split gradient']:.2f}")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
