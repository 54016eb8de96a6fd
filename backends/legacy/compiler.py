"""Compile generated sources into a disk cache of shared libraries.

Cache entries are keyed by the structure's content hash, the compiler (path and
``--version``), the flags, the engine headers and the generator version. Writes are
atomic (compile to a unique temporary file, then ``os.replace``), so processes
compiling the same model at once (``pytest -n auto``) never see a partial file.
Beside each library a record (``.so.sha256``) holds its size and SHA-256, written at
build time; a library that does not match its record (truncated, overwritten) is never
handed to the loader, which would crash on it, but rebuilt. A library whose embedded key
does not match, or that fails to load, is rebuilt too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

ENV_CACHE_DIR = "PTDCORE_CACHE_DIR"


def flags_file() -> Path:
    """The engine's flags, shared with the CMake build (installed beside this module)."""
    return Path(__file__).with_name("engine_flags.txt")


@lru_cache(maxsize=1)
def cxx_flags() -> tuple[str, ...]:
    """The engine's flags, then -O1 (about two thirds of the -O2 compile time; without
    fast-math or FP contraction the results are bit-identical to the other backends at
    any optimisation level) and the shared-library flags."""
    lines = flags_file().read_text().splitlines()
    engine = [line.strip() for line in lines if line.strip().startswith("-")]
    return (*engine, "-O1", "-shared", "-fPIC", "-fvisibility=hidden")


def include_dir() -> Path:
    """The engine headers shipped with the package."""
    return Path(__file__).with_name("include")


def cache_dir() -> Path:
    """``$PTDCORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/ptdcore/legacy`` (``~/.cache``)."""
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ptdcore" / "legacy"


def find_compiler() -> str | None:
    """``$CXX`` if set, else the first of c++, g++, clang++ on PATH."""
    if os.environ.get("CXX"):
        return shutil.which(os.environ["CXX"])
    for name in ("c++", "g++", "clang++"):
        path = shutil.which(name)
        if path:
            return path
    return None


@lru_cache(maxsize=8)
def compiler_identity(compiler: str) -> str:
    """Path and version banner of the compiler (part of the cache key)."""
    out = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60)
    return f"{os.path.realpath(compiler)}\n{out.stdout.strip()}"


@lru_cache(maxsize=1)
def headers_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(include_dir().rglob("*")):
        if path.is_file():
            h.update(path.relative_to(include_dir()).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def cache_key(structure_hash: str, compiler: str, generator_version: str) -> str:
    h = hashlib.sha256()
    for part in (structure_hash, compiler_identity(compiler), " ".join(cxx_flags()),
                 headers_digest(), generator_version):  # fmt: skip
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def record_path(library: Path) -> Path:
    """Where the size and SHA-256 of ``library`` are recorded."""
    return library.with_name(library.name + ".sha256")


def fingerprint(library: Path) -> str:
    """Size and SHA-256 of a library file."""
    data = library.read_bytes()
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}"


def write_record(library: Path, fingerprint_text: str) -> None:
    """Record the fingerprint of the file now at ``library``, atomically. (Two processes
    building at once may leave the other's record: the next load then rebuilds.)"""
    record = record_path(library)
    tmp = record.with_name(f".{record.name}.{os.getpid()}.tmp")
    tmp.write_text(fingerprint_text)
    os.replace(tmp, record)


def matches_record(library: Path) -> bool:
    """Whether ``library`` has a record and its size and SHA-256 match it."""
    try:
        recorded = record_path(library).read_text().strip()
        size = int(recorded.split()[0])
        return library.stat().st_size == size and fingerprint(library) == recorded
    except (OSError, ValueError, IndexError):
        return False


def compile_library(source: str, target: Path, compiler: str) -> None:
    """Compile ``source`` to ``target`` atomically; raise RuntimeError with the compiler output."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        src = Path(tmp) / "model.cpp"
        src.write_text(source)
        out = Path(tmp) / "model.so"
        cmd = [compiler, *cxx_flags(), f"-I{include_dir()}", str(src), "-o", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(
                f"legacy backend: compiling the model failed ({' '.join(cmd)}):\n"
                f"{proc.stderr[-4000:]}"
            )
        os.replace(out, target)
