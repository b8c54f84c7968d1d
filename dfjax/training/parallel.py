"""Data parallelism: one ("data",) mesh over every device of every process.

Parameters and face sets are replicated, batches are split along the mesh's "data" axis, and the
jitted step carries explicit in/out shardings, so XLA inserts the gradient all-reduce itself (no
`pmap`, which JAX has put in maintenance mode, and no hand-written `pmean`).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def initialize(distributed: bool = False) -> None:
    """Join a multi-process job when asked (`--distributed`).

    `jax.distributed.initialize()` reads the coordinator, process count and id from the cluster
    environment (SLURM, Open MPI, TPU pods) or from the DFJAX_COORDINATOR, DFJAX_NUM_PROCESSES and
    DFJAX_PROCESS_ID variables. On CPU, collectives across processes go through gloo.
    """
    if not distributed:
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # only affects CPU devices
    if "DFJAX_COORDINATOR" in os.environ:
        jax.distributed.initialize(coordinator_address=os.environ["DFJAX_COORDINATOR"],
                                   num_processes=int(os.environ["DFJAX_NUM_PROCESSES"]),
                                   process_id=int(os.environ["DFJAX_PROCESS_ID"]))
    else:
        jax.distributed.initialize()


def make_mesh() -> Mesh:
    """A 1-D mesh named "data" over every device of every process."""
    return jax.make_mesh((jax.device_count(),), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(DATA_AXIS))


def put_replicated(array: np.ndarray, mesh: Mesh) -> jax.Array:
    """Place a host array (every process holds the same one) on every device of the mesh."""
    array = np.asarray(array)
    return jax.make_array_from_callback(array.shape, replicated(mesh), lambda index: array[index])


def put_batch(array: np.ndarray, mesh: Mesh) -> jax.Array:
    """Split a global host batch (identical on every process) along the data axis."""
    array = np.asarray(array)
    return jax.make_array_from_callback(array.shape, batch_sharded(mesh), lambda index: array[index])


def check_batch(batch: int, mesh: Mesh) -> None:
    if batch % mesh.size:
        from dfjax.errors import UserError

        raise UserError(f"batch {batch} per side does not divide over {mesh.size} devices; "
                        f"set train.batch_per_side to a multiple of {mesh.size}.")
