"""The ffi backend: jit caching safety, lowering without callbacks, handler errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import engine_eval

import ptdcore
from ptdcore.coalescent import kingman_graph
from ptdcore.testing import random_graph

pytestmark = pytest.mark.skipif("ffi" not in ptdcore.list_backends(), reason="ffi unavailable")


def test_ffi_is_the_default_backend(monkeypatch):
    monkeypatch.delenv("PTDCORE_BACKEND", raising=False)
    assert ptdcore.get_backend().name == "ffi"
    assert ptdcore.get_backend("ffi").capabilities.jit_native


def test_two_models_in_one_jitted_function():
    a, b = random_graph(40, nr_states=4, nr_params=2), random_graph(41, nr_states=4, nr_params=2)
    ma, mb = ptdcore.model(a, 2, backend="ffi"), ptdcore.model(b, 2, backend="ffi")
    theta, times = jnp.array([0.7, 1.1]), jnp.array([0.3, 1.0])
    pa, pb = jax.jit(lambda th, t: (ma(th, t)[0], mb(th, t)[0]))(theta, times)
    np.testing.assert_array_equal(pa, engine_eval(a, theta, times, 0)[0][0])
    np.testing.assert_array_equal(pb, engine_eval(b, theta, times, 0)[0][0])
    assert not np.allclose(pa, pb)


def test_same_shapes_never_share_a_structure():
    # Identical shapes and the same Python function: jit caches must not mix models.
    graphs = [random_graph(s, nr_states=4, nr_params=2) for s in (50, 51, 52)]
    theta, times = jnp.array([0.9, 0.4]), jnp.array([0.5, 2.0])

    def run(graph):
        m = ptdcore.model(graph, 1, backend="ffi")
        return jax.jit(lambda th: m(th, times)[0])(theta)

    for g in graphs + graphs[::-1]:
        np.testing.assert_array_equal(run(g), engine_eval(g, theta, times, 0)[0][0])


def test_lowered_scan_of_gradient_steps_has_custom_calls_and_no_callback():
    m = ptdcore.model(kingman_graph(5), 2, backend="ffi")
    data = jnp.array([0.5, 1.0, 2.0])

    def loglik(th):
        return jnp.sum(jnp.log(m(th, data)[0]))

    def run(p):
        return jax.lax.scan(
            lambda c, _: (c + 1e-3 * jax.vmap(jax.grad(loglik))(c), None), p, None, 200
        )[0]

    text = jax.jit(run).lower(jnp.ones((8, 1))).as_text()
    assert "ptdcore_pmf_moments_jacobian" in text
    assert "callback" not in text.lower()
    out = jax.jit(run)(jnp.ones((8, 1)))
    assert bool(jnp.all(jnp.isfinite(out)))


def test_vmap_reaches_the_handler_as_one_batch():
    m = ptdcore.model(kingman_graph(4), 1, backend="ffi")
    text = jax.jit(jax.vmap(m, in_axes=(0, None))).lower(jnp.ones((16, 1)), jnp.ones(3)).as_text()
    assert text.count("ptdcore_pmf_moments") == 1
    assert "16x3" in text.replace(" ", "")


def test_handler_error_becomes_python_exception(monkeypatch):
    import ptdcore_backends.ffi as ffi_mod

    good = kingman_graph(4).structure()
    other = kingman_graph(5).structure()
    handle = ffi_mod.FfiBackend().prepared(good)
    # Forge a call whose content hash does not match the registered id.
    with pytest.raises(Exception, match="does not match the structure's content hash"):
        jax.block_until_ready(
            ffi_mod.ffi_evaluate(other, 1, jnp.ones((1, 1)), jnp.ones(2), False, handle)
        )


def test_wrong_theta_shape_raises_when_traced():
    m = ptdcore.model(kingman_graph(4), 1, backend="ffi")
    with pytest.raises(ValueError, match=r"theta must have shape \(1,\)"):
        jax.jit(m)(jnp.ones(2), jnp.ones(3))


def distinct_models(count, n=6):
    """``count`` different structures (the same chain, constants nudged)."""
    import dataclasses

    base = kingman_graph(n).structure()
    return [
        dataclasses.replace(base, constant=base.constant + 1e-12 * (i + 1)) for i in range(count)
    ]


def jitted_density(model):
    return jax.jit(lambda th: model(th, jnp.array([0.5]))[0])


def test_prepared_models_live_as_long_as_their_model_and_the_cache_is_bounded(monkeypatch):
    """The registry used to keep every model for the life of the process (100 deleted
    models of 37,337 states held 4.7 GB). Now: a model's engine memory lives while the
    ptdcore model does (or while it is among the cache's most recent), no longer."""
    import gc

    import ptdcore_backends.ffi as ffi_mod
    from ptdcore_backends.ffi import _ffi

    ffi_mod.FfiBackend.clear_prepared()
    monkeypatch.setattr(ffi_mod.FfiBackend, "cache_size", 3)
    gc.collect()
    before = _ffi.live_models()
    kept = ptdcore.model(distinct_models(1)[0], 1, backend="ffi")
    fn = jitted_density(kept)
    value = float(fn(jnp.array([1.0]))[0])
    for s in distinct_models(20)[1:]:
        m = ptdcore.model(s, 1, backend="ffi")
        m(jnp.array([1.0]), jnp.array([0.5]))
        del m
    gc.collect()
    assert _ffi.live_models() - before <= 3 + 1  # the cache's three, and the kept model
    # the kept model was evicted from the cache long ago, yet its jitted function works
    assert float(fn(jnp.array([1.0]))[0]) == value
    del kept, fn
    ffi_mod.FfiBackend.clear_prepared()
    gc.collect()
    assert _ffi.live_models() == before


def test_a_call_with_a_released_model_id_says_so():
    import gc

    import ptdcore_backends.ffi as ffi_mod

    (structure,) = distinct_models(1, n=5)
    handle = ffi_mod.FfiBackend().prepare(structure)  # not cached: only this handle owns it
    model_id = handle.id
    del handle
    gc.collect()
    from ptdcore_backends.ffi import _ffi

    outputs = [np.empty((1, 1)), np.empty((1, 1))]
    with pytest.raises(ValueError, match=f"model id {model_id} was released"):
        _ffi.evaluate_into(
            model_id, structure.content_hash, np.ones((1, 1)), np.ones(1), 1, outputs
        )


def test_the_cache_is_bounded_in_bytes_too(monkeypatch):
    backend = ptdcore.get_backend("pybind11")
    cls = type(backend)
    cls.clear_prepared()
    structures = distinct_models(6)
    monkeypatch.setattr(cls, "cache_bytes", 2 * cls.prepared_bytes(structures[0]) + 1)
    for s in structures:
        backend.compute_pmf_and_moments(s, [[1.0]], [0.5], 1)
    assert len(cls._prepared) == 2
    cls.clear_prepared()
