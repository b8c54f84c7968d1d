"""The one training loop: every trainer (swap model, reenactor) and the CNN detectors run through it.

`run_loop` steps a jitted step from `start` to `steps` and does the rest the same way for all: metrics
one step behind (the host never waits on the device) to metrics.jsonl and TensorBoard when there is
a workdir, the NaN guard (stop after `nan_patience` skipped non-finite steps in a row), periodic
hooks (preview grids, validation), checkpoints, progress, and a clean stop on SIGINT/SIGTERM with a
final checkpoint. One process (the chief) writes files; every process runs the computations.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jax

from dfjax import io
from dfjax.errors import UserError
from dfjax.training.checkpoint import Checkpointer


class StopFlag:
    """Set by SIGINT/SIGTERM so the loop can save a checkpoint and leave cleanly."""

    def __init__(self, enabled: bool = True):
        self.raised = None
        self._old = {}
        if enabled and threading.current_thread() is threading.main_thread():
            self._old = {sig: signal.signal(sig, self._set) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _set(self, signum, _frame):
        self.raised = signal.Signals(signum).name

    def restore(self):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


@dataclass
class Hook:
    """`run(state, step)` every `every` steps and at the last step (previews, validation)."""

    every: int
    run: Callable[[Any, int], None]


@dataclass
class LoopResult:
    state: Any
    step: int
    stopped_by: str  # "finished", "SIGINT", "SIGTERM" (checkpoint saved) or "non-finite"
    last_log: dict | None  # the last metrics record
    seconds: float
    records: list = field(default_factory=list)  # every metrics record logged


class MetricsLog:
    """metrics.jsonl and TensorBoard of a workdir (chief only), or nothing."""

    def __init__(self, workdir: Path | None):
        chief = jax.process_index() == 0
        self.file = open(workdir / "metrics.jsonl", "a") if workdir is not None and chief else None
        self.tb = None
        if self.file is not None:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(str(workdir / "tb"))

    def write(self, step: int, metrics) -> dict:
        """One step's metrics, fetched from the device now."""
        values = {k: float(v) for k, v in jax.device_get(metrics).items()}
        record = {"step": step, **{k: round(v, 6) for k, v in values.items()}}
        if self.file is not None:
            self.file.write(io.dumps(record) + "\n")  # strict JSON: NaN and infinities as null
            self.file.flush()
            for k, v in values.items():
                self.tb.add_scalar(f"train/{k}", v, step)
        return record

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.tb.close()


def run_loop(state, step_fn: Callable, feed: Callable[[int], Any], *, start: int, steps: int, log_every: int,
             nan_patience: int, workdir: Path | None = None, checkpointer: Checkpointer | None = None,
             checkpoint_every: int = 0, hooks: tuple[Hook, ...] = (), on_log: Callable[[dict], None] | None = None,
             log: MetricsLog | None = None, progress=None, task: str = "train",
             advice: str = "lower train.lr or check the data, then resume from the last healthy checkpoint"
             ) -> LoopResult:
    """Step `state` with `step_fn(state, feed(step))` from `start` to `steps`.

    Metrics are logged every `log_every` steps and at the last. Checkpoints (when `checkpointer`)
    every `checkpoint_every` steps and always at the end, also after a signal or the NaN guard; the
    caller closes the checkpointer. Signals are caught only when there is a checkpoint to save.
    `log` (default: a MetricsLog of `workdir`) is closed at the end.
    """
    log = MetricsLog(workdir) if log is None else log
    stop = StopFlag(enabled=checkpointer is not None)
    bar = progress.add_task(task, total=steps, completed=start) if progress else None
    pending, last_log, records = None, None, []
    started, reason, step = time.perf_counter(), "finished", start

    def flush():
        nonlocal pending, last_log
        if pending is not None:
            last_log = log.write(*pending)
            records.append(last_log)
            pending = None
            if on_log:
                on_log(last_log)
            if progress and "loss" in last_log:
                progress.update(bar, description=f"{task} loss {last_log['loss']:.4f}")

    previous = None  # the last step's metrics, whose skipped-step count is read one step behind
    try:
        while step < steps:
            state, metrics = step_fn(state, feed(step))
            step += 1
            flush()  # the previous step's metrics: the host never waits on the device
            if previous is not None and int(jax.device_get(previous["bad_steps"])) >= nan_patience:
                reason = "non-finite"
                break
            previous = metrics
            if step % log_every == 0 or step == steps:
                pending = (step, metrics)
            due = [hook for hook in hooks if step % hook.every == 0 or step == steps]
            if due:
                flush()
                for hook in due:
                    hook.run(state, step)
            if progress:
                progress.update(bar, completed=step)
            if checkpointer is not None and checkpoint_every and step % checkpoint_every == 0:
                checkpointer.save(step, state)
            if stop.raised:
                reason = stop.raised
                break
        flush()
        if reason == "finished" and previous is not None and int(jax.device_get(previous["bad_steps"])) >= nan_patience:
            reason = "non-finite"
        if checkpointer is not None and reason != "non-finite":  # never checkpoint a diverging run
            checkpointer.save(step, state, force=True)
    finally:
        stop.restore()
        log.close()
    if reason == "non-finite":
        healthy = checkpointer.latest_step() if checkpointer is not None else None
        where = f" (step {healthy})" if healthy is not None else ""
        raise UserError(f"{task} stopped at step {step}: {nan_patience} non-finite step(s) in a row; {advice}"
                        f"{where}.")
    return LoopResult(state, step, reason, last_log, time.perf_counter() - started, records)
