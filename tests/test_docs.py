"""Every ```python block of the documentation runs (blocks of one page share a namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text())
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_docs_have_examples():
    assert len(PAGES) >= 5


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_examples_run(page, tmp_path):
    """Each page in a fresh process, as a reader would run it: JAX's float64 mode starts
    off there, so a page that needs it must say so (ptdcore never turns it on)."""
    import os
    import subprocess
    import sys

    blocks = BLOCK.findall(page.read_text())
    script = "\n".join(f"# --- {page.name} block {i}\n{code}" for i, code in enumerate(blocks))
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    proc = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", script],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, f"{page.name}:\n{proc.stderr[-3000:]}"


def test_regularised_svgd_example_runs(tmp_path):
    """examples/svgd_regularized_example.py, quick settings (20 particles x 100 iterations)."""
    pytest.importorskip("matplotlib")
    import importlib.util

    path = DOCS.parent / "examples" / "svgd_regularized_example.py"
    spec = importlib.util.spec_from_file_location("svgd_regularized_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fits = module.main(str(tmp_path), quick=True)
    assert set(fits) == {"standard", "lambda = 0.1", "lambda = 1", "lambda = 10"}
    assert (tmp_path / "svgd_regularized_comparison.png").stat().st_size > 10_000
