"""Training of the reenactment mode (dfjax.reenact): one target, reproduced from its own maps.

`dfjax train --config configs/reenact.py[:tiny] --a TARGET_FACESET --workdir W` lands here. A
conditional U-Net (dfjax.models.unet) learns to reproduce every aligned face of the target from that
face's own conditioning maps (dfjax.models.conditioning: correspondence, head pose, gaze, mask) over
a causal window of `model.window` frames, against L1 and a PatchGAN that sees maps and face
together (pix2pix, Deep Video Portraits). The maps of the whole face set are rendered once, on the
device, and kept there as uint8 beside the faces: the target's frames are not augmented, so they
never change. Steps sample faces by index, data-parallel over a ("data",) mesh with replicated
parameters, with `fold_in(seed, step)` randomness, orbax checkpoints and exact resume, as in
dfjax.train. `data.holdout` keeps the last part of the footage out of training, for
self-reenactment; the workdir also gets target.npz, what inference needs of the target.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from dfjax import losses, media, parallel
from dfjax.checkpoint import Checkpointer
from dfjax.data.augment import sample_indices
from dfjax.data.faceset import FaceSet
from dfjax.data.training_set import synthetic_facesets
from dfjax.errors import UserError
from dfjax.faces.align import resize_points
from dfjax.faces.retarget import Controls, Reference, controls_from_meta, reference_of
from dfjax.models.conditioning import C_MAPS, render_maps, stack_window, window_indices
from dfjax.models.discriminator import PatchDiscriminator
from dfjax.models.unet import UNet
from dfjax.loop import prepare_workdir, run_loop
from dfjax.state import build_optimizer, commit_if_finite, generator_update

RENDER_CHUNK = 32  # frames per map-rendering call (a fixed shape: one compilation)

# ----------------------------------------------------------------------------- the target's data


@dataclass
class Target:
    """One identity's footage at the model's resolution, its maps' controls and its reference."""

    path: str
    faces: np.ndarray        # uint8 (N, R, R, 3)
    controls: Controls       # landmarks in R px crop coordinates
    windows: np.ndarray      # (N, window) causal window indices
    n_train: int             # faces [0, n_train) train; the rest are held out
    reference: Reference     # from the training faces, R px crop coordinates
    faceset: FaceSet


def load_target(path: str | Path, res: int, window: int, holdout: float = 0.0) -> Target:
    path = Path(path)
    if not path.exists():
        raise UserError(f"face set {path} does not exist; make it with `dfjax extract VIDEO -o {path}`.")
    faceset = FaceSet(path)
    n = len(faceset)
    n_train = n - int(round(holdout * n))
    if n_train < 2 or not 0.0 <= holdout < 1.0:
        raise UserError(f"face set {path} has {n} faces and data.holdout={holdout} leaves {n_train} to train on; "
                        "reenactment needs at least 2 (use a longer video or a smaller holdout).")
    controls = controls_from_meta(faceset.meta)
    controls = controls._replace(landmarks=resize_points(controls.landmarks, res / faceset.size))
    faces = np.stack([cv2.resize(np.asarray(f), (res, res), interpolation=cv2.INTER_AREA if res < faceset.size
                                 else cv2.INTER_CUBIC) for f in faceset.faces])
    sources = {s: i for i, s in enumerate(dict.fromkeys(m.get("source", "") for m in faceset.meta))}
    windows = window_indices(np.array([m.get("frame", i) for i, m in enumerate(faceset.meta)]),
                             np.array([sources[m.get("source", "")] for m in faceset.meta]), window)
    reference = reference_of(controls.landmarks[:n_train], controls.pose[:n_train])
    return Target(str(path), faces, controls, windows, n_train, reference, faceset)


def render_all(controls: Controls, res: int) -> np.ndarray:
    """uint8 (N, R, R, C_MAPS) maps of every frame, rendered on the default device in fixed chunks."""
    render = _renderer(res)
    n = len(controls.landmarks)
    out = np.zeros((n, res, res, C_MAPS), np.uint8)
    for start in range(0, n, RENDER_CHUNK):
        part = [np.asarray(a[start:start + RENDER_CHUNK], np.float32) for a in controls]
        k = len(part[0])
        part = [np.concatenate([a, np.repeat(a[-1:], RENDER_CHUNK - k, 0)]) for a in part]
        out[start:start + k] = np.asarray(render(*part))[:k]
    return out


@partial(jax.jit, static_argnums=4)
def _render_u8(landmarks, pose, gaze, eyes_open, res):
    return jnp.round(render_maps(landmarks, pose, gaze, eyes_open, res) * 255).astype(jnp.uint8)


def _renderer(res: int):
    return lambda *args: _render_u8(*args, res)


def _conditioning(maps_u8: jax.Array, windows: jax.Array, window: int) -> jax.Array:
    """Float maps (B, R, R, C * window) of faces whose windows (B, window) index `maps_u8`."""
    return stack_window(jnp.take(maps_u8, windows, axis=0).astype(jnp.float32) / 255.0, window)


def reference_frame(target: Target) -> dict:
    """The training frame nearest the neutral face: its full frame, frame->crop matrix (face-set px) and
    landmarks. Falls back to the aligned crop itself when the source video is gone."""
    lm, ref = target.controls.landmarks[:target.n_train], target.reference
    score = np.linalg.norm(lm - ref.neutral, axis=-1).mean(-1) / max(ref.iod, 1e-6)
    score = score + np.abs(target.controls.pose[:target.n_train] - ref.pose).sum(-1) / 30.0
    index = int(np.argmin(score))
    meta = target.faceset.meta[index]
    source = Path(meta.get("source", ""))
    if source.is_file() and "frame" in meta:
        frame = next((f for _, f in media.iter_frames(source, start=int(meta["frame"]), stop=int(meta["frame"]) + 1)),
                     None)
        if frame is not None:
            return {"frame": frame, "matrix": np.asarray(meta["matrix"], np.float64), "index": index,
                    "landmarks": np.asarray(meta["landmarks"], np.float64), "source": str(source),
                    "source_frame": int(meta["frame"])}
    crop = np.asarray(target.faceset.faces[index])
    matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return {"frame": crop, "matrix": matrix, "index": index, "source": target.path, "source_frame": index,
            "landmarks": resize_points(target.controls.landmarks[index], target.faceset.size / target.faces.shape[1])}


def save_target_info(workdir: Path, target: Target) -> None:
    """workdir/target.npz: what inference needs from the target without its face set or video."""
    ref = reference_frame(target)
    info = {"faceset": target.path, "face_type": target.faceset.info.get("face_type", "face"),
            "coverage": float(target.faceset.info.get("coverage", 1.0)), "faceset_size": target.faceset.size,
            "source": ref["source"], "source_frame": ref["source_frame"], "n_train": target.n_train}
    tmp = workdir / ".target.partial.npz"
    np.savez(tmp, neutral=target.reference.neutral, iod=target.reference.iod, pose=target.reference.pose,
             frame=ref["frame"], matrix=ref["matrix"], landmarks=ref["landmarks"], info=json.dumps(info))
    os.replace(tmp, workdir / "target.npz")


# ----------------------------------------------------------------------------- model and state


def build_models(config: ml_collections.ConfigDict) -> tuple[UNet, PatchDiscriminator | None]:
    m, dtype = config.model, jnp.dtype(config.model.dtype)
    generator = UNet(features=m.features, depth=m.depth, max_features=m.max_features, dtype=dtype)
    discriminator = None
    if config.gan.enabled:
        discriminator = PatchDiscriminator(features=config.gan.features, n_layers=config.gan.n_layers,
                                           spectral_norm=config.gan.spectral_norm, dtype=dtype)
    return generator, discriminator


def init_state(config, generator, discriminator, g_opt, d_opt) -> dict:
    # An "rbg" key: XLA:CPU compiles threefry's initialisers slowly (about 20 s for the tiny U-Net, 3 s so).
    k_g, k_d = jax.random.split(jax.random.key(config.seed, impl="rbg"))
    res, channels = config.model.res, C_MAPS * config.model.window
    params = generator.init(k_g, jnp.zeros((1, res, res, channels), jnp.float32))["params"]
    state = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": g_opt.init(params), "ema": params,
             "bad_steps": jnp.zeros((), jnp.int32)}
    if discriminator is not None:
        d_vars = discriminator.init(k_d, jnp.zeros((1, res, res, channels + 3), jnp.float32))
        state.update(d_params=d_vars["params"], d_stats=d_vars.get("batch_stats", {}),
                     d_opt_state=d_opt.init(d_vars["params"]))
    return state


def _parts(config):
    generator, discriminator = build_models(config)
    g_opt = build_optimizer(config.train, config.train.lr)
    d_opt = build_optimizer(config.train, config.gan.lr)
    return generator, discriminator, g_opt, d_opt


# ----------------------------------------------------------------------------- the update step


def train_step(state, data, *, config, n_train, generator, discriminator, g_opt, d_opt, batch_sharding):
    """One generator (and discriminator) update on a batch of training faces; non-finite steps are skipped."""
    key = jax.random.fold_in(jax.random.key(config.seed), state["step"])
    idx = jax.lax.with_sharding_constraint(sample_indices(key, n_train, config.train.batch), batch_sharding)
    cond = _conditioning(data["maps"], data["windows"][idx], config.model.window)
    target = jnp.take(data["faces"], idx, axis=0).astype(jnp.float32) / 255.0
    gan = losses.gan_losses(config.gan.objective) if discriminator is not None else None

    def generator_loss(params):
        fake = generator.apply({"params": params}, cond)
        metrics = {"l1": losses.l1(fake, target)}
        total = config.loss.l1 * metrics["l1"]
        if gan is not None:
            logits, _ = discriminator.apply({"params": state["d_params"], "batch_stats": state["d_stats"]},
                                            jnp.concatenate([cond, fake], -1), update_stats=False,
                                            mutable=["batch_stats"])
            metrics["g_adv"] = gan[1](logits)
            total += config.gan.weight * metrics["g_adv"]
        return total, (metrics, fake)

    (loss, (metrics, fake)), grads = jax.value_and_grad(generator_loss, has_aux=True)(state["params"])
    new, finite = generator_update(state, grads, loss, g_opt, config.train.ema_decay)
    if gan is not None:
        pairs = jnp.concatenate([jnp.concatenate([cond, target], -1),
                                 jnp.concatenate([cond, jax.lax.stop_gradient(fake)], -1)])

        def disc_loss(d_params):
            logits, new_vars = discriminator.apply({"params": d_params, "batch_stats": state["d_stats"]}, pairs,
                                                   update_stats=True, mutable=["batch_stats"])
            real, fake_logits = jnp.split(logits, 2)
            return gan[0](real, fake_logits), new_vars["batch_stats"]

        (d_loss, d_stats), d_grads = jax.value_and_grad(disc_loss, has_aux=True)(state["d_params"])
        d_updates, d_opt_state = d_opt.update(d_grads, state["d_opt_state"], state["d_params"])
        new.update(d_params=optax.apply_updates(state["d_params"], d_updates), d_stats=d_stats,
                   d_opt_state=d_opt_state)
        metrics["d_loss"] = d_loss
        finite &= jnp.isfinite(d_loss) & jnp.isfinite(optax.tree.norm(d_grads))
    return commit_if_finite(state, new, finite, metrics, loss, grads)


# ----------------------------------------------------------------------------- the loop


def _target_path(config, workdir: Path, progress=None) -> Path:
    if config.data.b:
        raise UserError("reenactment trains on one face set (the target): pass --a TARGET_FACESET and drop --b.")
    if config.data.a:
        return Path(config.data.a)
    return synthetic_facesets(workdir, config.data.synth_frames, config.data.synth_size, progress)[0]


def _preview_fn(generator, maps: np.ndarray, windows: np.ndarray, faces: np.ndarray, window: int):
    """params -> uint8 grid: per row, correspondence map | eyes and pupils | generated | real."""
    maps, windows, real = jnp.asarray(maps), jnp.asarray(windows), jnp.asarray(faces, jnp.float32) / 255.0

    @jax.jit
    def run(params):
        cond = _conditioning(maps, windows, window)
        current = cond[..., -C_MAPS:]
        eyes = jnp.stack([current[..., 6], current[..., 7], current[..., 8] * 0.3], -1)
        fake = generator.apply({"params": params}, cond)
        return jnp.concatenate([current[..., :3], eyes, fake, real], axis=2)

    def grid(params) -> np.ndarray:
        rows = np.asarray(jax.device_get(run(params)), np.float32)
        image = (np.clip(np.concatenate(list(rows), axis=0), 0, 1) * 255).round().astype(np.uint8)
        scale = max(1, 128 // rows.shape[1])
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)

    return grid


@functools.lru_cache(maxsize=2)
def _compiled(config_json: str, n_train: int, mesh):
    """(generator, abstract state, jitted init, jitted step) of a config, kept so that runs of the same
    config in one process (a resume, a test, the demo) compile once."""
    config = ml_collections.ConfigDict(json.loads(config_json))
    generator, discriminator, g_opt, d_opt = _parts(config)
    init = partial(init_state, config, generator, discriminator, g_opt, d_opt)
    abstract = jax.eval_shape(init)
    rep = parallel.replicated(mesh)
    state_sharding = jax.tree.map(lambda _: rep, abstract)
    step_fn = jax.jit(partial(train_step, config=config, n_train=n_train, generator=generator,
                              discriminator=discriminator, g_opt=g_opt, d_opt=d_opt,
                              batch_sharding=parallel.batch_sharded(mesh)),
                      in_shardings=(state_sharding, rep), out_shardings=(state_sharding, rep), donate_argnums=0)
    return generator, abstract, jax.jit(init, out_shardings=state_sharding), step_fn


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path, *, progress=None) -> dict:
    """Train (or resume) the reenactor in `workdir` until config.train.steps; returns a summary dict."""
    workdir = Path(workdir)
    prepare_workdir(workdir, config)
    mesh = parallel.make_mesh()
    parallel.check_batch(config.train.batch, mesh)
    res, window = config.model.res, config.model.window
    target = load_target(_target_path(config, workdir, progress), res, window, config.data.holdout)
    maps = render_all(target.controls, res)
    chief = jax.process_index() == 0
    if chief:
        save_target_info(workdir, target)
    rep = parallel.replicated(mesh)
    data = {"faces": parallel.put_replicated(target.faces, mesh), "maps": parallel.put_replicated(maps, mesh),
            "windows": parallel.put_replicated(target.windows.astype(np.int32), mesh)}
    key = config.to_dict()
    if config.train.schedule == "constant":  # then train.steps does not change the step: share its compilation
        key["train"]["steps"] = 0
    generator, abstract, init_fn, step_fn = _compiled(json.dumps(key, sort_keys=True, default=str), target.n_train,
                                                      mesh)
    checkpointer = Checkpointer(workdir / "checkpoints", keep=config.log.keep)
    state_sharding = jax.tree.map(lambda _: rep, abstract)
    state = checkpointer.restore(abstract, state_sharding) if checkpointer.latest_step() is not None else None
    if state is None:
        state = init_fn()
    start = int(jax.device_get(state["step"]))
    shown = np.unique(np.linspace(0, len(target.faces) - 1, 4).round().astype(int))
    preview = _preview_fn(generator, maps, target.windows[shown], target.faces[shown], window)

    try:
        done = run_loop(state, step_fn, lambda step: data, start=start, config=config, workdir=workdir,
                        checkpointer=checkpointer, preview=lambda state: preview(state["ema"]),
                        caption="reenact: correspondence map, eyes/pupils/mask, generated, real", progress=progress,
                        task="reenact train")
    finally:
        checkpointer.close()
    steps_run = done.step - start
    return {"workdir": str(workdir), "target": target.path, "faces_train": target.n_train,
            "faces_held_out": len(target.faces) - target.n_train, "steps_run": steps_run, "step": done.step,
            "stopped_by": done.stopped_by, "seconds": round(done.seconds, 1),
            "images_per_s": round(steps_run * config.train.batch / max(done.seconds, 1e-9), 1),
            "devices": mesh.size, "loss": None if done.last_log is None else done.last_log["loss"],
            "preview": str(workdir / "previews" / "latest.png")}
