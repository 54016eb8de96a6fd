"""pytest plugin (entry point ``pytest11``): backend and corpus fixtures.

A third-party backend's test suite can run the whole corpus against its backend::

    def test_corpus(ptd_backend, ptd_corpus_model):
        from ptdcore.testing import assert_backends_equivalent
        m = ptd_corpus_model
        assert_backends_equivalent(m.graph, m.thetas, m.times, m.nr_moments,
                                   backends=[ptd_backend, "pybind11"])

``assert_backends_equivalent`` also compares every backend with the independent
``reference`` backend (pure JAX, no shared code with the engine) within the two
backends' declared tolerances, so a third-party backend is checked against an
independent algorithm, not only against another binding of the same engine.

``--ptd-backends=a,b`` restricts ``ptd_backend`` to the named backends (default:
every backend that can run here).
"""

from __future__ import annotations

from typing import Any


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("ptdcore")
    group.addoption(
        "--ptd-backends",
        default=None,
        help="comma-separated backends for the ptd_backend fixture (default: all available)",
    )


def pytest_generate_tests(metafunc: Any) -> None:
    if "ptd_backend" in metafunc.fixturenames:
        from ptdcore import list_backends

        option = metafunc.config.getoption("--ptd-backends")
        names = [n.strip() for n in option.split(",") if n.strip()] if option else list_backends()
        metafunc.parametrize("ptd_backend", names, ids=names, indirect=True)
    if "ptd_corpus_model" in metafunc.fixturenames:
        from ptdcore.testing import corpus_names

        names = corpus_names()
        metafunc.parametrize("ptd_corpus_model", names, ids=names, indirect=True)


def _ptd_backend(request: Any) -> Any:
    from ptdcore import get_backend

    return get_backend(request.param)


def _ptd_corpus_model(request: Any) -> Any:
    from ptdcore.testing import get_corpus_model

    return get_corpus_model(request.param)


def _register() -> tuple[Any, Any]:
    import pytest

    return (
        pytest.fixture(name="ptd_backend")(_ptd_backend),
        pytest.fixture(name="ptd_corpus_model")(_ptd_corpus_model),
    )


ptd_backend_fixture, ptd_corpus_model_fixture = _register()
