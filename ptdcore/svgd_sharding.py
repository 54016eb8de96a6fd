"""Particles spread over every device of every process (``jax.distributed``), and back.

One process or several, the same code: the particles are one global array sharded
along its first axis over a one-dimensional mesh of ``jax.devices()`` (all devices of
all processes after ``jax.distributed.initialize``). Each SVGD step evaluates the
model on the local particles only (``jax.shard_map``); the kernel sums see all of them
(XLA gathers the small (n, d) arrays). Results come back to every process through
``process_allgather``, once per chunk of steps, never per step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

AXIS = "particles"


def particle_mesh(n_particles: int) -> Any:
    """A mesh over all global devices, or None with one device or an uneven split
    (then each process computes every particle itself, with the same result)."""
    import jax
    from jax.sharding import Mesh

    devices = jax.devices()
    if len(devices) < 2 or n_particles % len(devices):
        return None
    return Mesh(np.array(devices), (AXIS,))


def shard(particles: Any, mesh: Any) -> Any:
    """``particles`` (n, d), the same in every process, as a global array on ``mesh``."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    if mesh is None:
        return jax.numpy.asarray(particles)
    host = np.asarray(particles)
    sharding = NamedSharding(mesh, PartitionSpec(AXIS, None))
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def to_host(tree: Any) -> Any:
    """Numpy copies of a pytree of (possibly global) arrays, the same in every process."""
    import jax

    def fetch(x: Any) -> np.ndarray:
        if isinstance(x, jax.Array) and not (x.is_fully_addressable or x.is_fully_replicated):
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree_util.tree_map(fetch, tree)


def local_map(fn: Any, mesh: Any, out_specs: Any) -> Any:
    """``fn`` on each device's particles only (identity wrapper without a mesh)."""
    if mesh is None:
        return fn
    import jax
    from jax.sharding import PartitionSpec

    return jax.shard_map(
        fn, mesh=mesh, in_specs=PartitionSpec(AXIS, None), out_specs=out_specs, check_vma=False
    )
