"""Run the README's main job (``ptdcore demo``) as CI does, and judge it.

Usage: ``python .ci/check_demo.py PTDCORE_EXECUTABLE``. The demo runs in a fresh
temporary folder; this fails (exit 1) if the demo exits non-zero, writes no plot, or
its peak resident memory exceeds ``PEAK_LIMIT_MB``. Peak memory is the largest resident
set of the demo process (``getrusage(RUSAGE_CHILDREN)``, the measure ``/usr/bin/time -v``
reports).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEAK_LIMIT_MB = 2048


def main(executable: str) -> int:
    with tempfile.TemporaryDirectory(prefix="ptdcore-demo-") as folder:
        command = [str(Path(executable).resolve()), "demo"]
        print("+ (in a temporary folder) " + " ".join(command), flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(command, cwd=folder)
        seconds = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        plots = sorted(p.name for p in Path(folder).rglob("*.png") if p.stat().st_size > 0)
    print(
        f"demo: exit {proc.returncode}, {seconds:.1f} s, peak resident memory "
        f"{peak_mb:.0f} MB (limit {PEAK_LIMIT_MB} MB), {len(plots)} plots: {', '.join(plots)}"
    )
    problems = []
    if proc.returncode != 0:
        problems.append(f"the demo exited with {proc.returncode}")
    if not plots:
        problems.append("the demo wrote no plot")
    if peak_mb > PEAK_LIMIT_MB:
        problems.append(f"the demo's peak memory {peak_mb:.0f} MB exceeds {PEAK_LIMIT_MB} MB")
    for problem in problems:
        print(f"DEMO FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
