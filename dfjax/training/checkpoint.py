"""Orbax checkpoints of the train state: keep-last-N, atomic, restored straight into its shardings.

Orbax writes each step to a temporary folder and renames it when complete, so an interrupted save
never looks like a checkpoint. A checkpoint stores the state's fields as a dict (`TrainState.to_dict`),
so it can be read without dfjax. A checkpoint whose tree does not match the config is a UserError.
"""

from __future__ import annotations

from pathlib import Path

import jax
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

    def restore(self, abstract_state: TrainState, shardings, step: int | None = None) -> TrainState:
        """Restore `step` (default: the latest) with the shapes, dtypes and shardings of `abstract_state`."""
        step = self._manager.latest_step() if step is None else step
        target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract_state, shardings)
        try:
            return TrainState.from_dict(self._manager.restore(step, args=ocp.args.StandardRestore(target.to_dict())))
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"the checkpoint at {self.directory} does not fit this config "
                            f"({str(exc).splitlines()[0][:120]}); use the config it was trained with "
                            "or a new --workdir.") from None

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
