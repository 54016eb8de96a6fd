"""The whole corpus on every backend: engine backends pairwise at rtol=1e-12, and each
against the independent reference backend within their declared tolerances."""

from __future__ import annotations

import warnings

import pytest

import ptdcore
from ptdcore.testing import assert_backends_equivalent, corpus_names, get_corpus_model


@pytest.mark.parametrize("name", corpus_names())
def test_corpus_model_all_backends_pairwise(name):
    m = get_corpus_model(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the harness itself must not warn (no legacy deprecation)
        comparisons = assert_backends_equivalent(
            m.graph, m.thetas, m.times, m.nr_moments, rtol=1e-12
        )
    n = len(set(ptdcore.list_backends()) | {"reference"})
    assert len(comparisons) == 4 * n * (n - 1) // 2
    against_reference = [c for c in comparisons if "reference" in (c.first, c.second)]
    assert len(against_reference) == 4 * (n - 1) and all(c.passed for c in against_reference)


def test_corpus_fixture_from_the_pytest_plugin(ptd_backend, ptd_corpus_model):
    """What a third-party backend's suite would write: its backend against pybind11."""
    m = ptd_corpus_model
    assert_backends_equivalent(
        m.graph, m.thetas, m.times, m.nr_moments, backends=[ptd_backend, "pybind11"]
    )
