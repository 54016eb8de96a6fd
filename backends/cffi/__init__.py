"""The cffi backend: the engine's C ABI (libptdcore_capi) through cffi, GIL released."""

from __future__ import annotations

from functools import lru_cache
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

_CDEF = """
typedef struct ptd_model ptd_model;
ptd_model* ptd_model_new(int64_t nr_states, int64_t nr_params, int discrete,
    const double* alpha, int64_t nr_edges, const int64_t* src, const int64_t* dst,
    const double* constant, const int64_t* coef_ptr, const int64_t* coef_index,
    const double* coef_value, const double* rewards, int64_t nr_rewards, int output,
    int64_t epochs, char* err, int64_t err_len);
void ptd_model_free(ptd_model* model);
int ptd_model_evaluate(const ptd_model* model, const double* theta, int64_t B,
    const double* times, int64_t T, int64_t K, double* pmf, double* moments,
    double* dpmf, double* dmoments, int threads, char* err, int64_t err_len);
int ptd_model_evaluate_hessian(const ptd_model* model, const double* theta, int64_t B,
    const double* times, int64_t T, int64_t K, double* pmf, double* moments,
    double* dpmf, double* dmoments, double* d2pmf, double* d2moments, int threads,
    char* err, int64_t err_len);
"""
_ERR_LEN = 1024


def library_path() -> Path:
    return Path(__file__).with_name("libptdcore_capi.so")


@lru_cache(maxsize=1)
def _ffi_and_lib() -> tuple[Any, Any]:
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    return ffi, ffi.dlopen(str(library_path()))


def _ptr(ffi: Any, ctype: str, arr: np.ndarray | None) -> Any:
    return ffi.NULL if arr is None else ffi.cast(ctype, ffi.from_buffer(arr))


@lru_cache(maxsize=64)
def prepare(structure: Structure) -> Any:
    """An engine model (``ptd_model*``, freed with the cache entry)."""
    ffi, lib = _ffi_and_lib()
    s = structure
    err = ffi.new("char[]", _ERR_LEN)
    model = lib.ptd_model_new(
        s.nr_states, s.nr_params, int(s.discrete), _ptr(ffi, "double*", s.alpha), s.nr_edges,
        _ptr(ffi, "int64_t*", s.src), _ptr(ffi, "int64_t*", s.dst),
        _ptr(ffi, "double*", s.constant), _ptr(ffi, "int64_t*", s.coef_ptr),
        _ptr(ffi, "int64_t*", s.coef_index), _ptr(ffi, "double*", s.coef_value),
        _ptr(ffi, "double*", s.rewards), 0 if s.rewards is None else s.rewards.size,
        s.output_code, s.epochs, err, _ERR_LEN,
    )  # fmt: skip
    if model == ffi.NULL:
        raise ValueError(f"cffi backend: {ffi.string(err).decode()}")
    return ffi.gc(model, lib.ptd_model_free)


class CffiBackend(Backend):
    """The engine's C ABI through cffi (ABI mode); cffi releases the GIL around calls."""

    name = "cffi"
    description = "C++ engine via its C ABI and cffi; GIL released, batch rows in parallel"
    priority = 20
    capabilities = Capabilities(
        jit_native=False, releases_gil=True, parallel_batch=True, second_derivatives=True
    )

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if not library_path().exists():
            return False, f"{library_path().name} was not built"
        try:
            _ffi_and_lib()
        except Exception as exc:
            return False, f"cannot load {library_path().name}: {exc}"
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
        ffi, lib = _ffi_and_lib()
        model = prepare(structure)
        B, T = theta.shape[0], times.shape[0]
        out = empty_outputs(B, T, K, structure.nr_params, jacobian, hessian)
        pmf, moments, dpmf, dmoments, d2pmf, d2moments = out + (None,) * (6 - len(out))
        err = ffi.new("char[]", _ERR_LEN)
        status = lib.ptd_model_evaluate_hessian(
            model, _ptr(ffi, "double*", theta), B, _ptr(ffi, "double*", times), T, K,
            _ptr(ffi, "double*", pmf), _ptr(ffi, "double*", moments),
            _ptr(ffi, "double*", dpmf), _ptr(ffi, "double*", dmoments),
            _ptr(ffi, "double*", d2pmf), _ptr(ffi, "double*", d2moments), 0, err, _ERR_LEN,
        )  # fmt: skip
        if status != 0:
            raise RuntimeError(f"cffi backend: {ffi.string(err).decode()}")
        return as_result(out)


@hookimpl
def ptdcore_register_backends() -> list[type[Backend]]:
    return [CffiBackend]
