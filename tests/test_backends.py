"""The backends directly: agreement, threads, the legacy compile cache, GraphBuilder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from conftest import ENGINE_BACKENDS, engine_eval, require_backend
from references import assert_rel_close, mp_pdf

import ptdcore
from ptdcore.coalescent import kingman_graph
from ptdcore.testing import random_graph

BACKENDS = ENGINE_BACKENDS

MODELS = {
    "kingman6": lambda: kingman_graph(6),
    "kingman5-singleton": lambda: kingman_graph(5, reward="singleton"),
    "random-cyclic": lambda: random_graph(3, nr_states=6, nr_params=3),
    "random-rewards": lambda: random_graph(5, nr_states=6, nr_params=2, rewards=True),
    "random-discrete": lambda: random_graph(8, nr_states=5, nr_params=2, discrete=True),
}


@pytest.mark.parametrize("model_name", list(MODELS))
def test_all_backends_agree_to_1e12(model_name):
    g = MODELS[model_name]()
    rng = np.random.default_rng(7)
    P = g.nr_params
    thetas = rng.uniform(0.2, 0.9 if g.discrete else 2.0, (4, P))
    times = np.arange(0, 12.0) if g.discrete else rng.uniform(0, 4, 6)
    results = {
        name: ptdcore.get_backend(require_backend(name)).compute_pmf_and_moments(
            g.structure(), thetas, times, 3, jacobian=True
        )
        for name in BACKENDS
    }
    ref = results[BACKENDS[0]]
    for name, res in results.items():
        for label, a, b in zip(("pmf", "moments", "dpmf", "dmoments"), res, ref, strict=True):
            np.testing.assert_allclose(
                a, b, rtol=1e-12, atol=0, err_msg=f"{name} vs {BACKENDS[0]}: {label}"
            )


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_against_mpmath(name):
    require_backend(name)
    g = random_graph(12, nr_states=4, nr_params=2)
    theta = np.array([[1.2, 0.4]])
    times = np.array([0.2, 1.0, 3.0])
    pmf, _ = ptdcore.get_backend(name).compute_pmf_and_moments(g.structure(), theta, times, 1)
    assert_rel_close(pmf[0], mp_pdf(g, theta[0], times), 1e-12)


@pytest.mark.parametrize("name", [n for n in BACKENDS if n != "legacy"])
def test_concurrent_python_threads_give_identical_results(name):
    backend = ptdcore.get_backend(require_backend(name))
    s = kingman_graph(8).structure()
    thetas = np.linspace(0.5, 2.0, 16)[:, None]
    times = np.linspace(0.0, 4.0, 50)
    serial = backend.compute_pmf_and_moments(s, thetas, times, 2, jacobian=True)
    results, errors = [None] * 4, []

    def work(i):
        try:
            for _ in range(5):
                results[i] = backend.compute_pmf_and_moments(s, thetas, times, 2, jacobian=True)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for res in results:
        for a, b in zip(res, serial, strict=True):
            np.testing.assert_array_equal(a, b)


def test_legacy_serialises_threads_and_agrees():
    backend = ptdcore.get_backend(require_backend("legacy"))
    s = kingman_graph(5).structure()
    thetas = np.linspace(0.5, 2.0, 8)[:, None]
    serial = backend.compute_pmf_and_moments(s, thetas, [0.5, 1.0], 2)
    out = []
    threads = [
        threading.Thread(
            target=lambda: out.append(backend.compute_pmf_and_moments(s, thetas, [0.5, 1.0], 2))
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 3
    for res in out:
        np.testing.assert_array_equal(res.pmf, serial.pmf)
    assert not ptdcore.get_backend("legacy").capabilities.releases_gil


def _python_ticks_during_call(backend_name: str) -> tuple[float, float, int]:
    """(duration of one backend call, longest gap a ticking Python thread saw around
    it, number of ticks strictly inside the call)."""
    import time

    backend = ptdcore.get_backend(require_backend(backend_name))
    s = kingman_graph(16).structure()
    thetas = np.linspace(0.5, 2.0, 256)[:, None]
    times = np.linspace(0.0, 6.0, 400)
    backend.compute_pmf_and_moments(s, thetas[:1], times, 2)  # compile/prepare outside
    stamps, stop = [], threading.Event()

    def ticker():
        while not stop.is_set():
            stamps.append(time.perf_counter())
            time.sleep(0.0005)

    thread = threading.Thread(target=ticker)
    thread.start()
    time.sleep(0.02)
    start = time.perf_counter()
    backend.compute_pmf_and_moments(s, thetas, times, 2, jacobian=True)
    duration = time.perf_counter() - start
    time.sleep(0.02)
    stop.set()
    thread.join()
    window = [t for t in stamps if start - 0.01 <= t <= start + duration + 0.01]
    gaps = np.diff(window) if len(window) > 1 else np.array([duration])
    inside = sum(start < t < start + duration for t in stamps)
    return duration, float(gaps.max()), inside


def test_legacy_holds_the_gil_for_the_whole_call_with_a_real_thread():
    """ctypes.PyDLL: no Python thread runs during the call (the legacy behaviour kept)."""
    duration, pause, _ = _python_ticks_during_call("legacy")
    assert duration > 0.02, "the call is too short to tell"
    # The Python code around the ctypes call may let the ticker in at the edges; the
    # C call itself blocks it: one pause covers (nearly) the whole call.
    assert pause >= 0.8 * duration, (duration, pause)


def test_pybind11_lets_python_threads_run_during_the_call():
    duration, _, inside = _python_ticks_during_call("pybind11")
    assert duration > 0.02, "the call is too short to tell"
    assert inside >= 3, (duration, inside)


@pytest.fixture
def legacy_cache(tmp_path):
    require_backend("legacy")
    return tmp_path


LEGACY_SCRIPT = textwrap.dedent(
    """
    import sys, ptdcore
    from ptdcore.testing import random_graph
    g = random_graph(int(sys.argv[1]), nr_states=4, nr_params=1)
    r = ptdcore.get_backend("legacy").compute_pmf_and_moments(g.structure(), [[1.0]], [0.5], 1)
    print(repr(float(r.pmf[0, 0])))
    """
)


def run_legacy(cache, seeds):
    """Evaluate random_graph(seed) through legacy, one new process per seed, all at once."""
    env = dict(os.environ, PTDCORE_CACHE_DIR=str(cache))
    procs = [
        subprocess.Popen([sys.executable, "-c", LEGACY_SCRIPT, str(seed)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in seeds
    ]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    return [out.strip() for out, _ in outs]


def expected_pmf(seed):
    g = random_graph(seed, nr_states=4, nr_params=1)
    return repr(float(engine_eval(g, [1.0], [0.5], 1)[0][0, 0]))


def replace_file(path, data):
    """Replace a file as another process would (new inode; never edit a mapped library)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def test_legacy_concurrent_processes_share_the_cache(legacy_cache):
    assert run_legacy(legacy_cache, [33, 33, 33]) == [expected_pmf(33)] * 3
    assert len(list(legacy_cache.glob("model-*.so"))) == 1
    assert not list(legacy_cache.glob(".build-*"))


def test_legacy_corrupt_cache_entry_is_rebuilt(legacy_cache):
    run_legacy(legacy_cache, [30])
    (lib,) = legacy_cache.glob("model-*.so")
    replace_file(lib, b"not a shared library")
    assert run_legacy(legacy_cache, [30]) == [expected_pmf(30)]
    assert lib.read_bytes()[:4] == b"\x7fELF"


def test_legacy_truncated_cache_entry_is_rebuilt_not_loaded(legacy_cache):
    """A library cut short on disk (a full disk, a killed copy) used to kill the process with
    SIGBUS inside the loader; it must be detected by its record and rebuilt. Each run is a
    subprocess, so a crash fails this test instead of ending the test session."""
    run_legacy(legacy_cache, [34])
    (lib,) = legacy_cache.glob("model-*.so")
    data = lib.read_bytes()
    with open(lib, "r+b") as f:  # truncate in place, as a failed write leaves it
        f.truncate(len(data) // 2)
    assert run_legacy(legacy_cache, [34]) == [expected_pmf(34)]
    assert lib.read_bytes() == data or lib.stat().st_size > len(data) // 2
    record = lib.with_name(lib.name + ".sha256")
    record.unlink()  # a library without its record (an older cache) is rebuilt too
    assert run_legacy(legacy_cache, [34]) == [expected_pmf(34)]
    assert record.is_file()


def test_legacy_foreign_cache_entry_is_rebuilt(legacy_cache):
    run_legacy(legacy_cache, [31])
    (lib_a,) = legacy_cache.glob("model-*.so")
    run_legacy(legacy_cache, [32])
    (lib_b,) = set(legacy_cache.glob("model-*.so")) - {lib_a}
    replace_file(lib_a, lib_b.read_bytes())  # 31's entry now holds 32's library
    assert run_legacy(legacy_cache, [31]) == [expected_pmf(31)]


def test_graph_builder_compat_api():
    from ptdcore_backends.pybind11 import GraphBuilder

    g = kingman_graph(5)
    builder = GraphBuilder(g.to_json())
    assert builder.param_length == 1 and builder.vertices_length == g.nr_states
    times = np.array([0.5, 1.0])
    pmf, mom = engine_eval(g, [1.0], times, 2)
    np.testing.assert_array_equal(builder.compute_pmf([1.0], times, granularity=7), pmf[0])
    np.testing.assert_array_equal(builder.compute_moments([1.0], 2), mom[0])
    p2, m2 = builder.compute_pmf_and_moments([[1.0], [1.0]], times, 2)
    assert p2.shape == (2, 2) and m2.shape == (2, 2)
    with pytest.raises(ValueError, match="discrete=True but the structure is continuous"):
        builder.compute_pmf([1.0], times, discrete=True)
