"""Orbax checkpoints of the train state: keep-last-N, atomic, restored straight into its shardings.

Orbax writes each step to a temporary folder and renames it when complete, so an interrupted save
never looks like a checkpoint. A checkpoint stores the state's fields as a dict (`TrainState.to_dict`),
so it can be read without dfjax. A damaged latest checkpoint falls back to the one before it (and
says so); a checkpoint whose tree does not match the config is a UserError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from dfjax.errors import UserError
from dfjax.training.state import TrainState


class Checkpointer:
    def __init__(self, directory: str | Path, keep: int = 3):
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state, force: bool = False) -> None:
        if self._manager.latest_step() == step:
            return
        self._manager.save(step, args=ocp.args.StandardSave(state.to_dict()), force=force)

    def restore(self, abstract_state: TrainState, shardings, step: int | None = None,
                warn: Callable[[str], None] | None = None) -> TrainState:
        """Restore `step` (default: the latest readable one) with the shapes, dtypes and shardings of
        `abstract_state`. Without `step`, a checkpoint that cannot be read is passed over for the one
        before it, and `warn` is told which."""
        target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract_state, shardings)
        return TrainState.from_dict(self._first_readable(
            lambda candidate: self._manager.restore(candidate, args=ocp.args.StandardRestore(target.to_dict())),
            [step] if step is not None else None, warn))

    def restore_fields(self, fields: dict, sharding) -> tuple[int, dict]:
        """The step and the fields of the train state named in `fields` (e.g. {"ema": abstract params}),
        each put on `sharding`, from the latest readable checkpoint whose arrays have the abstract trees'
        shapes (checked against its metadata first): inference reads neither the optimizer's state
        nor the discriminator's."""
        target = {name: jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), tree)
                  for name, tree in {"step": jax.ShapeDtypeStruct((), jnp.int32), **fields}.items()}
        restore_args = jax.tree.map(lambda t: ocp.ArrayRestoreArgs(sharding=t.sharding, dtype=t.dtype), target)
        reader = ocp.CheckpointManager(self.directory, item_handlers=ocp.PyTreeCheckpointHandler(),
                                       options=ocp.CheckpointManagerOptions(create=False))

        def same_shape(wanted, stored) -> None:
            if tuple(wanted.shape) != tuple(stored.shape):
                raise ValueError(f"an array of shape {tuple(wanted.shape)} is stored as {tuple(stored.shape)}")

        def read(candidate: int) -> dict:
            stored = reader.item_metadata(candidate).tree
            for name in fields:
                jax.tree.map(same_shape, target[name], stored[name])
            return reader.restore(candidate, args=ocp.args.PyTreeRestore(item=target, restore_args=restore_args,
                                                                          partial_restore=True))
        try:
            state = self._first_readable(read)
        finally:
            reader.close()
        return int(state.pop("step")), state

    def _first_readable(self, read: Callable[[int], dict], steps: list[int] | None = None,
                        warn: Callable[[str], None] | None = None) -> dict:
        """`read` of the first of `steps` (default: every step, newest first) that can be read; `warn` is
        told of a newer one passed over; none readable is a UserError."""
        failures = []
        for candidate in steps or sorted(self._manager.all_steps(), reverse=True):
            try:
                state = read(candidate)
            except Exception as exc:  # noqa: BLE001 - orbax and tensorstore raise many kinds for a damaged file
                failures.append((candidate, str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__))
                continue
            if failures and warn is not None:
                warn(f"checkpoint {failures[0][0]} in {self.directory} cannot be read ({failures[0][1]}); "
                     f"resuming from checkpoint {candidate}.")
            return state
        raise UserError(f"the checkpoint at {self.directory} does not fit this config or is damaged "
                        f"({failures[0][1] if failures else 'no checkpoint'}); use the config it was trained "
                        "with, or a new --workdir.")

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
