"""``ptdcore.reward_moments``: means and cross moments of several rewards at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .graph import Graph
    from .structure import Structure


class RewardMoments:
    """A JAX function ``rm(theta) -> (mean (m,), cross (m, m))``.

    ``mean[j] = E[Y_j]`` and ``cross[i, j] = E[Y_i Y_j]`` for ``Y_j = integral of
    rewards[X_t, j] dt`` (a multivariate phase-type distribution). The engine
    factorises the chain once per theta and serves every column from it. Works under
    ``jax.jit``, ``jax.vmap``, ``jax.grad`` and ``jax.hessian`` (exact first and second
    derivatives; with epochs the second ones come from the reference backend's
    algorithm, up to its 300 states). A theta at
    which a reachable state can never be absorbed gives NaN. With epochs,
    ``rm(theta (E, P), breaks (E - 1,))``; each finite epoch is crossed by the
    uniformisation series on a 2n-state chain, so very stiff finite epochs (rate x
    duration beyond ~4e6) give NaN.
    """

    def __init__(
        self, graph: Graph | Structure, rewards: Any, backend: Any = None, epochs: int = 1
    ) -> None:
        from .jax_model import Model
        from .structure import as_structure

        structure = as_structure(graph)
        if rewards is not None or not structure.reward_matrix:
            structure = structure.with_reward_matrix(rewards)
        if epochs != 1:
            structure = structure.with_epochs(epochs)
        self.epochs = structure.epochs
        self.nr_columns = structure.reward_columns
        m = self.nr_columns
        self._model = Model(structure, nr_moments=m + m * m, backend=backend)
        self._means: Model | None = None
        self.backend = self._model.backend
        self.structure = structure

    @property
    def nr_params(self) -> int:
        """Parameters of one epoch."""
        return self.structure.base_params

    def __call__(self, theta: Any, breaks: Any = None) -> tuple[Any, Any]:
        import jax.numpy as jnp

        m = self.nr_columns
        _, moments = self._model(theta, jnp.zeros(0), breaks)
        return moments[:m], moments[m:].reshape(m, m)

    def mean(self, theta: Any, breaks: Any = None) -> Any:
        """``E[Y_j]`` alone, ``(m,)`` (with epochs ``rm.mean(theta, breaks)``): one
        transposed solve for all columns (per epoch), no cross moments (contract section
        9). Same transforms and exact derivatives as the call; for second derivatives
        (without epochs) the engine still computes the cross moments and returns the means
        (the same numbers, not cheaper)."""
        import jax.numpy as jnp

        from .jax_model import Model

        if self._means is None:
            self._means = Model(
                self.structure, nr_moments=self.nr_columns, backend=self.backend, _derived=True
            )
        return self._means(theta, jnp.zeros(0), breaks)[1]

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by structure (its reward matrix and epochs included) and backend name."""
        from .jax_model import backend_reference

        return (RewardMoments, (self.structure, None, backend_reference(self.backend)))

    def __repr__(self) -> str:
        return (
            f"ptdcore.RewardMoments(nr_states={self.structure.nr_states}, "
            f"columns={self.nr_columns}, backend={self.backend.name!r})"
        )


def reward_moments(
    graph: Graph | Structure, rewards: Any, epochs: int = 1, backend: Any = None
) -> RewardMoments:
    """Means and cross moments of the rewards ``Y_j = integral of rewards[X_t, j] dt``.

    Parameters
    ----------
    graph
        The chain (a :class:`ptdcore.Graph` or its structure; its own reward vector, if
        any, is replaced).
    rewards
        ``(nr_states, m)`` non-negative rewards, zeros allowed: column ``j`` defines
        ``Y_j`` (for the site frequency spectrum, column ``i - 1`` is the branch length
        subtending ``i`` samples, see :func:`ptdcore.coalescent.kingman_sfs`).
    epochs
        ``E > 1``: piecewise-constant parameters, ``rm(theta (E, P), breaks (E - 1,))``
        (contract section 8); gradients in theta and the breaks.
    backend
        Backend name or instance; None selects ``PTDCORE_BACKEND`` or the fastest.

    Returns
    -------
    RewardMoments
        ``rm(theta) -> (mean (m,), cross (m, m))`` with ``cross[i, j] = E[Y_i Y_j]``.
    """
    if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be a whole number >= 1, got {epochs!r}")
    return RewardMoments(graph, rewards, backend=backend, epochs=int(epochs))
