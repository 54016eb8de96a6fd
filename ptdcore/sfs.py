"""Site frequency spectra as data, and their composite likelihoods (contract section 13).

Shapes follow tskit: a joint SFS of demes with ``n_i`` sampled genomes has shape
``prod(n_i + 1)``, index ``(i_1, ..., i_D)`` the number of derived copies in each deme;
the all-ancestral and all-derived corners are part of the array. Observed spectra are
numpy arrays or numpy masked arrays (masked entries are left out of a likelihood).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["corners", "fold", "from_tskit", "impossible_entries", "loglik"]

LIKELIHOODS = ("poisson", "multinomial")


def from_tskit(ts: Any, sample_sets: Any = None, polarised: bool = True) -> np.ma.MaskedArray:
    """The observed SFS of a tree sequence's sites (``mode="site"``, counts, not
    normalised by the sequence length).

    Parameters
    ----------
    ts : tskit.TreeSequence
    sample_sets : list of arrays of sample node ids, optional
        One per deme, in the order of the model's sampled demes (default: all samples as
        one set).
    polarised : bool
        False: the folded (minor-allele) SFS, as :func:`fold` gives it.

    Returns
    -------
    numpy.ma.MaskedArray
        Shape ``prod(n_i + 1)``, the two corners masked (a site monomorphic in the sample
        says nothing of the demography).
    """
    if sample_sets is None:
        sample_sets = [ts.samples()]
    counts = ts.allele_frequency_spectrum(
        sample_sets=[np.asarray(s) for s in sample_sets],
        mode="site",
        polarised=True,
        span_normalise=False,
    )
    out = np.ma.MaskedArray(counts, mask=corners(counts.shape))
    return fold(out) if not polarised else out


def corners(shape: tuple[int, ...]) -> np.ndarray:
    """A boolean mask of the all-ancestral and all-derived entries."""
    mask = np.zeros(shape, dtype=bool)
    mask[(0,) * len(shape)] = True
    mask[tuple(s - 1 for s in shape)] = True
    return mask


def _fold_masks(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(keep, folded-away): an entry x and its complement n - x are summed onto the one
    with fewer derived copies in total (ties: the lexicographically smaller index)."""
    idx = np.indices(shape).reshape(len(shape), -1).T
    comp = np.array(shape) - 1 - idx
    total, ctotal = idx.sum(1), comp.sum(1)
    smaller = (total < ctotal) | (
        (total == ctotal) & np.array([tuple(a) <= tuple(b) for a, b in zip(idx, comp, strict=True)])
    )
    flat_comp = np.ravel_multi_index(comp.T, shape)
    return smaller.reshape(shape), flat_comp.reshape(shape)


def fold(spectrum: Any) -> Any:
    """The folded (minor-allele) SFS: entry x holds x and n - x, the other half is zero
    (masked for a masked array). Works on numpy, masked and JAX arrays (expected
    spectra: differentiable)."""
    shape = tuple(np.shape(spectrum))
    keep, comp = _fold_masks(shape)
    self_comp = comp == np.arange(comp.size).reshape(shape)
    if isinstance(spectrum, np.ma.MaskedArray):
        data = np.ma.filled(spectrum.astype(float), 0.0)
        mask = np.ma.getmaskarray(spectrum)
        folded = np.where(keep, data + np.where(self_comp, 0.0, data.reshape(-1)[comp]), 0.0)
        both = mask & mask.reshape(-1)[comp]
        return np.ma.MaskedArray(folded, mask=~keep | both)
    if isinstance(spectrum, np.ndarray):
        flat = spectrum.reshape(-1)
        return np.where(keep, spectrum + np.where(self_comp, 0, flat[comp]), 0)
    import jax.numpy as jnp

    flat = jnp.reshape(spectrum, -1)
    return jnp.where(keep, spectrum + jnp.where(self_comp, 0.0, flat[comp]), 0.0)


def impossible_entries(expected: Any, observed: Any) -> list[tuple[int, ...]]:
    """The (unmasked) entries observed but expected zero (give -inf); numpy values only."""
    data = np.ma.filled(np.ma.asarray(observed, dtype=float), 0.0)
    mask = np.ma.getmaskarray(np.ma.asarray(observed))
    bad = (np.asarray(expected) == 0) & (data > 0) & ~mask
    return [tuple(int(i) for i in ix) for ix in np.argwhere(bad)]


def _warn_impossible(where: list[tuple[int, ...]]) -> None:
    warnings.warn(
        f"SFS entries {where[:8]}{' ...' if len(where) > 8 else ''} are observed but "
        "expected zero: the log-likelihood is -inf (mask them, e.g. the corners, with a "
        "numpy masked array, or fold both spectra)",
        RuntimeWarning,
        stacklevel=3,
    )


def loglik(expected: Any, observed: Any, kind: str = "multinomial", scale: Any = None) -> Any:
    """The composite log-likelihood of an observed SFS given an expected one.

    Parameters
    ----------
    expected : array
        Expected branch lengths (``Demography.expected_sfs``) or counts, same shape as
        ``observed``; a JAX array to differentiate.
    observed : numpy array or numpy.ma.MaskedArray
        Site counts; masked entries are skipped.
    kind : {"multinomial", "poisson"}
        ``"poisson"``: independent Poisson counts with means ``scale * expected``
        (Poisson random field; ``scale`` = mutation rate per generation times the
        sequence length, for branch lengths in generations). ``"multinomial"``: the
        counts given their total, probabilities ``expected / expected.sum()`` over the
        unmasked entries (the scale profiled out; ``scale`` must be None).

    Returns
    -------
    scalar
        With the constants (log factorials): a true log-likelihood. -inf with a
        ``RuntimeWarning`` naming the entries where an unmasked observed count is
        positive and its expectation zero; NaN for negative or NaN expectations.
    """
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import gammaln

    if kind not in LIKELIHOODS:
        raise ValueError(f"kind={kind!r}; expected one of {LIKELIHOODS}")
    if kind == "multinomial" and scale is not None:
        raise ValueError("kind='multinomial' profiles the scale out: leave scale=None")
    if kind == "poisson" and scale is None:
        raise ValueError("kind='poisson' needs scale= (mutation rate x sequence length)")
    obs = np.ma.asarray(observed, dtype=np.float64)
    if np.shape(expected) != obs.shape:
        raise ValueError(f"expected has shape {np.shape(expected)}, observed {obs.shape}")
    counts = np.ma.filled(obs, 0.0)
    use = ~np.ma.getmaskarray(obs)
    if np.any((counts < 0) | ~np.isfinite(counts)):
        raise ValueError("observed holds negative or non-finite counts")
    expected = jnp.asarray(expected, dtype=jnp.float64)
    if isinstance(expected, jax.core.Tracer):
        jax.debug.callback(_check_later, expected, counts, use)
    else:
        bad = impossible_entries(np.asarray(expected), np.ma.MaskedArray(counts, ~use))
        if bad:
            _warn_impossible(bad)
    e = jnp.where(use, expected, 0.0)
    o = jnp.asarray(np.where(use, counts, 0.0))
    invalid = jnp.any(jnp.where(use, (expected < 0) | jnp.isnan(expected), False))
    if kind == "poisson":
        mean = scale * e
        ll = jnp.sum(_xlogy(o, mean) - mean - gammaln(o + 1.0))
    else:
        total = o.sum()
        ll = gammaln(total + 1.0) + jnp.sum(_xlogy(o, e / e.sum()) - gammaln(o + 1.0))
    return jnp.where(invalid, jnp.nan, ll)


def _xlogy(x: Any, y: Any) -> Any:
    """x log y, 0 where x = 0, with a gradient that is 0 there too (jax's xlogy has a
    NaN gradient at y = 0 even where x = 0, which would poison every entry)."""
    import jax.numpy as jnp

    seen = x > 0
    return jnp.where(seen, x * jnp.log(jnp.where(seen, y, 1.0)), 0.0)


def _check_later(expected: Any, counts: Any, use: Any) -> None:
    bad = impossible_entries(np.asarray(expected), np.ma.MaskedArray(counts, ~np.asarray(use)))
    if bad:
        _warn_impossible(bad)
