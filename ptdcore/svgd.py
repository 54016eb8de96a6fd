"""``ptdcore.SVGD``: the stateful facade over the functional SVGD core.

Conventions (written down here because the contract leaves them open):

- Positive parameters (the default, ``positive=True``) are fitted as
  ``z = log(theta)``; the target density in ``z`` includes the Jacobian of the
  transform, ``log p(z) = log p(theta | data) + sum(z)``.
- The default prior, used when ``prior=None``, is ``log(theta_j) ~ Normal(0, 10^2)``
  independently (with ``positive=False``: ``theta_j ~ Normal(0, 10^2)``): weak over
  any realistic scale, proper so that the posterior always is.
- ``fit_regularized`` maximises ``log p(theta | data) - regularization *
  sum_k (E[T^k | theta] - mean(data^k))^2`` with no further scaling.
- The default optimizer is RMSprop with decay 0.9 (the adaptive step of Liu &
  Wang's reference implementation) and a cosine-decayed step size, from
  ``learning_rate`` to 1 % of it, so that the particles settle at the end.
  Adam with its default ``b2 = 0.999`` is a poor choice here: it remembers the
  huge gradients of the first steps for ~1000 iterations, so particles that
  started far out stall (moment-regularised posteriors then come out several
  times too wide).
- Particles start at ``z ~ Normal(log(init_scale), 1)``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .graph import Graph
from .structure import Structure

DEFAULT_PRIOR_SD = 10.0


def compute_sample_moments(data: Any, nr_moments: int) -> np.ndarray:
    """``[mean(data), mean(data^2), ..., mean(data^K)]``."""
    x = np.asarray(data, dtype=np.float64).ravel()
    return np.array([np.mean(x**k) for k in range(1, int(nr_moments) + 1)])


def default_log_prior(positive: bool) -> Callable[[Any], Any]:
    """The documented default prior, as a log density on the natural scale."""
    import jax.numpy as jnp

    s = DEFAULT_PRIOR_SD

    def log_prior(theta: Any) -> Any:
        if positive:
            log_t = jnp.log(theta)
            return jnp.sum(-0.5 * (log_t / s) ** 2 - log_t)
        return jnp.sum(-0.5 * (theta / s) ** 2)

    return log_prior


class SVGD:
    """Stein variational gradient descent for ptdcore models.

    Parameters
    ----------
    model
        A :class:`ptdcore.Graph`, a ptdcore model (``ptdcore.model(...)``), or any
        JAX function ``f(theta, times)`` returning the pmf, or ``(pmf, moments)``.
    observed_data
        Observed values of ``T``; the log-likelihood is the sum of log pmf/pdf at them.
    theta_dim
        Length of theta (checked against the model when it knows it).
    n_particles, n_iterations, learning_rate, seed
        Run size, the optimizer's initial step size and the PRNG seed.
    prior
        ``log_prior(theta) -> scalar`` on the natural scale, or None (see module doc).
    backend
        Backend for a Graph or ptdcore model (name or instance).
    optimizer
        Any optax ``GradientTransformation``; replaces the default RMSprop.
    positive
        Fit ``log(theta)`` (parameters are positive). False fits theta directly.
    init_scale
        Particles start around ``theta = init_scale`` (log-normal spread 1).
    progress
        Show a progress bar; None shows one when stderr is a terminal.
    """

    def __init__(
        self,
        model: Any,
        observed_data: Any,
        theta_dim: int | None = None,
        n_particles: int = 100,
        n_iterations: int = 1000,
        learning_rate: float = 0.05,
        seed: int = 42,
        prior: Callable[[Any], Any] | None = None,
        backend: Any = None,
        *,
        optimizer: Any = None,
        positive: bool = True,
        init_scale: float = 1.0,
        progress: bool | None = None,
    ) -> None:
        import jax

        jax.config.update("jax_enable_x64", True)
        self._source = model
        self.backend = backend
        self.data = np.asarray(observed_data, dtype=np.float64).ravel()
        if self.data.size == 0:
            raise ValueError("observed_data is empty")
        self.theta_dim = self._resolve_theta_dim(model, theta_dim)
        if n_particles < 2:
            raise ValueError(f"n_particles must be >= 2, got {n_particles}")
        if n_iterations < 1:
            raise ValueError(f"n_iterations must be >= 1, got {n_iterations}")
        self.n_particles = int(n_particles)
        self.n_iterations = int(n_iterations)
        self.learning_rate = float(learning_rate)
        self.seed = int(seed)
        self.positive = bool(positive)
        self.prior = prior if prior is not None else default_log_prior(self.positive)
        self.optimizer = optimizer
        self.init_scale = float(init_scale)
        self.progress = progress
        self.result: dict[str, Any] | None = None

    # -- model plumbing --------------------------------------------------------------------
    @staticmethod
    def _resolve_theta_dim(model: Any, theta_dim: int | None) -> int:
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

    def _model_fn(self, nr_moments: int) -> tuple[Callable[..., Any], bool]:
        """(f(theta, times), returns_moments) for a run needing ``nr_moments`` moments."""
        from .jax_model import Model

        src = self._source
        if isinstance(src, Graph | Structure):
            return Model(src, nr_moments=nr_moments, backend=self.backend), True
        if isinstance(src, Model):
            requested = getattr(self.backend, "name", self.backend)
            if (requested is not None and requested != src.backend.name) or (
                nr_moments > src.nr_moments
            ):
                backend = self.backend if self.backend is not None else src.backend
                return Model(
                    src.structure, nr_moments=max(nr_moments, src.nr_moments), backend=backend
                ), True
            return src, True
        if self.backend is not None:
            raise ValueError(
                "backend= applies to a Graph or a ptdcore model, not to a plain function"
            )
        return src, self._returns_moments(src)

    def _returns_moments(self, fn: Callable[..., Any]) -> bool:
        """The seed's model type detection: a pair (pmf, moments) or the pmf alone."""
        import jax
        import jax.numpy as jnp

        out = jax.eval_shape(fn, jnp.ones(self.theta_dim), jnp.asarray(self.data[:1]))
        return isinstance(out, tuple | list) and len(out) == 2

    def _log_density(self, nr_moments: int, regularization: float) -> Callable[[Any], Any]:
        import jax.numpy as jnp

        fn, has_moments = self._model_fn(nr_moments)
        if nr_moments > 0 and not has_moments:
            raise ValueError(
                "fit_regularized needs a model that returns (pmf, moments); this model "
                "returns the pmf only"
            )
        data = jnp.asarray(self.data)
        target = jnp.asarray(compute_sample_moments(self.data, nr_moments))
        prior, positive = self.prior, self.positive

        def log_density(z: Any) -> Any:
            theta = jnp.exp(z) if positive else z
            out = fn(theta, data)
            pmf = out[0] if has_moments else out
            value = jnp.sum(jnp.log(pmf)) + prior(theta)
            if positive:
                value = value + jnp.sum(z)
            if nr_moments > 0:
                value = value - regularization * jnp.sum((out[1][:nr_moments] - target) ** 2)
            return value

        return log_density

    # -- running ---------------------------------------------------------------------------
    def _optimizer(self) -> Any:
        import optax

        if self.optimizer is not None:
            return self.optimizer
        schedule = optax.cosine_decay_schedule(self.learning_rate, self.n_iterations, alpha=0.01)
        return optax.rmsprop(schedule, decay=0.9)

    def _initial_particles(self) -> Any:
        import jax
        import jax.numpy as jnp

        key = jax.random.PRNGKey(self.seed)
        noise = jax.random.normal(key, (self.n_particles, self.theta_dim), dtype=jnp.float64)
        center = math.log(self.init_scale) if self.positive else self.init_scale
        return _shard(center + noise)

    def _run(self, nr_moments: int, regularization: float) -> SVGD:
        import jax

        from . import svgd_core

        log_density = self._log_density(nr_moments, regularization)
        optimizer = self._optimizer()
        step = svgd_core.build_step(log_density, optimizer)
        state = svgd_core.init(self._initial_particles(), optimizer)
        chunk = max(1, math.ceil(self.n_iterations / 50))
        runners: dict[int, Any] = {}
        history = [np.asarray(state.particles)]
        infos = []
        bar = _progress_bar(self.n_iterations, self.progress)
        done = 0
        while done < self.n_iterations:
            length = min(chunk, self.n_iterations - done)
            if length not in runners:
                runners[length] = jax.jit(lambda s, n=length: svgd_core.run(step, s, n))
            state, info = runners[length](state)
            infos.append(jax.tree_util.tree_map(np.asarray, info))
            history.append(np.asarray(state.particles))
            done += length
            if bar is not None:
                bar.update(length)
        if bar is not None:
            bar.close()
        self.result = _summarise(self, np.stack(history), infos, nr_moments, regularization)
        return self

    def fit(self) -> SVGD:
        """Sample ``p(theta | data)``; returns self."""
        return self._run(0, 0.0)

    def fit_regularized(self, nr_moments: int = 2, regularization: float = 1.0) -> SVGD:
        """Sample with the moment-matching penalty (see the module doc); returns self."""
        if nr_moments < 1:
            raise ValueError(f"nr_moments must be >= 1, got {nr_moments}")
        return self._run(int(nr_moments), float(regularization))

    compute_sample_moments = staticmethod(compute_sample_moments)

    # -- results ---------------------------------------------------------------------------
    def _need(self) -> dict[str, Any]:
        if self.result is None:
            raise RuntimeError("call fit() or fit_regularized() first")
        return self.result

    @property
    def particles(self) -> np.ndarray:
        """Final particles on the natural scale, (n_particles, theta_dim)."""
        return self._need()["particles"]

    @property
    def theta_mean(self) -> np.ndarray:
        return self.particles.mean(axis=0)

    @property
    def theta_std(self) -> np.ndarray:
        return self.particles.std(axis=0, ddof=1)

    @property
    def history(self) -> np.ndarray:
        """Particles (natural scale) at the start and after every chunk, thinned."""
        return self._need()["history"]

    @property
    def diagnostics(self) -> dict[str, Any]:
        """Traces (bandwidth, phi_norm, log_density_mean) and the ``converged`` flag."""
        return self._need()["diagnostics"]

    def quantiles(self, q: Any = (0.025, 0.5, 0.975)) -> np.ndarray:
        """Posterior quantiles per parameter, shape (len(q), theta_dim)."""
        return np.quantile(self.particles, np.asarray(q), axis=0)

    def hpd_interval(self, mass: float = 0.95) -> np.ndarray:
        """Shortest interval holding ``mass`` of the particles, per parameter: (theta_dim, 2)."""
        out = []
        for column in self.particles.T:
            x = np.sort(column)
            k = max(1, int(math.ceil(mass * len(x))))
            widths = x[k - 1 :] - x[: len(x) - k + 1]
            i = int(np.argmin(widths))
            out.append((x[i], x[i + k - 1]))
        return np.array(out)

    def summary(self) -> str:
        """A short text summary of the fit."""
        lo_hi = self.hpd_interval()
        lines = [f"{'param':>6} {'mean':>12} {'sd':>12} {'95% HPD':>27}"]
        for j in range(self.theta_dim):
            lines.append(
                f"{j:>6} {self.theta_mean[j]:>12.5g} {self.theta_std[j]:>12.5g} "
                f"[{lo_hi[j, 0]:>11.5g}, {lo_hi[j, 1]:>11.5g}]"
            )
        lines.append(f"converged: {self.diagnostics['converged']}")
        return "\n".join(lines)

    def plot(self, out_dir: str = ".", prefix: str = "svgd", true_theta: Any = None) -> list[str]:
        """Write the posterior density and particle-trace plots; returns the file paths."""
        from .plots import plot_svgd

        return plot_svgd(self, out_dir, prefix, true_theta)


def _shard(particles: Any) -> Any:
    """Spread particles over the devices when there are several (and they divide evenly)."""
    import jax

    devices = jax.devices()
    if len(devices) < 2 or particles.shape[0] % len(devices):
        return particles
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(devices), ("particles",))
    return jax.device_put(particles, NamedSharding(mesh, PartitionSpec("particles", None)))


def _progress_bar(total: int, progress: bool | None) -> Any:
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="SVGD", unit="it")


def _summarise(
    svgd: SVGD, history: np.ndarray, infos: list[Any], nr_moments: int, regularization: float
) -> dict[str, Any]:
    to_natural = np.exp if svgd.positive else (lambda x: x)
    traces = {name: np.concatenate([getattr(i, name) for i in infos]) for name in infos[0]._fields}
    last, before = history[-1], history[-2]
    sd = np.maximum(last.std(axis=0), 1e-12)
    converged = bool(
        np.all(np.abs(last.mean(axis=0) - before.mean(axis=0)) < 0.02 * sd)
        and np.all(np.abs(last.std(axis=0) - before.std(axis=0)) < 0.02 * sd)
        and np.all(np.isfinite(last))
    )
    return {
        "particles": to_natural(history[-1]),
        "history": to_natural(history),
        "diagnostics": {**traces, "converged": converged},
        "nr_moments": nr_moments,
        "regularization": regularization,
    }
