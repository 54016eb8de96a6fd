"""The likelihood layer that SVGD, maximum likelihood and the NumPyro route share.

A model given as a :class:`ptdcore.Graph`, a :class:`ptdcore.Structure`, a ptdcore
model or a plain JAX function ``f(theta, times)`` becomes one evaluating function
(:func:`resolve_model`); observations of ``T`` become the i.i.d. log-likelihood
``sum log pmf(data | theta)`` (:func:`iid_loglik`); a log-likelihood on the natural scale
becomes a function of the fitted coordinates ``z`` (``theta = exp(z)`` for positive
parameters, :func:`on_fitted_scale`). Any scalar JAX function of theta is a
log-likelihood here, so the same function serves ``fit_mle``, ``SVGD`` and NumPyro
(``numpyro.factor("loglik", loglik(theta))``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..graph import Graph
from ..structure import Structure

LogLik = Callable[[Any], Any]
"""A scalar JAX function of theta (natural scale)."""


def model_theta_dim(model: Any, theta_dim: int | None = None) -> int:
    """Length of theta: from the model when it knows it (checked against ``theta_dim``),
    else ``theta_dim``, which a plain function needs."""
    known = None
    if isinstance(model, Graph | Structure):
        known = model.nr_params
    elif hasattr(model, "structure") and isinstance(model.structure, Structure):
        known = model.structure.nr_params
    if known is not None and theta_dim is not None and known != theta_dim:
        raise ValueError(f"theta_dim={theta_dim} but the model has {known} parameters")
    dim = known if known is not None else theta_dim
    if dim is None:
        raise ValueError("theta_dim is required when the model is a plain function")
    return int(dim)


def resolve_model(
    model: Any, nr_moments: int = 0, backend: Any = None, theta_dim: int | None = None
) -> tuple[Callable[..., Any], bool]:
    """``(f(theta, times), returns_moments)`` for ``model``.

    A Graph or Structure becomes a ptdcore model with ``nr_moments`` moments on
    ``backend``; a ptdcore model is used as it is unless it lacks moments or another
    backend is asked for; a plain function is used as it is (``backend`` must be None),
    and whether it returns ``(pmf, moments)`` or the pmf alone is read from its output
    shapes at ``theta_dim`` parameters.
    """
    from ..jax_model import Model

    if isinstance(model, Graph | Structure):
        return Model(model, nr_moments=nr_moments, backend=backend), True
    if isinstance(model, Model) and model.epochs > 1:
        raise ValueError(
            "this fits theta of a model without epochs; for a model with epochs, pass a "
            "function of (theta, times) that fixes the breaks, e.g. "
            "lambda th, t: m(th.reshape(E, P), t, breaks), with theta_dim=E * P"
        )
    if isinstance(model, Model):
        requested = getattr(backend, "name", backend)
        if (requested is not None and requested != model.backend.name) or (
            nr_moments > model.nr_moments
        ):
            chosen = backend if backend is not None else model.backend
            moments = max(nr_moments, model.nr_moments)
            return Model(model.structure, nr_moments=moments, backend=chosen), True
        return model, True
    if backend is not None:
        raise ValueError("backend= applies to a Graph or a ptdcore model, not to a plain function")
    if not callable(model):
        raise TypeError(
            f"a model must be a ptdcore Graph, Structure or model, or a JAX function "
            f"f(theta, times); got {type(model).__name__}"
        )
    return model, _returns_moments(model, model_theta_dim(model, theta_dim))


def _returns_moments(fn: Callable[..., Any], theta_dim: int) -> bool:
    """The seed's model type detection: a pair (pmf, moments) or the pmf alone."""
    import jax
    import jax.numpy as jnp

    out = jax.eval_shape(fn, jnp.ones(theta_dim), jnp.ones(1))
    return isinstance(out, tuple | list) and len(out) == 2


def observations(data: Any, name: str = "data") -> np.ndarray:
    """Observed values of T as a flat float64 array; ValueError when there are none."""
    x = np.asarray(data, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    return x


def iid_loglik(fn: Callable[..., Any], returns_moments: bool, data: Any) -> LogLik:
    """``theta -> sum log pmf(data | theta)``: the log-likelihood of i.i.d. observations."""
    terms = iid_loglik_and_moments(fn, returns_moments, data)
    return lambda theta: terms(theta)[0]


def iid_loglik_and_moments(
    fn: Callable[..., Any], returns_moments: bool, data: Any
) -> Callable[[Any], tuple[Any, Any]]:
    """``theta -> (sum log pmf(data | theta), moments)`` from one model call (``moments``
    None when the model returns the pmf alone)."""
    import jax.numpy as jnp

    times = jnp.asarray(data)

    def terms(theta: Any) -> tuple[Any, Any]:
        out = fn(theta, times)
        pmf, moments = (out[0], out[1]) if returns_moments else (out, None)
        return jnp.sum(jnp.log(pmf)), moments

    return terms


def zero_density_observations(
    fn: Callable[..., Any], returns_moments: bool, thetas: Any, data: np.ndarray
) -> np.ndarray:
    """Indices of the observations whose density is zero (or not finite) at every theta
    of ``thetas`` (rows): their log-likelihood is -inf whatever a fit does."""
    import jax.numpy as jnp

    times = jnp.asarray(data)
    ok = np.zeros(data.size, dtype=bool)
    for theta in np.atleast_2d(np.asarray(thetas, dtype=np.float64)):
        out = fn(jnp.asarray(theta), times)
        pmf = np.asarray(out[0] if returns_moments else out)
        ok |= np.isfinite(pmf) & (pmf > 0)
    return np.flatnonzero(~ok)


def on_fitted_scale(loglik: LogLik, positive: bool, jacobian: bool = False) -> LogLik:
    """``z -> loglik(theta(z))`` with ``theta = exp(z)`` for positive parameters (else
    ``theta = z``); ``jacobian`` adds ``sum(z)``, the log-Jacobian of the transform, which
    a density in ``z`` (SVGD, NUTS) needs and a maximisation does not."""
    import jax.numpy as jnp

    if not positive:
        return loglik

    def in_z(z: Any) -> Any:
        value = loglik(jnp.exp(z))
        return value + jnp.sum(z) if jacobian else value

    return in_z
