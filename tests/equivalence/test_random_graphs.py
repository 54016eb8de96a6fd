"""Random graphs from hypothesis: backends agree and match dense expm."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from references import assert_rel_close
from scipy.linalg import expm

import ptdcore
from ptdcore.testing import assert_backends_equivalent, random_graph

FAST = [b for b in ptdcore.list_backends() if b != "legacy"]  # legacy compiles per model


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    n=st.integers(1, 7),
    params=st.integers(1, 3),
    discrete=st.booleans(),
    rewards=st.booleans(),
)
def test_random_graph_backends_agree(seed, n, params, discrete, rewards):
    g = random_graph(
        seed, nr_states=n, nr_params=params, discrete=discrete, rewards=rewards and not discrete
    )
    rng = np.random.default_rng(seed)
    thetas = rng.uniform(0.1, 1.0 if discrete else 3.0, (3, params))
    times = np.arange(0.0, 15.0) if discrete else rng.uniform(0.0, 5.0, 5)
    assert_backends_equivalent(g, thetas, times, 2, backends=FAST)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 6))
def test_random_graph_pdf_matches_expm(seed, n):
    g = random_graph(seed, nr_states=n, nr_params=2)
    theta = np.random.default_rng(seed).uniform(0.2, 2.0, 2)
    times = np.array([0.1, 0.8, 2.0])
    pmf, _ = ptdcore.get_backend("pybind11").compute_pmf_and_moments(
        g.structure(), theta[None], times, 0
    )
    S, s = g.sub_intensity(theta)
    assert_rel_close(pmf[0], [g.alpha @ expm(S * t) @ s for t in times], 1e-11)
