"""The full fit of issue 26: one deme, an instantaneous size change (recent size nu, time T
in units of 2 N_anc generations; truth nu = 0.3, T = 0.3), n = 20, multinomial likelihood,
msprime data, started from (1, 1). ptdcore (exact gradient and Hessian, trust-region
Newton), moments (its L-BFGS-B on finite differences) and momi2 (its TNC with autograd
gradients), each in its own virtual environment, in one run; wall time from a cold start of
each tool's model (compilation included), the tool's imports timed apart.

    python asv_bench/compare_fits.py --ptdcore .venv/bin/python \\
        --moments /tmp/peers/moments/bin/python --momi /tmp/peers/momi/bin/python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

N_ANC, N_SAMPLES = 10_000.0, 20


def simulate(path: str) -> None:
    """The observed SFS (n + 1 entries, corners zero) of 400 loci of 10 kb."""
    import msprime

    dm = msprime.Demography()
    dm.add_population(name="A", initial_size=0.3 * N_ANC)
    dm.add_population_parameters_change(time=0.3 * 2 * N_ANC, initial_size=N_ANC, population="A")
    total = np.zeros(N_SAMPLES + 1)
    reps = msprime.sim_ancestry([msprime.SampleSet(N_SAMPLES, population="A", ploidy=1)],
                                demography=dm, sequence_length=1e4, recombination_rate=1e-8,
                                num_replicates=400, random_seed=5)  # fmt: skip
    for seed, ts in enumerate(reps, start=1):
        ts = msprime.sim_mutations(ts, rate=1.25e-8, random_seed=seed)
        total += ts.allele_frequency_spectrum(mode="site", polarised=True, span_normalise=False)
    total[0] = total[-1] = 0
    np.save(path, total)


def imports(tool: str) -> None:
    """The tool's own imports (timed apart from the fit)."""
    if tool == "ptdcore":
        import demes  # noqa: F401
        import jax

        jax.config.update("jax_enable_x64", True)
        import ptdcore  # noqa: F401
        from ptdcore import demography, sfs  # noqa: F401
    elif tool == "moments":
        import moments  # noqa: F401
    elif tool == "momi":
        import momi  # noqa: F401


def worker(tool: str, data_path: str) -> dict:
    data = np.load(data_path)
    begin = time.perf_counter()
    imports(tool)
    start = time.perf_counter()
    if tool == "ptdcore":
        import demes
        import jax.numpy as jnp

        import ptdcore
        from ptdcore import demography, sfs

        b = demes.Builder(time_units="generations")
        b.add_deme("A", epochs=[dict(start_size=N_ANC, end_time=2 * N_ANC),
                                dict(start_size=N_ANC)])  # fmt: skip
        d = demography.from_demes(b.resolve(), {"A": N_SAMPLES})
        i_size = d.parameter_names.index("A.epochs[1].start_size")
        i_time = d.parameter_names.index("A.epochs[0].end_time")
        observed = np.ma.MaskedArray(data, mask=sfs.corners(data.shape))

        def loglik(z):
            v = jnp.asarray(d.values).at[i_size].set(N_ANC * jnp.exp(z[0]))
            v = v.at[i_time].set(2 * N_ANC * jnp.exp(z[1]))
            return sfs.loglik(d.expected_sfs(v), observed, kind="multinomial")

        res = ptdcore.fit_mle(loglik, np.zeros(2))
        nu, T = np.exp(res.estimate)
        out = {"nu": nu, "T": T, "iterations": res.iterations, "converged": bool(res.converged)}
    elif tool == "moments":
        import moments

        fs = moments.Spectrum(data)
        fit = moments.Inference.optimize_log_lbfgsb(
            [1.0, 1.0], fs, moments.Demographics1D.two_epoch, lower_bound=[1e-3, 1e-3],
            upper_bound=[100, 10],
        )  # fmt: skip
        nu, T = fit
        out = {"nu": float(nu), "T": float(T)}
    elif tool == "momi":
        import momi

        freqs = {((N_SAMPLES - i, i),): float(c) for i, c in enumerate(data) if 0 < i < N_SAMPLES}
        model = momi.DemographicModel(N_e=N_ANC, gen_time=1)
        model.add_size_param("n_recent", N0=N_ANC, lower=10, upper=1e7)
        model.add_time_param("t", t0=2 * N_ANC, lower=1, upper=1e6)
        model.add_leaf("A", N="n_recent")
        model.set_size("A", t="t", N=N_ANC)
        model.set_data(momi.site_freq_spectrum(["A"], [freqs]))
        res = model.optimize(method="tnc")
        params = dict(model.get_params())
        out = {"nu": params["n_recent"] / N_ANC, "T": params["t"] / (2 * N_ANC),
               "iterations": int(getattr(res, "nit", -1))}  # fmt: skip
    else:
        raise ValueError(tool)
    out["seconds"] = time.perf_counter() - start
    out["import_seconds"] = start - begin
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "DATA"))
    for tool in ("ptdcore", "moments", "momi"):
        parser.add_argument(f"--{tool}", metavar="PYTHON", help=f"interpreter with {tool}")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    data_path = "/tmp/ptdcore_compare_fits_sfs.npy"
    subprocess.run([args.ptdcore, __file__, "--simulate-into", data_path], check=False)
    tools = [t for t in ("ptdcore", "moments", "momi") if getattr(args, t)]
    runs: dict[str, list[dict]] = {t: [] for t in tools}
    for _ in range(args.repeats):  # interleaved
        for tool in tools:
            proc = subprocess.run([getattr(args, tool), __file__, "--worker", tool, data_path],
                                  capture_output=True, text=True, timeout=1800)  # fmt: skip
            if proc.returncode:
                print(tool, "failed:", proc.stderr[-2000:], file=sys.stderr)
                continue
            runs[tool].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print("| tool | fit (s): model, compilation, optimisation | imports (s) | nu | T |")
    print("|---|---|---|---|---|")
    for tool in tools:
        if runs[tool]:
            best = min(runs[tool], key=lambda r: r["seconds"])
            imp = min(r["import_seconds"] for r in runs[tool])
            print(
                f"| {tool} | {best['seconds']:.2f} | {imp:.2f} | {best['nu']:.5f} | "
                f"{best['T']:.5f} |"
            )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--simulate-into":
        simulate(sys.argv[2])
    else:
        main()
