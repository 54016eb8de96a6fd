"""The cffi backend: the engine's C ABI (libptdcore_capi) through cffi, GIL released."""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from ptdcore.backend import Capabilities, NativeBackend
from ptdcore.errors import BackendError, ModelError
from ptdcore.hookspecs import hookimpl
from ptdcore.structure import Structure

_CDEF = """
typedef struct ptd_model ptd_model;
ptd_model* ptd_model_new(int64_t nr_states, int64_t nr_params, int discrete,
    const double* alpha, int64_t nr_edges, const int64_t* src, const int64_t* dst,
    const double* constant, const int64_t* coef_ptr, const int64_t* coef_index,
    const double* coef_value, const double* rewards, int64_t nr_rewards, int reward_matrix,
    int64_t epochs, char* err, int64_t err_len);
void ptd_model_free(ptd_model* model);
int ptd_model_evaluate(const ptd_model* model, const double* theta, int64_t B,
    const double* times, int64_t T, int64_t K, int output, double* pmf, double* moments,
    double* dpmf, double* dmoments, int threads, char* err, int64_t err_len);
int ptd_model_evaluate_hessian(const ptd_model* model, const double* theta, int64_t B,
    const double* times, int64_t T, int64_t K, int output, double* pmf, double* moments,
    double* dpmf, double* dmoments, double* d2pmf, double* d2moments, int threads,
    char* err, int64_t err_len);
int ptd_model_sample(const ptd_model* model, const double* theta, int64_t count,
    uint64_t seed, double* out, int threads, char* err, int64_t err_len);
"""
_ERR_LEN = 1024


def library_path() -> Path:
    return Path(__file__).with_name("libptdcore_capi.so")


@cache
def _ffi_and_lib() -> tuple[Any, Any]:
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    return ffi, ffi.dlopen(str(library_path()))


def _ptr(ffi: Any, ctype: str, arr: np.ndarray | None) -> Any:
    return ffi.NULL if arr is None else ffi.cast(ctype, ffi.from_buffer(arr))


class CffiBackend(NativeBackend):
    """The engine's C ABI through cffi (ABI mode); cffi releases the GIL around calls."""

    name = "cffi"
    description = "C++ engine via its C ABI and cffi; GIL released, batch rows in parallel"
    priority = 20
    capabilities = Capabilities(
        jit_native=False,
        releases_gil=True,
        parallel_batch=True,
        second_derivatives=True,
        sampling=True,
    )

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if find_spec("cffi") is None:
            return False, "cffi is not installed"
        if not library_path().exists():
            return False, f"{library_path().name} was not built"
        return True, ""

    def prepare(self, structure: Structure) -> Any:
        """An engine model (``ptd_model*``, freed when the cache drops it)."""
        ffi, lib = _ffi_and_lib()
        s = structure
        err = ffi.new("char[]", _ERR_LEN)
        model = lib.ptd_model_new(
            s.nr_states, s.nr_params, int(s.discrete), _ptr(ffi, "double*", s.alpha),
            s.nr_edges, _ptr(ffi, "int64_t*", s.src), _ptr(ffi, "int64_t*", s.dst),
            _ptr(ffi, "double*", s.constant), _ptr(ffi, "int64_t*", s.coef_ptr),
            _ptr(ffi, "int64_t*", s.coef_index), _ptr(ffi, "double*", s.coef_value),
            _ptr(ffi, "double*", s.rewards), 0 if s.rewards is None else s.rewards.size,
            int(s.reward_matrix), s.epochs, err, _ERR_LEN,
        )  # fmt: skip
        if model == ffi.NULL:
            raise ModelError(f"backend 'cffi' rejects the model: {ffi.string(err).decode()}")
        return ffi.gc(model, lib.ptd_model_free)

    def fill(
        self, prepared: Any, theta: np.ndarray, times: np.ndarray, nr_moments: int,
        outputs: tuple[np.ndarray, ...], output: int = 0,
    ) -> None:  # fmt: skip
        ffi, lib = _ffi_and_lib()
        pmf, moments, dpmf, dmoments, d2pmf, d2moments = outputs + (None,) * (6 - len(outputs))
        err = ffi.new("char[]", _ERR_LEN)
        status = lib.ptd_model_evaluate_hessian(
            prepared, _ptr(ffi, "double*", theta), theta.shape[0],
            _ptr(ffi, "double*", times), times.shape[0], nr_moments, output,
            _ptr(ffi, "double*", pmf), _ptr(ffi, "double*", moments),
            _ptr(ffi, "double*", dpmf), _ptr(ffi, "double*", dmoments),
            _ptr(ffi, "double*", d2pmf), _ptr(ffi, "double*", d2moments), 0, err, _ERR_LEN,
        )  # fmt: skip
        if status != 0:
            raise BackendError(f"backend 'cffi' failed: {ffi.string(err).decode()}")

    def sample_prepared(self, prepared: Any, theta: np.ndarray, count: int, seed: int) -> Any:
        ffi, lib = _ffi_and_lib()
        out = np.empty(count)
        err = ffi.new("char[]", _ERR_LEN)
        status = lib.ptd_model_sample(
            prepared, _ptr(ffi, "double*", theta), count, seed, _ptr(ffi, "double*", out), 0,
            err, _ERR_LEN,
        )  # fmt: skip
        if status != 0:
            raise BackendError(f"backend 'cffi' failed to sample: {ffi.string(err).decode()}")
        return out


@hookimpl
def ptdcore_register_backends() -> list[type[NativeBackend]]:
    return [CffiBackend]
