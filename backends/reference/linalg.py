"""The reference backend's dense linear algebra in pure JAX: matrix exponentials, matrix
powers, Stirling numbers and the chunked map over times (used by :mod:`.dense` and
:mod:`.epochs`)."""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_SQUARINGS = 40
"""expm squarings: norms up to 2^39 (a larger ``|S t|`` gives NaN)."""
TAYLOR_DEGREE = 18
"""With the scaled norm <= 1/2 the truncated terms are below 0.5^19 / 19! ~ 2e-23."""
TIME_CHUNK_ELEMENTS = 2**12
"""Times are evaluated in chunks of at most this many matrix entries (chunk x (n + 1)^2),
each chunk rematerialised under reverse-mode AD, so that memory does not grow with the
number of times: per theta, one chunk's exponentials and their squarings are live at once
(about ``(TAYLOR_DEGREE + MAX_SQUARINGS) * TIME_CHUNK_ELEMENTS * 8`` bytes, 2 MB; small
chunks were also the fastest measured)."""


def time_chunk(n: int) -> int:
    """How many times one chunk of :func:`map_over_times` holds for ``n`` x ``n`` matrices."""
    return max(1, TIME_CHUNK_ELEMENTS // (n * n))


def map_over_times(one: Any, times: Any, n: int) -> Any:
    """``one`` applied to every time, in chunks of :func:`time_chunk` times.

    Within a chunk the times are vectorised; chunks run one after the other
    (``lax.map``) and are recomputed in the backward pass (``jax.checkpoint``), so the
    memory of values and gradients is bounded by one chunk per theta, not by the number
    of times (issue: a vmapped gradient over 100 thetas x 200 times held 19 GB).
    """
    import jax
    import jax.numpy as jnp

    T = times.shape[0]
    if T == 0:
        return jnp.zeros(0)
    chunk = time_chunk(n)
    body = jax.checkpoint(jax.vmap(one))
    if T <= chunk:
        return body(times)
    padded = jnp.concatenate([times, jnp.zeros((-T) % chunk, times.dtype)])  # 0 is valid
    return jax.lax.map(body, padded.reshape(-1, chunk)).reshape(-1)[:T]


def expm(A: Any) -> Any:
    """exp(A) by scaling (to infinity norm <= 1/2), a Taylor polynomial and squaring."""
    import jax
    import jax.numpy as jnp

    n = A.shape[0]
    norm = jax.lax.stop_gradient(jnp.max(jnp.sum(jnp.abs(A), axis=1)))
    squarings = jnp.where(norm > 0.5, jnp.ceil(jnp.log2(jnp.maximum(norm, 0.5) / 0.5)), 0.0)
    X = A / jnp.exp2(squarings)
    eye = jnp.eye(n)

    def horner(i: Any, E: Any) -> Any:  # I + X (I + X/2 (I + X/3 ...)), innermost first
        return eye + (X @ E) / (TAYLOR_DEGREE - i)

    E = jax.lax.fori_loop(0, TAYLOR_DEGREE, horner, eye)

    def square(E: Any, i: Any) -> tuple[Any, None]:
        return jnp.where(i < squarings, E @ E, E), None

    E, _ = jax.lax.scan(square, E, jnp.arange(MAX_SQUARINGS, dtype=jnp.float64))
    return jnp.where(squarings <= MAX_SQUARINGS, E, jnp.nan)


def matrix_power(A: Any, steps: Any) -> Any:
    """A^steps for a whole number of steps (traced), by binary powers."""
    import jax
    import jax.numpy as jnp

    def body(i: Any, carry: Any) -> Any:
        result, base = carry
        result = jnp.where((steps >> i) & 1 == 1, result @ base, result)
        return result, base @ base

    return jax.lax.fori_loop(0, 63, body, (jnp.eye(A.shape[0]), A))[0]


def stirling2(K: int) -> np.ndarray:
    """S2[k, j], Stirling numbers of the second kind, 0 <= j <= k <= K."""
    s2 = np.zeros((K + 1, K + 1))
    s2[0, 0] = 1.0
    for k in range(1, K + 1):
        for j in range(1, k + 1):
            s2[k, j] = j * s2[k - 1, j] + s2[k - 1, j - 1]
    return s2
