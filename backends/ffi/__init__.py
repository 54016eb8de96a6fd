"""The ffi backend: XLA FFI custom calls, jit-native (no Python in the loop).

Outside JAX transformations (``compute_pmf_and_moments`` and eager calls of the
model) the same registered model is evaluated directly by the extension, which
avoids compiling an XLA program for a single call.

Each structure is registered once with the extension, which keeps it alive and
returns an id; the id and the content hash travel as attributes of the custom
call, and the handler checks that they match. ``vmap`` (``broadcast_all``) hands
the handler the whole batch, which it evaluates on XLA's intra-op thread pool.
"""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec
from typing import Any

import numpy as np

from ptdcore.backend import Capabilities, NativeBackend
from ptdcore.hookspecs import hookimpl
from ptdcore.structure import Structure

TARGET = "ptdcore_pmf_moments"
TARGET_JACOBIAN = "ptdcore_pmf_moments_jacobian"
TARGET_HESSIAN = "ptdcore_pmf_moments_hessian"


@cache
def _register_targets() -> None:
    """Register the handlers with XLA (once per process, on the first traced call)."""
    import jax

    from . import _ffi

    for name, capsule in _ffi.registrations().items():
        jax.ffi.register_ffi_target(name, capsule, platform="cpu")
    for name, capsule in _ffi.registrations_cuda().items():  # built with PTDCORE_BUILD_CUDA
        jax.ffi.register_ffi_target(name, capsule, platform="CUDA")


def model_id(structure: Structure) -> int:
    """The extension's id for ``structure`` (registered on first use)."""
    return FfiBackend().prepared(structure)[0]


def ffi_evaluate(structure: Structure, nr_moments: int, theta: Any, times: Any, order: int) -> Any:
    """The custom call on theta (..., P) and times (..., T) (leading axes equal, or times 1-D)."""
    import jax
    import jax.numpy as jnp

    _register_targets()
    P, K = structure.nr_params, nr_moments
    lead = theta.shape[:-1]
    T = times.shape[-1]
    shapes = [lead + (T,), lead + (K,)]
    if order >= 1:
        shapes += [lead + (T, P), lead + (K, P)]
    if order >= 2:
        shapes += [lead + (T, P, P), lead + (K, P, P)]
    call = jax.ffi.ffi_call(
        (TARGET, TARGET_JACOBIAN, TARGET_HESSIAN)[int(order)],
        tuple(jax.ShapeDtypeStruct(s, jnp.float64) for s in shapes),
        vmap_method="broadcast_all",
    )
    return call(
        jnp.asarray(theta, jnp.float64),
        jnp.asarray(times, jnp.float64),
        model_id=np.int64(model_id(structure)),
        content_hash=structure.content_hash,
        nr_moments=np.int64(K),
    )


class FfiBackend(NativeBackend):
    """The engine as XLA FFI custom calls: runs inside jit, vmap, grad and lax.scan."""

    name = "ffi"
    description = "C++ engine as XLA FFI custom calls; jit-native, batch on XLA's thread pool"
    priority = 40
    capabilities = Capabilities(
        jit_native=True, releases_gil=True, parallel_batch=True, second_derivatives=True
    )
    cache_size = 1 << 30  # the extension keeps every registered model: so do we

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if find_spec("jax") is None:
            return False, "jax is not installed"
        if find_spec(f"{__name__}._ffi") is None:
            return False, "the compiled FFI module _ffi was not built"
        return True, ""

    def prepare(self, structure: Structure) -> tuple[int, str]:
        """The extension's id for the structure, and the content hash the calls carry."""
        from . import _ffi

        return _ffi.register_model(structure), structure.content_hash

    def fill(
        self, prepared: tuple[int, str], theta: np.ndarray, times: np.ndarray, nr_moments: int,
        outputs: tuple[np.ndarray, ...],
    ) -> None:  # fmt: skip
        from . import _ffi

        _ffi.evaluate_into(*prepared, theta, times, nr_moments, outputs)

    def jax_evaluator(self, structure: Structure, nr_moments: int) -> Any:
        model_id(structure)  # register now: errors surface at model creation

        def evaluate(theta: Any, times: Any, order: int) -> tuple[Any, ...]:
            return ffi_evaluate(structure, nr_moments, theta, times, order)

        return evaluate


@hookimpl
def ptdcore_register_backends() -> list[type[NativeBackend]]:
    return [FfiBackend]
