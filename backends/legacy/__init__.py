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

from ptdcore.backend import (
    Backend,
    Capabilities,
    PmfMoments,
    PmfMomentsHessian,
    PmfMomentsJacobian,
    as_result,
    check_inputs,
    empty_outputs,
)
from ptdcore.hookspecs import hookimpl
from ptdcore.structure import Structure

from . import codegen, compiler

_c_double_p = ctypes.POINTER(ctypes.c_double)
_lock = threading.Lock()
_loaded: dict[str, Any] = {}


def _bind(lib: Any) -> Any:
    lib.ptd_cache_key.restype = ctypes.c_char_p
    lib.ptd_cache_key.argtypes = []
    base = [_c_double_p, ctypes.c_int64, _c_double_p, ctypes.c_int64, ctypes.c_int64,
            _c_double_p, _c_double_p]  # fmt: skip
    lib.compute_pmf_and_moments.argtypes = base
    lib.compute_pmf_and_moments.restype = ctypes.c_int
    lib.compute_pmf_and_moments_jacobian.argtypes = base + [_c_double_p, _c_double_p]
    lib.compute_pmf_and_moments_jacobian.restype = ctypes.c_int
    lib.compute_pmf_and_moments_hessian.argtypes = base + [_c_double_p] * 4
    lib.compute_pmf_and_moments_hessian.restype = ctypes.c_int
    return lib


def _try_load(path: Path, key: str) -> Any | None:
    """The library at ``path`` if it loads and carries ``key``; None otherwise."""
    if not path.is_file():
        return None
    try:
        lib = _bind(ctypes.PyDLL(str(path)))
        if lib.ptd_cache_key().decode() == key:
            return lib
    except (OSError, AttributeError, UnicodeDecodeError):
        pass
    return None


def load_model(structure: Structure) -> Any:
    """The compiled library of ``structure``: from memory, from the disk cache, or built."""
    cxx = compiler.find_compiler()
    if cxx is None:
        raise RuntimeError("legacy backend: no C++ compiler found (set CXX)")
    key = compiler.cache_key(structure.content_hash, cxx, codegen.GENERATOR_VERSION)
    with _lock:
        if key in _loaded:
            return _loaded[key]
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
            lib = _try_load(fresh, key)
            if lib is None:
                raise RuntimeError(f"legacy backend: the library built at {fresh} does not load")
            fresh.replace(path)
        _loaded[key] = lib
        return lib


def _as_ptr(arr: np.ndarray) -> Any:
    return arr.ctypes.data_as(_c_double_p)


class LegacyBackend(Backend):
    """Run-time compiled C++ per model, loaded with ctypes.PyDLL (holds the GIL)."""

    name = "legacy"
    description = "generated C++ per model, compiled at run time, cached on disk, ctypes.PyDLL"
    priority = 0
    capabilities = Capabilities(
        jit_native=False, releases_gil=False, parallel_batch=False, second_derivatives=True
    )

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if compiler.find_compiler() is None:
            return False, "no C++ compiler found (install g++ or set CXX)"
        if not (compiler.include_dir() / "ptdcore" / "model.hpp").is_file():
            return False, f"engine headers missing from {compiler.include_dir()}"
        return True, ""

    def compute_pmf_and_moments(
        self,
        structure: Structure,
        theta: Any,
        times: Any,
        nr_moments: int,
        *,
        jacobian: bool = False,
        hessian: bool = False,
    ) -> PmfMoments | PmfMomentsJacobian | PmfMomentsHessian:
        theta, times, K = check_inputs(structure, theta, times, nr_moments)
        lib = load_model(structure)
        B, T = theta.shape[0], times.shape[0]
        out = empty_outputs(B, T, K, structure.nr_params, jacobian, hessian)
        args = [_as_ptr(theta), B, _as_ptr(times), T, K, *(_as_ptr(a) for a in out)]
        entry = (
            lib.compute_pmf_and_moments_hessian
            if hessian
            else lib.compute_pmf_and_moments_jacobian
            if jacobian
            else lib.compute_pmf_and_moments
        )
        if entry(*args) != 0:
            raise RuntimeError("legacy backend: the model library reported an error")
        return as_result(out)


@hookimpl
def ptdcore_register_backends() -> list[type[Backend]]:
    return [LegacyBackend]
