"""The reference backend against independent references on the corpus."""

from __future__ import annotations

import math

import numpy as np
import pytest
from references import assert_rel_close, discrete_pmf_dense, mp_moments, mp_pdf
from scipy.linalg import expm

import ptdcore
from ptdcore.testing import corpus_names, get_corpus_model

REFERENCE = "pybind11"
SMALL = [n for n in corpus_names() if get_corpus_model(n).graph.nr_states <= 12]


@pytest.mark.parametrize("name", SMALL)
def test_corpus_against_dense_references(name):
    m = get_corpus_model(name)
    g = m.graph
    res = ptdcore.get_backend(REFERENCE).compute_pmf_and_moments(
        g.structure(), m.thetas, m.times, m.nr_moments
    )
    for b, theta in enumerate(m.thetas):
        if g.discrete:
            T, t = g.sub_intensity(theta)
            assert_rel_close(
                res.pmf[b], discrete_pmf_dense(g.alpha, T, t, m.times.astype(int)), 1e-12
            )
            N = np.linalg.inv(np.eye(len(T)) - T)
            # E[N] = alpha (I - T)^{-1} 1 (the first factorial moment)
            assert res.moments[b, 0] == pytest.approx(g.alpha @ N @ np.ones(len(T)), rel=1e-13)
            continue
        if g.rewards is not None:
            assert_rel_close(
                res.moments[b], mp_moments(g, theta, m.nr_moments, rewards=g.rewards), 1e-13
            )
            continue
        if g.nr_states <= 8:
            assert_rel_close(res.pmf[b], mp_pdf(g, theta, m.times), 1e-12, what=f"{name} pdf")
        else:
            S, s = g.sub_intensity(theta)
            ref = np.array([g.alpha @ expm(S * t) @ s for t in m.times])
            assert_rel_close(res.pmf[b], ref, 1e-11, what=f"{name} pdf (scipy expm)")
        assert_rel_close(
            res.moments[b], mp_moments(g, theta, m.nr_moments), 1e-13, what=f"{name} moments"
        )
        assert math.isfinite(res.moments[b, -1])
