"""`train(config, workdir)`: every trainer kind through one path, and `load_trained`, the one way a
trained workdir of any kind is read back for inference.

Setup (mesh, data, state created sharded or restored), the jitted step (dfjax.training.step), the
loop (dfjax.training.loop) and the summary are the same for every kind; the trainer (picked by
`config.trainer` from dfjax.training.trainer.TRAINERS) supplies models, data, batch and loss.
Programs are compiled once per process for a config (a resume, a test, the demo reuse them).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jax
import ml_collections

from dfjax import io
from dfjax.training import parallel
from dfjax.config import load_saved_config, save_config
from dfjax.errors import UserError, warn
from dfjax.previews import write_preview
from dfjax.training.checkpoint import Checkpointer
from dfjax.training.loop import Hook, MetricsLog, run_loop
from dfjax.training.state import TrainState, build_optimizer, new_state
from dfjax.training.step import jit_step, make_step
from dfjax.training.trainer import TRAINERS, Trainer

# ----------------------------------------------------------------------------- the workdir


def prepare_workdir(workdir: Path, config: ml_collections.ConfigDict) -> None:
    """Make `workdir` (checking it is writable); refuse a workdir whose checkpoints are of another model.

    Nothing is written to a workdir that is refused; the config is saved later (`save_config`), once
    the data is loaded, so a run that fails before training leaves no config behind to trip the next.
    """
    saved = workdir / "config.json"
    if saved.exists() and any((workdir / "checkpoints").glob("[0-9]*")):
        try:
            previous = io.read_json(saved)
        except (OSError, ValueError):
            previous = None
        if previous is not None and (previous.get("trainer", "swap"), previous.get("model")) != \
                (config.get("trainer"), json.loads(io.dumps(config.model.to_dict()))):
            raise UserError(f"{workdir} holds a checkpoint of a different model ({previous.get('model')}); "
                            "use a new --workdir or the same --config.")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        # a probe file of its own name: the processes of a --distributed job probe the same workdir at once
        with tempfile.NamedTemporaryFile(dir=workdir, prefix=".write_test."):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to workdir {workdir} ({exc.strerror}); choose a writable folder.") from None


@contextlib.contextmanager
def workdir_lock(workdir: Path):
    """Hold `workdir/.lock` (an advisory lock the system drops when the process dies, even by kill -9)
    while training, so a second run on the same workdir stops at once instead of mixing checkpoints."""
    if jax.process_index() != 0:  # the chief holds it for the whole job
        yield
        return
    with open(workdir / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise UserError(f"{workdir} is in use by another dfjax train (PID {owner}); wait for it to finish "
                            "or pass another --workdir.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def keep_metrics_until(workdir: Path, step: int) -> None:
    """Drop metrics.jsonl records after `step` (those of a run that stopped after its last checkpoint),
    so a resumed run logs each step once."""
    path = workdir / "metrics.jsonl"
    if jax.process_index() != 0 or not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill
    io.write_text(path, "".join(f"{line}\n" for line in kept))


# ----------------------------------------------------------------------------- compiled programs


@dataclass
class Programs:
    trainer: Trainer          # the instance the step was traced with
    abstract: TrainState      # shapes and dtypes of the state
    state_sharding: Any
    init: Any                 # jitted () -> TrainState, created sharded
    step: Any                 # jitted (state, data) -> (state, metrics)


_PROGRAMS: dict[str, Programs] = {}
_UNTRACED = ("log", "config_spec")  # settings the compiled programs never read


def _program_key(trainer: Trainer, mesh) -> str:
    config = trainer.config.to_dict()
    for name in _UNTRACED:
        config.pop(name, None)
    config.get("data", {}).pop("a", None), config.get("data", {}).pop("b", None)
    config.get("train", {}).pop("nan_patience", None)
    if config.get("train", {}).get("schedule", "constant") == "constant":
        config["train"].pop("steps", None)  # then the step count is not part of the program
    return json.dumps([config, trainer.compile_key(), str(mesh.devices.tolist())], sort_keys=True, default=str)


def abstract_state(trainer: Trainer | ml_collections.ConfigDict) -> TrainState:
    """Shapes and dtypes of the train state of a trainer, or of a config's trainer (no memory used)."""
    if isinstance(trainer, ml_collections.ConfigDict):
        trainer = TRAINERS.get(trainer.get("trainer", "swap"), "trainer")(trainer)
    return jax.eval_shape(partial(initial_state, trainer))


def initial_state(trainer: Trainer) -> TrainState:
    config = trainer.config
    key = jax.random.key(config.seed)
    variables = trainer.init_variables(key)
    optimizer = build_optimizer(config.train, config.train.lr)
    d_optimizer = build_optimizer(config.train, config.gan.lr) if trainer.has_discriminator else None
    return new_state(key, variables.params, optimizer, ema=True, model_state=variables.model_state,
                     d_params=variables.d_params, d_stats=variables.d_stats, d_optimizer=d_optimizer)


def programs(trainer: Trainer, mesh) -> Programs:
    """The jitted init and step of `trainer` on `mesh`, compiled once per process for its config."""
    key = _program_key(trainer, mesh)
    if key not in _PROGRAMS:
        config = trainer.config
        rep = parallel.replicated(mesh)
        abstract = abstract_state(trainer)
        state_sharding = jax.tree.map(lambda _: rep, abstract)
        optimizer = build_optimizer(config.train, config.train.lr)
        d_optimizer = build_optimizer(config.train, config.gan.lr) if trainer.has_discriminator else None
        step = make_step(trainer, optimizer, d_optimizer, config.train.ema_decay)
        _PROGRAMS[key] = Programs(trainer, abstract, state_sharding,
                                  jax.jit(partial(initial_state, trainer), out_shardings=state_sharding),
                                  jit_step(step, state_sharding, trainer.data_sharding, rep))
    return _PROGRAMS[key]


# ----------------------------------------------------------------------------- training


def train(config: ml_collections.ConfigDict, workdir: str | Path, *, progress=None) -> dict:
    """Train (or resume) the trainer `config.trainer` in `workdir` until config.train.steps; a summary."""
    workdir = Path(workdir)
    trainer = TRAINERS.get(config.get("trainer", "swap"), "trainer")(config)
    prepare_workdir(workdir, config)
    with workdir_lock(workdir):
        mesh = parallel.make_mesh()
        parallel.check_batch(trainer.batch_size(), mesh)
        trainer.prepare(workdir, mesh, progress)
        chief = jax.process_index() == 0
        if chief:
            save_config(config, workdir / "config.json")
        compiled = programs(trainer, mesh)
        checkpointer = Checkpointer(workdir / "checkpoints", keep=config.log.keep)
        try:
            if checkpointer.latest_step() is not None:
                state = checkpointer.restore(compiled.abstract, compiled.state_sharding, warn=warn)
            else:
                state = compiled.init()
            start = int(jax.device_get(state.step))
            keep_metrics_until(workdir, start)
            trainer.start(start, mesh)
            log = MetricsLog(workdir)

            def preview(state, step):
                grid = trainer.preview(state)  # every process runs the (global) computation
                if chief:
                    write_preview(workdir, step, grid, log.tb, **({"layout": trainer.preview_caption}
                                                                  if trainer.preview_caption else {}))

            done = run_loop(state, compiled.step, trainer.feed, start=start, steps=config.train.steps,
                            log_every=config.log.every, nan_patience=config.train.nan_patience, workdir=workdir,
                            checkpointer=checkpointer, checkpoint_every=config.log.checkpoint_every,
                            hooks=(Hook(config.log.preview_every, preview),), log=log, progress=progress,
                            task="train" if trainer.name == "swap" else f"{trainer.name} train")
        finally:
            trainer.close()
            checkpointer.close()
    steps_run = done.step - start
    return {"workdir": str(workdir), **trainer.summary(), "steps_run": steps_run, "step": done.step,
            "stopped_by": done.stopped_by, "seconds": round(done.seconds, 1),
            "images_per_s": round(steps_run * trainer.images_per_step() / max(done.seconds, 1e-9), 1),
            "devices": mesh.size, "loss": None if done.last_log is None else done.last_log["loss"],
            "preview": str(workdir / "previews" / "latest.png")}


# ----------------------------------------------------------------------------- inference


@dataclass
class TrainedModel:
    """A generator ready for inference: module, (EMA) parameters, resolution, and where it came from."""

    generator: Any
    params: Any
    resolution: int
    config: ml_collections.ConfigDict
    step: int
    workdir: str
    config_hash: str
    trainer: str


def in_padded_batches(fn, inputs, batch: int):
    """fn applied to `inputs` (an array or a pytree of arrays sharing the leading axis N) in chunks of
    `batch`, the last one padded by repeating its last row (so a jitted fn compiles once), and the
    outputs (a pytree of arrays with leading axis `batch`) concatenated back to N as NumPy arrays."""
    import numpy as np

    n = len(jax.tree.leaves(inputs)[0])
    if n == 0:
        raise ValueError("in_padded_batches needs at least one row")
    out = []
    for start in range(0, n, batch):
        k = min(batch, n - start)
        chunk = jax.tree.map(lambda a: np.concatenate([a[start:start + k], np.repeat(a[start + k - 1:start + k],
                                                                                       batch - k, 0)]), inputs)
        out.append(jax.tree.map(lambda a: np.asarray(a)[:k], fn(chunk)))
    return jax.tree.map(lambda *parts: np.concatenate(parts), *out)


def load_trained(workdir: str | Path, kind: str | None = None, use_ema: bool = True) -> TrainedModel:
    """The generator of the latest checkpoint of a `dfjax train` workdir (of trainer `kind`, when
    given), on the default device; a workdir of another kind, or without a checkpoint, is a UserError."""
    workdir = Path(workdir)
    saved = workdir / "config.json"
    if not saved.exists():
        raise UserError(f"{workdir} is not a dfjax train workdir (no config.json); pass the --workdir of a training run.")
    config = load_saved_config(saved)  # a damaged file is a UserError there
    config_hash = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
    found = config.get("trainer", "swap")
    kind = kind or found
    if found != kind:
        have, want = TRAINERS.get(found, "trainer"), TRAINERS.get(kind, "trainer")
        raise UserError(f"{workdir} holds a {have.noun}, not a {want.noun}; use `{have.command} --model {workdir}` "
                        f"with it, or train a {want.noun} with --config {want.config_file}.")
    checkpointer = Checkpointer(workdir / "checkpoints")
    if checkpointer.latest_step() is None:
        checkpointer.close()
        raise UserError(f"{workdir} has no checkpoint yet; train first with `dfjax train --workdir {workdir}`.")
    if jax.default_backend() == "cpu":
        config.model.dtype = "float32"
    trainer = TRAINERS.get(kind, "trainer")(config)
    field = "ema" if use_ema else "params"
    params = jax.eval_shape(lambda: trainer.init_variables(jax.random.key(config.seed)).params)
    try:  # a checkpoint that does not fit the config is a UserError there
        step, fields = checkpointer.restore_fields({field: params},
                                                   jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))
    finally:
        checkpointer.close()
    return TrainedModel(trainer.generator, fields[field], trainer.resolution(config), config, step, str(workdir),
                        config_hash, kind)

