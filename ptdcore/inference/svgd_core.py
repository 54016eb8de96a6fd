"""Stein variational gradient descent, functional core (pure, jit/scan friendly).

Liu & Wang (2016), "Stein Variational Gradient Descent: A General Purpose
Bayesian Inference Algorithm", NeurIPS. For particles ``x_1..x_n`` and a target
log density ``log p``, each step moves every particle along

    phi(x_i) = 1/n sum_j [ k(x_j, x_i) grad log p(x_j) + grad_{x_j} k(x_j, x_i) ]

with the RBF kernel ``k(x, y) = exp(-||x - y||^2 / h)``. The bandwidth follows
the median heuristic ``h = med^2 / log(n + 1)``, ``med`` the median of the
pairwise distances, so that ``sum_j k(x_i, x_j) ~ 1 + n exp(-med^2/h) = 2``, or,
on a metric where the posterior is about N(0, I) (:func:`metric_bandwidth`), is
fixed at ``8 d``.
The step itself is left to an optax optimizer (ascent: the update is computed
for ``-phi``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

LogDensity = Callable[[jax.Array], jax.Array]
KernelFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
BandwidthFn = Callable[[jax.Array], jax.Array]


class SVGDState(NamedTuple):
    """Everything that changes during a run."""

    particles: jax.Array  # (n, d), unconstrained coordinates
    opt_state: optax.OptState
    step: jax.Array


class StepInfo(NamedTuple):
    """Per-step diagnostics (scan outputs)."""

    bandwidth: jax.Array
    phi_norm: jax.Array  # mean over particles of ||phi(x_i)||
    log_density_mean: jax.Array
    nonfinite: jax.Array  # particles whose log density or gradient is NaN or infinite
    imbalance: jax.Array  # ||phi|| / (||drive|| + ||repulsion||): 0 at the fixed point


def rbf_kernel(x: jax.Array, y: jax.Array, bandwidth: jax.Array) -> jax.Array:
    """``exp(-||x - y||^2 / bandwidth)``."""
    return jnp.exp(-jnp.sum((x - y) ** 2) / bandwidth)


MEDIAN_SUBSET = 256


def median_heuristic(particles: jax.Array) -> jax.Array:
    """``h = med^2 / log(n + 1)`` with ``med`` the median pairwise distance (floored).

    With more than ``MEDIAN_SUBSET`` (256) particles the median is taken over the
    pairs among the first 256 of them: the particles are exchangeable, the
    estimate is within a few percent, and the full median (a sort of n^2 / 2
    distances) would cost more than the rest of the step.
    """
    n = particles.shape[0]
    subset = particles[: min(n, MEDIAN_SUBSET)]
    m = subset.shape[0]
    sq = jnp.sum((subset[:, None, :] - subset[None, :, :]) ** 2, axis=-1)
    med2 = jnp.median(sq[jnp.triu_indices(m, k=1)]) if m > 1 else jnp.asarray(1.0)
    return jnp.maximum(med2, 1e-12) / jnp.log(n + 1.0)


BANDWIDTH_PER_DIMENSION = 8.0
"""On a metric where the posterior is about N(0, I_d) (the Laplace-preconditioned steps),
the bandwidth is this times d: SVGD's fixed point for N(0, I_3) with 20 particles keeps
0.64 of the variance with the median heuristic and 0.91 with h = 8 d (as h grows the
kernel tends to the linear one, whose fixed point has the target's mean and covariance
exactly for Gaussians: Liu and Wang 2018)."""


def metric_bandwidth(particles: jax.Array) -> jax.Array:
    """``h = BANDWIDTH_PER_DIMENSION x d`` (see there), whatever the particles."""
    return jnp.asarray(BANDWIDTH_PER_DIMENSION * particles.shape[-1], particles.dtype)


def stein_parts(
    particles: jax.Array, grads: jax.Array, bandwidth: jax.Array, kernel: KernelFn = rbf_kernel
) -> tuple[jax.Array, jax.Array]:
    """The two halves of ``phi``: the kernel-smoothed gradient and the repulsion."""
    n = particles.shape[0]
    if kernel is rbf_kernel:
        sq = jnp.sum((particles[:, None, :] - particles[None, :, :]) ** 2, axis=-1)
        k = jnp.exp(-sq / bandwidth)
        repulsion = 2.0 * (particles * k.sum(axis=1, keepdims=True) - k @ particles) / bandwidth
        return k @ grads / n, repulsion / n

    def parts_i(x_i: jax.Array) -> tuple[jax.Array, jax.Array]:
        k = jax.vmap(lambda x_j: kernel(x_j, x_i, bandwidth))(particles)
        dk = jax.vmap(lambda x_j: jax.grad(kernel)(x_j, x_i, bandwidth))(particles)
        return k @ grads / n, jnp.sum(dk, axis=0) / n

    return jax.vmap(parts_i)(particles)


def stein_direction(
    particles: jax.Array, grads: jax.Array, bandwidth: jax.Array, kernel: KernelFn = rbf_kernel
) -> jax.Array:
    """``phi`` for every particle (nested vmaps over particle pairs, no Python loop).

    For the RBF kernel the same quantity is computed in closed form with matrix
    products: ``grad_{x_j} k(x_j, x_i) = -2 (x_j - x_i) k_ij / h``, so
    ``sum_j grad_{x_j} k(x_j, x_i) = 2 (x_i sum_j k_ij - sum_j k_ij x_j) / h``.
    """
    if kernel is rbf_kernel:
        sq = jnp.sum((particles[:, None, :] - particles[None, :, :]) ** 2, axis=-1)
        k = jnp.exp(-sq / bandwidth)
        repulsion = 2.0 * (particles * k.sum(axis=1, keepdims=True) - k @ particles) / bandwidth
        return (k @ grads + repulsion) / particles.shape[0]

    def phi_i(x_i: jax.Array) -> jax.Array:
        k = jax.vmap(lambda x_j: kernel(x_j, x_i, bandwidth))(particles)
        dk = jax.vmap(lambda x_j: jax.grad(kernel)(x_j, x_i, bandwidth))(particles)
        return (k @ grads + jnp.sum(dk, axis=0)) / particles.shape[0]

    return jax.vmap(phi_i)(particles)


def init(particles: jax.Array, optimizer: optax.GradientTransformation) -> SVGDState:
    """The starting state for the given particles (n, d)."""
    return SVGDState(particles, optimizer.init(particles), jnp.asarray(0))


def build_step(
    log_density: LogDensity,
    optimizer: optax.GradientTransformation,
    kernel: KernelFn = rbf_kernel,
    bandwidth_fn: BandwidthFn = median_heuristic,
    mesh: Any = None,
) -> Callable[[SVGDState], tuple[SVGDState, StepInfo]]:
    """A pure one-step function ``step(state) -> (state, info)``.

    With a ``mesh`` (``ptdcore.svgd_sharding.particle_mesh``) the log densities and
    their gradients are computed on each device for its own particles only, then
    gathered; the rest of the step runs on the whole, replicated arrays, so the result
    does not depend on the number of devices or processes.
    """
    from .sharding import AXIS, local_map, particle_block, replicated

    def in_blocks(x: jax.Array) -> tuple[jax.Array, jax.Array]:
        block = particle_block(x.shape[0] * (1 if mesh is None else mesh.size))
        return jax.lax.map(jax.value_and_grad(log_density), x, batch_size=block)

    value_and_grad = local_map(
        in_blocks, mesh, (jax.sharding.PartitionSpec(AXIS), jax.sharding.PartitionSpec(AXIS, None))
    )

    def step(state: SVGDState) -> tuple[SVGDState, StepInfo]:
        x = state.particles
        logp, grads = value_and_grad(x)
        # A particle with an invalid log density must not poison the others: its
        # gradient is set to zero, and it is counted (reported after the run).
        bad = ~jnp.isfinite(logp) | ~jnp.all(jnp.isfinite(grads), axis=-1)
        grads = jnp.where(bad[:, None], 0.0, grads)
        h = bandwidth_fn(x)
        drive, repulsion = stein_parts(x, grads, h, kernel)
        phi = drive + repulsion
        phi_norms = jnp.linalg.norm(phi, axis=-1)
        scale = jnp.linalg.norm(drive, axis=-1) + jnp.linalg.norm(repulsion, axis=-1)
        updates, opt_state = optimizer.update(-phi, state.opt_state, x)
        new_x = optax.apply_updates(x, updates)
        if mesh is not None:  # the particles stay whole on every device
            new_x = jax.lax.with_sharding_constraint(new_x, replicated(mesh))
        info = StepInfo(
            bandwidth=h,
            phi_norm=jnp.mean(phi_norms),
            log_density_mean=jnp.mean(jnp.where(jnp.isfinite(logp), logp, jnp.nan)),
            nonfinite=jnp.sum(bad),
            imbalance=jnp.mean(phi_norms) / jnp.maximum(jnp.mean(scale), 1e-300),
        )
        return SVGDState(new_x, opt_state, state.step + 1), info

    return step


def run(
    step: Callable[[SVGDState], tuple[SVGDState, StepInfo]], state: SVGDState, n_steps: int
) -> tuple[SVGDState, StepInfo]:
    """``n_steps`` steps in one ``lax.scan``; returns the last state and stacked infos."""

    def body(s: SVGDState, _: Any) -> tuple[SVGDState, StepInfo]:
        return step(s)

    return jax.lax.scan(body, state, None, length=n_steps)
