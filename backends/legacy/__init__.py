"""The legacy backend: the old path, kept for migration testing.

Per model, C++ source specialised to the structure is generated, compiled with
the system compiler on first use, cached on disk, loaded with ``ctypes.PyDLL``
(which holds the GIL for the whole call, as the old path did) and reached from
JAX through the shared ``pure_callback`` adapter. Rows are evaluated one after
another on the calling thread.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ptdcore.backend import Capabilities, NativeBackend
from ptdcore.errors import BackendError
from ptdcore.hookspecs import hookimpl
from ptdcore.structure import Structure

from . import codegen, compiler

_c_double_p = ctypes.POINTER(ctypes.c_double)
_lock = threading.Lock()


def _bind(lib: Any) -> Any:
    lib.ptd_cache_key.restype = ctypes.c_char_p
    lib.ptd_cache_key.argtypes = []
    lib.ptd_last_error.restype = ctypes.c_char_p
    lib.ptd_last_error.argtypes = []
    base = [_c_double_p, ctypes.c_int64, _c_double_p, ctypes.c_int64, ctypes.c_int64,
            _c_double_p, _c_double_p]  # fmt: skip
    lib.compute_pmf_and_moments.argtypes = base
    lib.compute_pmf_and_moments.restype = ctypes.c_int
    lib.compute_pmf_and_moments_jacobian.argtypes = base + [_c_double_p, _c_double_p]
    lib.compute_pmf_and_moments_jacobian.restype = ctypes.c_int
    lib.compute_pmf_and_moments_hessian.argtypes = base + [_c_double_p] * 4
    lib.compute_pmf_and_moments_hessian.restype = ctypes.c_int
    lib.ptd_evaluate.argtypes = base[:5] + [ctypes.c_int64] + [_c_double_p] * 6
    lib.ptd_evaluate.restype = ctypes.c_int
    return lib


def _try_load(path: Path, key: str, verified: bool = False) -> Any | None:
    """The library at ``path`` if it is the file that was built (size and SHA-256 as
    recorded at build time, unless ``verified``: a truncated library would crash the
    loader with SIGBUS), loads and carries ``key``; None otherwise."""
    if not path.is_file() or not (verified or compiler.matches_record(path)):
        return None
    try:
        lib = _bind(ctypes.PyDLL(str(path)))
        if lib.ptd_cache_key().decode() == key:
            return lib
    except (OSError, AttributeError, UnicodeDecodeError):
        pass
    return None


def load_model(structure: Structure) -> Any:
    """The compiled library of ``structure``: from the disk cache, or built and cached."""
    cxx = compiler.find_compiler()
    if cxx is None:
        raise BackendError("backend 'legacy': no C++ compiler found (set CXX)")
    key = compiler.cache_key(structure.content_hash, cxx, codegen.GENERATOR_VERSION)
    with _lock:
        path = compiler.cache_dir() / f"model-{key[:32]}.so"
        lib = _try_load(path, key)
        if lib is None:
            # Missing, corrupt or foreign: rebuild under a fresh name so that a
            # stale handle of the old file is never reused by the loader.
            source = codegen.generate_source(structure, key)
            fresh = path.with_name(
                f"model-{key[:32]}-{np.random.default_rng().integers(1 << 62):x}.so"
            )
            compiler.compile_library(source, fresh, cxx)
            built = compiler.fingerprint(fresh)
            lib = _try_load(fresh, key, verified=True)  # just built by this process
            if lib is None:
                raise BackendError(f"backend 'legacy': the library built at {fresh} does not load")
            fresh.replace(path)
            compiler.write_record(path, built)
        return lib


def _as_ptr(arr: np.ndarray) -> Any:
    return arr.ctypes.data_as(_c_double_p)


class LegacyBackend(NativeBackend):
    """Run-time compiled C++ per model, loaded with ctypes.PyDLL (holds the GIL)."""

    name = "legacy"
    description = "generated C++ per model, compiled at run time, cached on disk, ctypes.PyDLL"
    priority = 0
    capabilities = Capabilities(
        jit_native=False, releases_gil=False, parallel_batch=False, second_derivatives=True
    )
    deprecated = (
        "the 'legacy' backend (run-time compiled C via ctypes) is kept for migration "
        "testing only: leave out backend= to get the fastest backend, with the same "
        "results to 1e-12. `ptdcore check MODEL.json` compares every backend on your "
        "model, and `ptdcore cache clear` removes the compiled libraries."
    )

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if compiler.find_compiler() is None:
            return False, "no C++ compiler found (install g++ or set CXX)"
        if not (compiler.include_dir() / "ptdcore" / "model.hpp").is_file():
            return False, f"engine headers missing from {compiler.include_dir()}"
        if not compiler.flags_file().is_file():
            return False, f"{compiler.flags_file()} is missing"
        return True, ""

    def prepare(self, structure: Structure) -> Any:
        return load_model(structure)

    def fill(
        self, prepared: Any, theta: np.ndarray, times: np.ndarray, nr_moments: int,
        outputs: tuple[np.ndarray, ...], output: int = 0,
    ) -> None:  # fmt: skip
        args = [_as_ptr(theta), theta.shape[0], _as_ptr(times), times.shape[0], nr_moments]
        buffers = [_as_ptr(a) for a in outputs] + [None] * (6 - len(outputs))
        if prepared.ptd_evaluate(*args, output, *buffers) != 0:
            raise BackendError(f"backend 'legacy' failed: {prepared.ptd_last_error().decode()}")

    def cache_info(self) -> str | None:
        path = compiler.cache_dir()
        count, size = _cache_entries(path)
        return (
            f"legacy compile cache: {path}\n{count} entries, {size / 1e6:.1f} MB "
            "(PTDCORE_CACHE_DIR moves it)"
        )

    def clear_cache(self) -> str | None:
        import shutil

        path = compiler.cache_dir()
        count, size = _cache_entries(path)
        if path.is_dir():
            shutil.rmtree(path)
        return f"cleared {path} ({count} entries, {size / 1e6:.1f} MB)"


def _cache_entries(path: Path) -> tuple[int, int]:
    """Compiled libraries in the cache folder ``path``: their count and total bytes."""
    entries = sorted(path.glob("*.so")) if path.is_dir() else []
    return len(entries), sum(p.stat().st_size for p in entries if p.is_file())


@hookimpl
def ptdcore_register_backends() -> list[type[NativeBackend]]:
    return [LegacyBackend]
