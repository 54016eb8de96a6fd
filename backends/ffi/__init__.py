"""The ffi backend: XLA FFI custom calls, jit-native (no Python in the loop).

Outside JAX transformations (``compute_pmf_and_moments`` and eager calls of the
model) the same registered model is evaluated directly by the extension, which
avoids compiling an XLA program for a single call.

Each structure is registered with the extension, which returns a handle that owns
the prepared model; the handle's id and the content hash travel as attributes of
the custom call, and the handler checks that they match. The model lives while a
handle does: the ptdcore model that uses it (its jitted functions close over the
handle) or the backend's cache of recent models, bounded in count and bytes. A
deleted model's memory is returned. ``vmap`` (``broadcast_all``) hands
the handler the whole batch, which it evaluates on XLA's intra-op thread pool.
"""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec
from typing import Any

import numpy as np

from ptdcore.backend import Capabilities, NativeBackend, output_code
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


def ffi_evaluate(
    structure: Structure,
    nr_moments: int,
    theta: Any,
    times: Any,
    order: int,
    handle: Any = None,
    output: int = 0,
) -> Any:
    """The custom call on theta (..., P) and times (..., T) (leading axes equal, or times 1-D).

    ``handle`` (the model's owner, from :meth:`FfiBackend.prepared`) names the model; by
    default the backend's cache provides it. ``output``: what the times give (an attribute
    of the call: 0 density, 1 cdf, 2 sf), so one registered model serves every output."""
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
        model_id=np.int64((handle or FfiBackend().prepared(structure)).id),
        content_hash=structure.content_hash,
        nr_moments=np.int64(K),
        output=np.int64(output),
    )


class FfiBackend(NativeBackend):
    """The engine as XLA FFI custom calls: runs inside jit, vmap, grad and lax.scan."""

    name = "ffi"
    description = "C++ engine as XLA FFI custom calls; jit-native, batch on XLA's thread pool"
    priority = 40
    capabilities = Capabilities(
        jit_native=True,
        releases_gil=True,
        parallel_batch=True,
        second_derivatives=True,
        sampling=True,
    )

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if find_spec("jax") is None:
            return False, "jax is not installed"
        if find_spec(f"{__name__}._ffi") is None:
            return False, "the compiled FFI module _ffi was not built"
        return True, ""

    def prepare(self, structure: Structure) -> Any:
        """The extension's handle for the structure (its id and content hash)."""
        from . import _ffi

        return _ffi.register_model(structure)

    def fill(
        self, prepared: Any, theta: np.ndarray, times: np.ndarray, nr_moments: int,
        outputs: tuple[np.ndarray, ...], output: int = 0,
    ) -> None:  # fmt: skip
        from . import _ffi

        _ffi.evaluate_into(
            prepared.id, prepared.content_hash, theta, times, nr_moments, outputs, output
        )

    def sample_prepared(self, prepared: Any, theta: np.ndarray, count: int, seed: int) -> Any:
        from . import _ffi

        return _ffi.sample(prepared.id, prepared.content_hash, theta, count, seed)

    def jax_evaluator(self, structure: Structure, nr_moments: int, output: str = "density") -> Any:
        # Registered now (errors surface at model creation) and owned by the evaluator:
        # the model lives as long as the ptdcore model and its jitted functions.
        handle = self.prepared(structure)
        code = output_code(output)

        def evaluate(theta: Any, times: Any, order: int) -> tuple[Any, ...]:
            return ffi_evaluate(structure, nr_moments, theta, times, order, handle, code)

        return evaluate


@hookimpl
def ptdcore_register_backends() -> list[type[NativeBackend]]:
    return [FfiBackend]
