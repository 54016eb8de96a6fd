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
- Particles start from the Laplace approximation at the posterior mode on the fitted
  scale (``init="laplace"``, exact Hessian), and the steps are taken in coordinates
  whitened by its covariance (``precondition="auto"``, the default; ``"full"`` always,
  ``"diagonal"`` scales by its standard deviations only): SVGD with a constant
  matrix-valued kernel (Wang, Tang, Bajaj & Liu 2019) whose metric comes from the
  inverse Hessian at the mode, so that parameters
  on very different scales move together; on that metric the bandwidth is 8 d (the
  median heuristic's collapses 20 particles to 0.8 of the posterior's sd in 3
  dimensions). Where the log density at the Laplace particles is far from the
  Gaussian's (a weakly identified parameter), they are drawn by importance sampling
  instead and its standard deviations set the metric (``"auto"``: diagonal there, the
  better of the two on such curved posteriors). ``init="spread"`` (particles at
  ``z ~ Normal(log(init_scale), 1)``, plain steps) is the old behaviour; see
  :mod:`ptdcore.inference.start` and docs/svgd.md.
- ``SVGD(loglik=f, theta_dim=P)`` samples ``p(theta) prop. to exp(f(theta)) prior(theta)``
  for any scalar JAX log-likelihood ``f`` (an SFS likelihood, a sum over loci, ...).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .likelihood import (
    iid_loglik_and_moments,
    model_theta_dim,
    observations,
    on_fitted_scale,
    resolve_model,
    zero_density_observations,
)
from .sharding import particle_mesh, shard, to_host
from .start import Start, check_strategy, choose_start, spread_points

DEFAULT_PRIOR_SD = 3.0
"""The default prior: log(theta_j) ~ Normal(0, 3^2) independently (positive parameters),
weakly informative for rates: 95 % of its mass on [0.0028, 360]."""
CONVERGENCE_WINDOW = 0.1
"""The convergence criterion looks at the last 10% of the steps (at least one chunk)."""
CONVERGENCE_IMBALANCE = 0.05
"""... and asks the Stein imbalance ||phi|| / (||drive|| + ||repulsion||), averaged over
the particles, to stay below this there (the two halves of the update cancel) when the
optimizer is the user's own ..."""
CONVERGENCE_IMBALANCE_WITH_DRIFT = 0.2
"""... and below this looser bound with the default optimizer, whose drift test below is
the sharper one (at the fixed point RMSprop's jitter leaves an imbalance near 0.05 on
some models)."""
CONVERGENCE_DRIFT = 0.01
"""With the default optimizer, the particles' mean and spread (unconstrained scale) must
also move less than this per unit of cumulative learning rate over that window: RMSprop
moves every particle about one learning rate per step, so coherent drift of the whole
cloud (a fit still under way) shows up as a drift near 1 whatever the step size, and
jitter at the fixed point as a drift near 0."""


METRIC_RMSPROP_EPS = 1e-2
"""RMSprop's ``eps`` when the steps are taken on the Laplace metric (posterior sd about 1
there): a Stein update below 1 % of the posterior's scale is no longer blown up to a whole
learning rate, so that at the fixed point the cloud settles instead of wandering (with
the default 1e-8 its mean wandered by ~0.005 sd per unit step on a 3-parameter SFS
posterior, which the drift test rightly counts as motion). Plain steps keep 1e-8 (their
scale is unknown)."""


def compute_sample_moments(data: Any, nr_moments: int) -> np.ndarray:
    """``[mean(data), mean(data^2), ..., mean(data^K)]``."""
    x = np.asarray(data, dtype=np.float64).ravel()
    return np.array([np.mean(x**k) for k in range(1, int(nr_moments) + 1)])


class DefaultLogPrior:
    """The documented default prior as a log density on the natural scale: independent
    LogNormal(0, sd) for positive parameters, Normal(0, sd) otherwise. A class, not a
    closure, so that SVGD objects pickle."""

    def __init__(self, positive: bool, sd: float = DEFAULT_PRIOR_SD) -> None:
        self.positive = bool(positive)
        self.sd = float(sd)

    def __call__(self, theta: Any) -> Any:
        import jax.numpy as jnp

        if self.positive:
            log_t = jnp.log(theta)
            return jnp.sum(-0.5 * (log_t / self.sd) ** 2 - log_t)
        return jnp.sum(-0.5 * (theta / self.sd) ** 2)

    def __repr__(self) -> str:
        kind = "LogNormal" if self.positive else "Normal"
        return f"DefaultLogPrior({kind}(0, {self.sd:g}) per parameter)"


def default_log_prior(positive: bool) -> Callable[[Any], Any]:
    """The documented default prior, as a log density on the natural scale."""
    return DefaultLogPrior(positive)


def warn_if_density_like(data: np.ndarray) -> None:
    """Warn when observed data look like density values along a grid, not draws of T.

    Independent draws turn (a local maximum or minimum) at about 2 (n - 2) / 3 of the
    inner points; the values of a density along a grid form a smooth curve that turns
    once or twice. Sorted observations (no turning point either) are monotone
    non-decreasing and are not warned about.
    """
    import warnings

    x = np.asarray(data, dtype=np.float64)
    if x.size < 10 or not np.all(np.isfinite(x)) or np.all(np.diff(x) >= 0):
        return
    steps = np.sign(np.diff(x))
    steps = steps[steps != 0]
    turns = int(np.sum(steps[1:] != steps[:-1]))
    if turns <= max(2, x.size // 20) and np.all(x >= 0):
        warnings.warn(
            f"observed_data look like a smooth curve ({turns} turning points in {x.size} "
            f"values; independent draws have about {2 * (x.size - 2) // 3}) rather than "
            "independent draws: SVGD expects observed values of T (for example waiting "
            "times), not density values such as the old observed_pmf",
            UserWarning,
            stacklevel=3,
        )


class SVGD:
    """Stein variational gradient descent for ptdcore models.

    Parameters
    ----------
    model
        A :class:`ptdcore.Graph`, a ptdcore model (``ptdcore.model(...)``), or any
        JAX function ``f(theta, times)`` returning the pmf, or ``(pmf, moments)``.
        None with ``loglik``.
    observed_data
        Observed values of ``T``; the log-likelihood is the sum of log pmf/pdf at them.
        None with ``loglik``.
    theta_dim
        Length of theta (checked against the model when it knows it; required with
        ``loglik``).
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
        Where the mode search starts (and, with ``init="spread"``, the centre of the
        particles, log-normal spread 1).
    loglik
        Any scalar JAX function of theta (natural scale), instead of ``model`` and
        ``observed_data``: the log-likelihood of whatever the data are.
    init
        ``"laplace"`` (default), ``"spread"`` (the old start) or a callable
        ``init(n_particles, theta_dim, seed) -> z`` on the fitted scale; see
        :mod:`ptdcore.inference.start`.
    precondition
        With ``init="laplace"``: take the steps in coordinates whitened by the start's
        covariance (``"full"``), scaled by its standard deviations (``"diagonal"``), or
        plain steps in ``z`` (None). ``"auto"`` (the default): ``"full"`` where the
        Laplace approximation stands, ``"diagonal"`` where the importance start replaced
        it.
    progress
        Show a progress bar; None shows one when stderr is a terminal.
    param_names
        Names of the parameters, used in summaries (default ``theta[0]``, ...).

    A fitted SVGD object pickles (the model is kept as its structure, the default prior
    is a class), so results can be saved and reloaded.
    """

    def __init__(
        self,
        model: Any = None,
        observed_data: Any = None,
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
        param_names: Any = None,
        loglik: Callable[[Any], Any] | None = None,
        init: Any = "laplace",
        precondition: str | None = "auto",
    ) -> None:
        from ..float64 import require_float64

        require_float64("ptdcore.SVGD")
        check_strategy(init, precondition)
        self._source = model
        self.backend = backend
        self.loglik = loglik
        if loglik is not None:
            if model is not None or observed_data is not None:
                raise ValueError(
                    "pass either loglik= or a model and observed_data, not both: loglik is "
                    "the whole log-likelihood"
                )
            if not callable(loglik):
                raise TypeError(f"loglik must be a JAX function of theta, got {loglik!r}")
            if theta_dim is None:
                raise ValueError("theta_dim is required with loglik=")
            self.data = None
            self.theta_dim = int(theta_dim)
        else:
            if model is None or observed_data is None:
                raise ValueError(
                    "SVGD needs a model and observed_data, or loglik= and theta_dim= for any "
                    "log-likelihood"
                )
            self.data = observations(observed_data, "observed_data")
            warn_if_density_like(self.data)
            self.theta_dim = self._resolve_theta_dim(model, theta_dim)
        names = (
            [f"theta[{j}]" for j in range(self.theta_dim)]
            if param_names is None
            else [str(n) for n in param_names]
        )
        if len(names) != self.theta_dim:
            raise ValueError(
                f"param_names has {len(names)} names for {self.theta_dim} parameters: {names}"
            )
        self.param_names = names
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
        self.init = init
        self.precondition = precondition
        self.progress = progress
        self.result: dict[str, Any] | None = None

    # -- model plumbing (the shared likelihood layer) -----------------------------------
    @staticmethod
    def _resolve_theta_dim(model: Any, theta_dim: int | None) -> int:
        return model_theta_dim(model, theta_dim)

    def _model_fn(self, nr_moments: int) -> tuple[Callable[..., Any], bool]:
        """(f(theta, times), returns_moments) for a run needing ``nr_moments`` moments."""
        return resolve_model(self._source, nr_moments, self.backend, self.theta_dim)

    def _log_density(
        self, nr_moments: int, regularization: float, model: Any = None
    ) -> Callable[[Any], Any]:
        """The target density on the fitted scale; ``model`` is ``_model_fn(nr_moments)``
        when the caller has it already."""
        import jax.numpy as jnp

        if self.loglik is not None:
            loglik, prior = self.loglik, self.prior
            return on_fitted_scale(
                lambda theta: loglik(theta) + prior(theta), self.positive, jacobian=True
            )

        fn, has_moments = model if model is not None else self._model_fn(nr_moments)
        if nr_moments > 0 and not has_moments:
            raise ValueError(
                "fit_regularized needs a model that returns (pmf, moments); this model "
                "returns the pmf only"
            )
        terms = iid_loglik_and_moments(fn, has_moments, self.data)
        target = jnp.asarray(compute_sample_moments(self.data, nr_moments))
        prior = self.prior

        def log_posterior(theta: Any) -> Any:
            loglik, moments = terms(theta)
            value = loglik + prior(theta)
            if nr_moments > 0:
                value = value - regularization * jnp.sum((moments[:nr_moments] - target) ** 2)
            return value

        return on_fitted_scale(log_posterior, self.positive, jacobian=True)

    # -- running ---------------------------------------------------------------------------
    def _schedule(self) -> Any:
        import optax

        return optax.cosine_decay_schedule(self.learning_rate, self.n_iterations, alpha=0.01)

    def _optimizer(self, preconditioned: bool = False) -> Any:
        import optax

        if self.optimizer is not None:
            return self.optimizer
        eps = METRIC_RMSPROP_EPS if preconditioned else 1e-8
        return optax.rmsprop(self._schedule(), decay=0.9, eps=eps)

    def _center(self) -> float:
        """The old start's centre on the fitted scale (where the mode search starts)."""
        return math.log(self.init_scale) if self.positive else self.init_scale

    def _start(self, log_density: Callable[[Any], Any], nr_moments: int) -> Start:
        moments = None
        if self.loglik is None:

            def moments() -> tuple[Callable[[Any], Any], np.ndarray] | None:
                fn, has_moments = self._model_fn(max(nr_moments, self.theta_dim))
                if not has_moments:
                    return None
                no_times = np.zeros(0)
                targets = compute_sample_moments(self.data, self.theta_dim)
                return (lambda theta: fn(theta, no_times)[1], targets)

        return choose_start(
            self.init, log_density, self.n_particles, self.theta_dim, self.seed,
            self._center(), self.precondition, moments, self.positive,
        )  # fmt: skip

    def _check_observations(self, fn: Callable[..., Any], has_moments: bool) -> None:
        """Raise for an observation whose density is zero (or not finite) at every one of
        the first initial particles: its log-likelihood is -inf whatever the fit does."""
        z = spread_points(8, self.theta_dim, self.seed, self._center())
        thetas = np.exp(z) if self.positive else z
        bad = zero_density_observations(fn, has_moments, thetas, self.data)
        if bad.size:
            shown = ", ".join(f"observed_data[{i}] = {float(self.data[i])!r}" for i in bad[:5])
            more = f" and {bad.size - 5} more" if bad.size > 5 else ""
            raise ValueError(
                f"{shown}{more}: zero (or non-finite) density under the model at every "
                "initial particle, so the log-likelihood is -inf; check the data (observed "
                "values of T, not densities) and the model"
            )

    def _run(self, nr_moments: int, regularization: float) -> SVGD:
        import jax
        import jax.numpy as jnp

        from . import svgd_core

        model = None
        if self.loglik is None:
            model = self._model_fn(nr_moments)  # (resolved once for the check and the run)
            self._check_observations(*model)
        elif nr_moments:
            raise ValueError(
                "fit_regularized matches the model's moments to the data's: it needs a model "
                "and observed_data, not loglik="
            )
        log_density = self._log_density(nr_moments, regularization, model)
        start = self._start(log_density, nr_moments)
        center, factor = jnp.asarray(start.center), jnp.asarray(start.factor)

        def log_density_u(u: Any) -> Any:  # the coordinates the steps are taken in
            return log_density(center + factor @ u)

        optimizer = self._optimizer(start.preconditioned)
        mesh = particle_mesh(self.n_particles)
        bandwidth = (
            svgd_core.metric_bandwidth if start.preconditioned else svgd_core.median_heuristic
        )
        step = svgd_core.build_step(log_density_u, optimizer, bandwidth_fn=bandwidth, mesh=mesh)
        state = svgd_core.init(shard(jnp.asarray(start.u), mesh), optimizer)
        chunk = max(1, math.ceil(self.n_iterations / 50))
        runners: dict[int, Any] = {}
        history = [to_host(state.particles)]
        infos = []
        bar = _progress_bar(self.n_iterations, self.progress)
        done = 0
        while done < self.n_iterations:
            length = min(chunk, self.n_iterations - done)
            if length not in runners:
                runners[length] = jax.jit(lambda s, n=length: svgd_core.run(step, s, n))
            state, info = runners[length](state)
            infos.append(to_host(info))
            history.append(to_host(state.particles))
            done += length
            if bar is not None:
                bar.update(length)
        if bar is not None:
            bar.close()
        rates = None
        if self.optimizer is None:  # the step sizes taken, for the drift criterion
            rates = np.asarray(jax.vmap(self._schedule())(jnp.arange(self.n_iterations)))
        self.result = _summarise(
            self, start, np.stack(history), infos, nr_moments, regularization, chunk, rates
        )
        return self

    def fit(self) -> SVGD:
        """Sample ``p(theta | data)``; returns self."""
        return self._run(0, 0.0)

    def fit_regularized(
        self, nr_moments: int = 2, regularization: float = 1.0, **old_keywords: Any
    ) -> SVGD:
        """Sample with the moment-matching penalty (see the module doc); returns self."""
        if old_keywords:
            names = ", ".join(sorted(old_keywords))
            raise TypeError(
                f"fit_regularized() got {names}: the data now go to the constructor, "
                "SVGD(model, observed_data, ...), and fit_regularized takes only nr_moments "
                "and regularization (see docs/migration.md)"
            )
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
        """Per-step traces (``bandwidth``, ``phi_norm``, ``log_density_mean``, ``nonfinite``
        particles, Stein ``imbalance``), ``nonfinite_particle_steps``, ``final_imbalance``,
        ``final_drift`` and ``converged``: True only when, over the last 10% of the steps,
        the particles' mean and spread drift by less than 0.01 per unit of cumulative
        learning rate (default optimizer; the step-size-free sign that the cloud has
        stopped moving) with a Stein imbalance below 0.2, or, with a custom optimizer, the
        Stein imbalance averages below 0.05 (the update's kernel-smoothed gradient and
        repulsion cancel); and nothing there was non-finite."""
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
        width = max(6, *(len(n) for n in self.param_names))
        lines = [f"{'param':>{width}} {'mean':>12} {'sd':>12} {'95% HPD':>27}"]
        for j, name in enumerate(self.param_names):
            lines.append(
                f"{name:>{width}} {self.theta_mean[j]:>12.5g} {self.theta_std[j]:>12.5g} "
                f"[{lo_hi[j, 0]:>11.5g}, {lo_hi[j, 1]:>11.5g}]"
            )
        lines.append(f"converged: {self.diagnostics['converged']}")
        return "\n".join(lines)

    def to_arviz(self) -> Any:
        """The fit as an ArviZ ``InferenceData``: the particles as one chain of draws in the
        ``posterior`` group (named by ``param_names``), the data in ``observed_data``, and
        the convergence diagnostics as attributes. Needs the ``arviz`` extra."""
        try:
            import arviz as az
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_arviz needs ArviZ: pip install 'ptdcore[arviz]'") from exc
        particles = self.particles
        d = self.diagnostics
        posterior = {name: particles[None, :, j] for j, name in enumerate(self.param_names)}
        return az.from_dict(
            posterior=posterior,
            observed_data={"T": self.data},
            attrs={
                "inference_library": "ptdcore.SVGD",
                "n_iterations": self.n_iterations,
                "converged": int(d["converged"]),
                "final_imbalance": float(d["final_imbalance"]),
                "nonfinite_particle_steps": int(d["nonfinite_particle_steps"]),
            },
        )

    # -- pickling: a ptdcore Model travels as its structure (its JAX functions do not) ----
    def __getstate__(self) -> dict[str, Any]:
        from ..jax_model import Model

        state = dict(self.__dict__)
        src = state["_source"]
        if isinstance(src, Model):
            state["_source"] = ("ptdcore.Model", src.structure, src.nr_moments, src.backend.name)
        if not isinstance(state.get("backend"), str | type(None)):
            state["backend"] = state["backend"].name
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        src = state["_source"]
        if isinstance(src, tuple) and len(src) == 4 and src[0] == "ptdcore.Model":
            from ..jax_model import Model

            _, structure, nr_moments, backend = src
            state["_source"] = Model(structure, nr_moments, backend, _derived=True)
        self.__dict__.update(state)

    def plot(self, out_dir: str = ".", prefix: str = "svgd", true_theta: Any = None) -> list[str]:
        """Write the posterior density and particle-trace plots; returns the file paths."""
        from .plots import plot_svgd

        return plot_svgd(self, out_dir, prefix, true_theta)


def _progress_bar(total: int, progress: bool | None) -> Any:
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="SVGD", unit="it")


def _drift(history: np.ndarray, window_chunks: int, chunk: int, rates: np.ndarray) -> float:
    """Largest movement of the particles' mean or spread over the last window, per unit
    of cumulative learning rate (unconstrained scale)."""
    start, end = history[-1 - window_chunks], history[-1]
    steps = rates.size
    first = max(0, steps - window_chunks * chunk)
    tau = float(rates[first:].sum())
    if not tau > 0:
        return float("inf")
    moved = np.concatenate([np.abs(end.mean(0) - start.mean(0)), np.abs(end.std(0) - start.std(0))])
    return float(moved.max() / tau)


def _summarise(
    svgd: SVGD,
    start: Start,
    history_u: np.ndarray,
    infos: list[Any],
    nr_moments: int,
    regularization: float,
    chunk: int,
    rates: np.ndarray | None,
) -> dict[str, Any]:
    to_natural = np.exp if svgd.positive else (lambda x: x)
    history = start.to_fitted(history_u)
    traces = {name: np.concatenate([getattr(i, name) for i in infos]) for name in infos[0]._fields}
    steps = traces["imbalance"].size
    window = max(len(infos[-1].imbalance), math.ceil(CONVERGENCE_WINDOW * steps))
    tail_imbalance = float(np.mean(traces["imbalance"][-window:]))
    nonfinite = int(traces["nonfinite"].sum())
    # Converged: at the end the update's two halves cancel (a fixed point of SVGD),
    # the cloud no longer drifts per unit step size (default optimizer), nothing was
    # non-finite there, and the particles are finite.
    window_chunks = min(history.shape[0] - 1, max(1, math.ceil(window / chunk)))
    # (drift in the coordinates the steps are taken in, where the step size is defined)
    drift = _drift(history_u, window_chunks, chunk, rates) if rates is not None else float("nan")
    imbalance_bound = CONVERGENCE_IMBALANCE if rates is None else CONVERGENCE_IMBALANCE_WITH_DRIFT
    converged = bool(
        tail_imbalance < imbalance_bound
        and (rates is None or drift < CONVERGENCE_DRIFT)
        and traces["nonfinite"][-window:].sum() == 0
        and np.all(np.isfinite(history[-1]))
    )
    if nonfinite:
        import warnings

        worst = int(traces["nonfinite"].max())
        warnings.warn(
            f"SVGD: {nonfinite} particle-steps had a non-finite log density or gradient "
            f"(up to {worst} of {history.shape[1]} particles in one step); their gradients "
            "were set to zero for those steps. See diagnostics['nonfinite'].",
            RuntimeWarning,
            stacklevel=4,
        )
    return {
        "particles": to_natural(history[-1]),
        "history": to_natural(history),
        "diagnostics": {
            **traces,
            "converged": converged,
            "final_imbalance": tail_imbalance,
            "final_drift": drift,
            "convergence_criterion": (
                "imbalance and drift" if rates is not None else "imbalance (custom optimizer)"
            ),
            "nonfinite_particle_steps": nonfinite,
            "init": start.description,
            "preconditioned": start.preconditioned,
        },
        "nr_moments": nr_moments,
        "regularization": regularization,
    }
