"""Every ```python block of the documentation runs (blocks of one page share a namespace)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text())
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_docs_have_examples():
    assert len(PAGES) >= 5


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_examples_run(page, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for i, code in enumerate(BLOCK.findall(page.read_text())):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
            except Exception as exc:  # pragma: no cover - the message is the point
                pytest.fail(f"{page.name}, block {i} failed: {type(exc).__name__}: {exc}\n{code}")


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
