"""nox sessions: tests, equivalence, lint, docs, bench, build, asan, debug.

``nox`` alone runs lint and tests.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"
ROOT = Path(__file__).parent


def engine_flags() -> list[str]:
    """The engine's compiler flags (cpp/engine_flags.txt, shared with CMake and legacy)."""
    lines = (ROOT / "cpp" / "engine_flags.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip().startswith("-")]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, in parallel."""
    session.install(".[test]")
    session.run("pytest", "-n", "auto", *session.posargs)


@nox.session
def equivalence(session: nox.Session) -> None:
    """Every backend against every other on the corpus, and against references."""
    session.install(".[test]")
    session.run("pytest", "-n", "auto", "tests/equivalence", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx site with warnings as errors (docs/_build/html)."""
    session.install(".[docs]")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session
def bench(session: nox.Session) -> None:
    """asv: one quick pass over every benchmark in this environment, then the HTML dashboard.

    Over a range of commits instead: ``cd asv_bench && asv run v0.1.0..main`` (asv builds
    each commit in its own environment), then ``asv publish`` and ``asv preview``.
    """
    session.install(".[test]", "asv>=0.6")
    session.chdir("asv_bench")
    session.run("asv", "machine", "--yes")
    session.run("asv", "run", "--python=same", "--quick", "--show-stderr", *session.posargs)
    session.run("asv", "publish")


@nox.session
def build(session: nox.Session) -> None:
    """sdist and wheel, then a check of the wheel's contents."""
    session.install("build>=1.0")
    session.run("python", "-m", "build", "--outdir", "dist")
    wheel = sorted(Path("dist").glob("ptdcore-*.whl"))[-1]
    names = zipfile.ZipFile(wheel).namelist()
    required = [
        "ptdcore/__init__.py",
        "ptdcore/py.typed",
        "ptdcore_backends/py.typed",
        "ptdcore_backends/pybind11/_core.pyi",
        "ptdcore_backends/ffi/_ffi.pyi",
        "ptdcore_backends/legacy/engine_flags.txt",
        "ptdcore_backends/pybind11/__init__.py",
        "ptdcore_backends/cffi/libptdcore_capi.so",
        "ptdcore_backends/legacy/include/ptdcore/model.hpp",
        "ptdcore_backends/ffi/__init__.py",
    ]
    missing = [r for r in required if r not in names]
    compiled = [n for n in names if n.startswith("ptdcore_backends/pybind11/_core")]
    stray = [n for n in names if n.endswith((".cpp", ".o")) or "/build/" in n]
    if missing or not compiled or stray:
        session.error(f"wheel {wheel.name}: missing {missing}, compiled {compiled}, stray {stray}")
    session.log(f"{wheel.name}: {len(names)} files, contents as expected")


@nox.session
def asan(session: nox.Session) -> None:
    """The engine's self-test under AddressSanitizer and UBSan (no Python involved)."""
    exe = Path(session.create_tmp()) / "engine_selftest"
    session.run(
        "c++", *engine_flags(), "-O1", "-g", "-fsanitize=address,undefined",
        "-fno-omit-frame-pointer", "-fno-sanitize-recover=all", "-Icpp/include",
        "cpp/tests/engine_selftest.cpp",
        "cpp/src/c_api.cpp", "-o", str(exe), "-lpthread", external=True,
    )  # fmt: skip
    session.run(str(exe), external=True)


@nox.session
def debug(session: nox.Session) -> None:
    """Backend and model tests against a Debug build (pybind11's GIL assertions on)."""
    session.install("-Ccmake.build-type=Debug", "-Cbuild-dir=build/debug", ".[test]")
    session.run(
        "pytest", "-n", "auto", "tests/test_backends.py", "tests/test_model.py", *session.posargs
    )
