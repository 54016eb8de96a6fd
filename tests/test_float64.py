"""ptdcore never changes JAX's global configuration (contract section 11)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def run(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def test_building_a_model_leaves_float32_alone_and_names_the_line():
    proc = run(
        """
        import jax.numpy as jnp, numpy as np
        import ptdcore
        from ptdcore.coalescent import kingman_graph
        try:
            ptdcore.model(kingman_graph(4))
        except ptdcore.Float64Required as exc:
            print("ERROR:", exc)
        try:
            ptdcore.SVGD(lambda th, t: t, np.ones(3), theta_dim=1)
        except ptdcore.Float64Required as exc:
            print("SVGD ERROR")
        print("DTYPE", jnp.ones(2).dtype)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert 'jax.config.update("jax_enable_x64", True)' in proc.stdout
    assert "SVGD ERROR" in proc.stdout
    assert "DTYPE float32" in proc.stdout


def test_models_work_with_float64_on_and_do_not_touch_other_flags():
    proc = run(
        """
        import jax, jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        before = {k: getattr(jax.config, k) for k in ("jax_enable_x64", "jax_platforms")}
        import ptdcore
        from ptdcore.coalescent import kingman_graph
        m = ptdcore.model(kingman_graph(4))
        pdf, _ = jax.jit(m)(jnp.array([1.0]), jnp.array([0.5, 1.0]))
        print("DTYPE", pdf.dtype)
        after = {k: getattr(jax.config, k) for k in before}
        print("SAME", before == after)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "DTYPE float64" in proc.stdout and "SAME True" in proc.stdout


def test_turning_float64_off_later_gives_the_clear_error_not_a_buffer_error():
    proc = run(
        """
        import jax, jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        import ptdcore
        from ptdcore.coalescent import kingman_graph
        m = ptdcore.model(kingman_graph(4))
        jax.config.update("jax_enable_x64", False)
        try:
            jax.jit(m)(jnp.array([1.0]), jnp.array([0.5]))
        except ptdcore.Float64Required:
            print("CLEAR")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "CLEAR" in proc.stdout


def test_the_reference_backend_numpy_entry_uses_its_own_scope():
    proc = run(
        """
        import jax.numpy as jnp, numpy as np, ptdcore
        from ptdcore.coalescent import kingman_graph
        out = ptdcore.get_backend("reference").compute_pmf_and_moments(
            kingman_graph(4).structure(), np.array([[1.0]]), np.array([1.0]), 1)
        print("VALUE", out.pmf.dtype, "DTYPE", jnp.ones(2).dtype)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "VALUE float64 DTYPE float32" in proc.stdout
