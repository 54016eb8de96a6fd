"""SVGD over two processes (jax.distributed, CPU collectives on 127.0.0.1): every process
returns the particles of a single-process run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, jax
    jax.config.update("jax_enable_x64", True)
    port, pid, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    if count > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{port}", num_processes=count, process_id=pid
        )
    from ptdcore import SVGD
    from ptdcore.coalescent import kingman_graph
    data = np.random.default_rng(8).exponential(1.0, 30)
    s = SVGD(kingman_graph(4), data, n_particles=40, n_iterations=60).fit()
    print(json.dumps({
        "devices": jax.device_count(), "local": jax.local_device_count(),
        "p": s.particles.ravel().tolist(), "history": s.history.shape[0],
        "converged": bool(s.diagnostics["converged"]) in (True, False),
    }))
    if count > 1:
        jax.distributed.shutdown()
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(count: int) -> list[dict]:
    port = _free_port()
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(port), str(pid), str(count)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for pid in range(count)
    ]
    outs = []
    for proc in procs:
        try:
            stdout, stderr = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail("a process of the distributed run hung")
        assert proc.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    return outs


@pytest.mark.slow
def test_two_processes_return_the_single_process_particles():
    (single,) = _launch(1)
    first, second = _launch(2)
    assert single["devices"] == 1
    assert first["devices"] == second["devices"] == 2 and first["local"] == 1
    for out in (first, second):
        assert out["history"] == single["history"]
        np.testing.assert_allclose(out["p"], single["p"], rtol=1e-10, atol=0)
