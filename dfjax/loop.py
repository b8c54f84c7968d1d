"""The training loop every trainer shares (the swap model in train.py, the reenactor in reenact_train.py).

Given a jitted step and its state, `run_loop` steps until `config.train.steps` and does the rest the
same way for every model: metrics one step behind (the host never waits on the device) to
metrics.jsonl and TensorBoard, the NaN guard (stop after `train.nan_patience` non-finite steps in a
row), preview grids, orbax checkpoints, and a clean stop on SIGINT/SIGTERM with a final checkpoint.
One process (the chief) writes files; every process runs the (global) computations.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jax

from dfjax.checkpoint import Checkpointer
from dfjax.config import save_config
from dfjax.errors import UserError
from dfjax.previews import write_preview


def prepare_workdir(workdir: Path, config) -> None:
    """Make `workdir` (checking it is writable) and save the config; refuse a workdir of another model."""
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to workdir {workdir} ({exc.strerror}); choose a writable folder.") from None
    saved = workdir / "config.json"
    if saved.exists():
        previous = json.loads(saved.read_text())
        if previous.get("model") != json.loads(json.dumps(config.model.to_dict())):
            raise UserError(f"{workdir} holds a checkpoint of a different model ({previous.get('model')}); "
                            "use a new --workdir or the same --config.")
    if jax.process_index() == 0:
        save_config(config, saved)


class StopFlag:
    """Set by SIGINT/SIGTERM so the loop can save a checkpoint and leave cleanly."""

    def __init__(self):
        self.raised = None
        self._old = {sig: signal.signal(sig, self._set) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _set(self, signum, _frame):
        self.raised = signal.Signals(signum).name

    def restore(self):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


@dataclass
class LoopResult:
    state: Any
    step: int
    stopped_by: str  # "finished", "SIGINT", "SIGTERM" (checkpoint saved) or "non-finite"
    last_log: dict | None  # the last metrics record written
    seconds: float


def run_loop(state, step_fn: Callable, feed: Callable[[int], Any], *, start: int, config, workdir: Path,
             checkpointer: Checkpointer, preview: Callable[[Any], Any], caption: str | None = None,
             progress=None, task: str = "train") -> LoopResult:
    """Step `state` with `step_fn(state, feed(step))` from `start` to config.train.steps.

    `preview(state)` returns the preview grid (uint8 image) of a state; it runs every
    config.log.preview_every steps and at the last step. Checkpoints every config.log.checkpoint_every
    steps and always at the end (also after a signal or the NaN guard). The caller closes `checkpointer`.
    """
    chief = jax.process_index() == 0
    from tensorboardX import SummaryWriter

    tb = SummaryWriter(str(workdir / "tb")) if chief else None
    metrics_file = open(workdir / "metrics.jsonl" if chief else os.devnull, "a")
    stop = StopFlag()
    bar = progress.add_task(task, total=config.train.steps, completed=start) if progress else None
    pending, last_log, started, reason, step = None, None, time.perf_counter(), "finished", start
    try:
        while step < config.train.steps:
            state, metrics = step_fn(state, feed(step))
            step += 1
            if pending is not None:  # metrics one step behind: the host never waits on the device
                last_log = log_metrics(pending, metrics_file, tb)
                if progress:
                    progress.update(bar, description=f"{task} loss {last_log['loss']:.4f}")
                if last_log["bad_steps"] >= config.train.nan_patience:
                    reason = "non-finite"
                    break
            pending = (step, metrics) if step % config.log.every == 0 or step == config.train.steps else None
            if progress:
                progress.update(bar, completed=step)
            if step % config.log.preview_every == 0 or step == config.train.steps:
                grid = preview(state)  # every process runs the (global) computation
                if chief:
                    write_preview(workdir, step, grid, tb, **({"layout": caption} if caption else {}))
            if step % config.log.checkpoint_every == 0:
                checkpointer.save(step, state)
            if stop.raised:
                reason = stop.raised
                break
        if pending is not None:
            last_log = log_metrics(pending, metrics_file, tb)
        checkpointer.save(step, state, force=True)
    finally:
        stop.restore()
        metrics_file.close()
        if tb:
            tb.close()
    if reason == "non-finite":
        raise UserError(f"training stopped at step {step}: {config.train.nan_patience} non-finite steps in a row; "
                        "lower train.lr or check the face sets, then resume from the last checkpoint.")
    return LoopResult(state, step, reason, last_log, time.perf_counter() - started)


def log_metrics(pending, metrics_file, tb) -> dict:
    """Write one step's metrics (fetched from the device now) to metrics.jsonl and TensorBoard."""
    step, metrics = pending
    values = {k: float(v) for k, v in jax.device_get(metrics).items()}
    record = {"step": step, **{k: round(v, 6) for k, v in values.items()}}
    metrics_file.write(json.dumps(record) + "\n")
    metrics_file.flush()
    if tb:
        for k, v in values.items():
            tb.add_scalar(f"train/{k}", v, step)
    return record
