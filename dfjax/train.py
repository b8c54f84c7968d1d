"""`dfjax train`: the shared-encoder / two-decoder swap model, data-parallel over every device.

One readable file in sections (big_vision style): the pure update step, then setup (mesh, data,
models, optimizers, checkpoint) and the loop, which is dfjax.loop's (shared with the reenactor). The state is a plain dict of pytrees; the step is jitted
with explicit shardings and donated state; randomness is `fold_in(seed key, step)`, so a resumed
run draws exactly the batches an uninterrupted one would have.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from dfjax import losses, parallel
from dfjax.checkpoint import Checkpointer
from dfjax.data.augment import AugmentConfig, augment_batch, sample_indices, target_geometry
from dfjax.data.controls import face_controls, window_maps
from dfjax.data.faceset import FaceSet
from dfjax.data.loader import HostLoader
from dfjax.data.training_set import Side, load_side, synthetic_facesets
from dfjax.errors import UserError
from dfjax.models.autoencoder import resolution
from dfjax.loop import prepare_workdir, run_loop
from dfjax.previews import make_previewer
from dfjax.state import (SIDES, build_models, build_optimizer, commit_if_finite, cond_window, generator_update,
                         init_state)

# ----------------------------------------------------------------------------- the update step

def _side_batch(key, data, side: str, batch: int, augment: AugmentConfig, res: int, sharding):
    """Augmented batch of one side: sampled by index from the face set on the device, or (when the
    set streams from the host) the uint8 batch the host loader delivered. With the conditioning
    branch, also the stacked maps of each face's causal window ("cond"), rendered here from the
    controls on the device and moved with the targets' augmentation (dfjax.data.controls)."""
    k_idx, k_aug = jax.random.split(key)
    if f"stream_faces_{side}" in data:
        faces, maps, idx = data[f"stream_faces_{side}"], data[f"stream_maps_{side}"], data.get(f"stream_idx_{side}")
    else:
        faces, maps = data[f"faces_{side}"], data[f"maps_{side}"]
        idx = jax.lax.with_sharding_constraint(sample_indices(k_idx, faces.shape[0], batch), sharding)
        faces, maps = faces[idx], maps[idx]
    out = augment_batch(k_aug, faces, maps, augment, res)
    if f"cond_{side}" in data:
        geometry = target_geometry(k_aug, batch, faces.shape[1], augment, res)
        out["cond"] = window_maps(data[f"cond_{side}"], idx, geometry, res)
    return out


def _reconstruction(config, face, target, maps, vgg=None, vgg_params=None):
    """Weighted reconstruction loss: eye/mouth priority, and (faceswap's penalised mask loss)
    pixels outside the face mask counted at `loss.outside_mask_weight`."""
    mask = maps[..., :1]
    weights = (1.0 + (config.data.eye_weight - 1.0) * maps[..., 1:2] + (config.data.mouth_weight - 1.0) * maps[..., 2:3])
    weights = weights * (config.loss.outside_mask_weight + (1.0 - config.loss.outside_mask_weight) * mask)
    perceptual = 0.0
    if vgg is not None:
        perceptual = losses.perceptual_loss(vgg.apply({"params": vgg_params}, face),
                                            vgg.apply({"params": vgg_params}, target))
    terms = {"perceptual": perceptual,
             "l1": losses.l1(face, target, weights) if config.loss.l1 else 0.0,
             "mse": losses.mse(face, target, weights) if config.loss.mse else 0.0,
             "ssim": losses.ssim_loss(face, target) if config.loss.ssim else 0.0,
             "ms_ssim": losses.ms_ssim_loss(face, target) if config.loss.ms_ssim else 0.0,
             "ffl": losses.focal_frequency_loss(face, target) if config.loss.ffl else 0.0}
    return sum(config.loss[name] * value for name, value in terms.items())


def train_step(state, data, *, config, generator, discriminator, g_opt, d_opt, augment, res, batch_sharding,
               vgg=None):
    """One update of generator (and discriminators); skips the update when anything is non-finite."""
    key = jax.random.fold_in(jax.random.key(config.seed), state["step"])
    keys = dict(zip(SIDES, jax.random.split(key, 2)))
    batch = {s: _side_batch(keys[s], data, s, config.train.batch_per_side, augment, res, batch_sharding)
             for s in SIDES}
    vgg_params = data.get("vgg")
    gan = losses.gan_losses(config.gan.objective) if discriminator is not None else None

    def generator_loss(params):
        conds = [batch[s]["cond"] for s in SIDES if "cond" in batch[s]]
        out = generator.apply({"params": params}, batch["a"]["inputs"], batch["b"]["inputs"], *conds)
        metrics, total = {}, 0.0
        for s in SIDES:
            target, maps = batch[s]["targets"], batch[s]["target_masks"]
            rec = _reconstruction(config, out[f"face_{s}"], target, maps, vgg, vgg_params)
            mask = losses.mask_loss(out[f"mask_{s}"], maps[..., :1])
            metrics[f"rec_{s}"], metrics[f"mask_{s}"] = rec, mask
            total += rec + config.loss.mask * mask
            if gan is not None:
                logits, _ = discriminator.apply({"params": state["d_params"][s], "batch_stats": state["d_stats"][s]},
                                                out[f"face_{s}"], update_stats=False, mutable=["batch_stats"])
                metrics[f"g_adv_{s}"] = gan[1](logits)
                total += config.gan.weight * metrics[f"g_adv_{s}"]
        return total, (metrics, out)

    (loss, (metrics, out)), grads = jax.value_and_grad(generator_loss, has_aux=True)(state["params"])
    new, finite = generator_update(state, grads, loss, g_opt, config.train.ema_decay)

    if discriminator is not None:
        def disc_loss(d_params):
            total, stats = 0.0, {}
            for s in SIDES:
                both = jnp.concatenate([batch[s]["targets"], jax.lax.stop_gradient(out[f"face_{s}"])])
                logits, new_vars = discriminator.apply({"params": d_params[s], "batch_stats": state["d_stats"][s]},
                                                       both, update_stats=True, mutable=["batch_stats"])
                real, fake = jnp.split(logits, 2)
                total += gan[0](real, fake)
                stats[s] = new_vars["batch_stats"]
            return total, stats

        (d_loss, d_stats), d_grads = jax.value_and_grad(disc_loss, has_aux=True)(state["d_params"])
        d_updates, d_opt_state = d_opt.update(d_grads, state["d_opt_state"], state["d_params"])
        new.update(d_params=optax.apply_updates(state["d_params"], d_updates), d_stats=d_stats, d_opt_state=d_opt_state)
        metrics["d_loss"] = d_loss
        finite &= jnp.isfinite(d_loss) & jnp.isfinite(optax.tree.norm(d_grads))

    return commit_if_finite(state, new, finite, metrics, loss, grads)


# ----------------------------------------------------------------------------- the loop

def load_perceptual(config, mesh):
    """The fixed VGG16 feature extractor for the perceptual loss, from the file the user named."""
    path = config.loss.vgg16_weights
    if not path:
        raise UserError("loss.perceptual > 0 needs VGG16 weights: --set loss.vgg16_weights=PATH (.npz or .h5).")
    try:
        weights = losses.load_vgg16_weights(path)
    except (ValueError, OSError) as exc:
        raise UserError(f"cannot use VGG16 weights {path}: {exc}; pass a Keras .h5 or an .npz of VGG16.") from None
    vgg = losses.PerceptualVGG16(preprocess=weights.preprocess, dtype=jnp.dtype(config.model.dtype))
    return vgg, jax.tree.map(lambda x: parallel.put_replicated(x, mesh), weights.params)


def resolve_sides(config, workdir: Path, progress=None) -> dict[str, Side]:
    a, b = config.data.a, config.data.b
    if bool(a) != bool(b):
        raise UserError("give both --a and --b face sets, or neither to train on synthetic data.")
    if not a:
        a, b = synthetic_facesets(workdir, config.data.synth_frames, config.data.synth_size, progress)
    cache = None if config.data.on_device else workdir / "cache"
    return {"a": load_side("a", a, cache), "b": load_side("b", b, cache)}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path, *, progress=None) -> dict:
    """Train (or resume) in `workdir` until config.train.steps; returns a summary dict."""
    workdir = Path(workdir)
    prepare_workdir(workdir, config)
    mesh = parallel.make_mesh()
    parallel.check_batch(config.train.batch_per_side, mesh)
    res = resolution(config.model.arch, config.model.tiny_res)
    sides = resolve_sides(config, workdir, progress)
    rep, shard = parallel.replicated(mesh), parallel.batch_sharded(mesh)
    data, data_sharding, loaders = {}, {}, {}
    for s, side in sides.items():
        if config.data.on_device:
            data[f"faces_{s}"] = parallel.put_replicated(side.faces, mesh)
            data[f"maps_{s}"] = parallel.put_replicated(side.maps, mesh)
            data_sharding[f"faces_{s}"] = data_sharding[f"maps_{s}"] = rep
        else:
            data_sharding[f"stream_faces_{s}"] = data_sharding[f"stream_maps_{s}"] = shard
        if cond_window(config):  # per-frame controls for the conditioning maps, beside the faces
            controls = face_controls(FaceSet(side.path), cond_window(config))
            data[f"cond_{s}"] = {k: parallel.put_replicated(v, mesh) for k, v in controls.items()}
            data_sharding[f"cond_{s}"] = rep
            if not config.data.on_device:
                data_sharding[f"stream_idx_{s}"] = shard
    vgg = None
    if config.loss.perceptual:
        vgg, data["vgg"] = load_perceptual(config, mesh)
        data_sharding["vgg"] = rep

    generator, discriminator = build_models(config)
    g_opt = build_optimizer(config.train, config.train.lr)
    d_opt = build_optimizer(config.train, config.gan.lr)
    init = partial(init_state, config, generator, discriminator, g_opt, d_opt, res)
    abstract = jax.eval_shape(init)
    state_sharding = jax.tree.map(lambda _: rep, abstract)
    augment = AugmentConfig.from_dict(config.data.augment.to_dict())
    step_fn = jax.jit(partial(train_step, config=config, generator=generator, discriminator=discriminator,
                              g_opt=g_opt, d_opt=d_opt, augment=augment, res=res, batch_sharding=shard, vgg=vgg),
                      in_shardings=(state_sharding, data_sharding), out_shardings=(state_sharding, rep),
                      donate_argnums=0)

    checkpointer = Checkpointer(workdir / "checkpoints", keep=config.log.keep)
    state = checkpointer.restore(abstract, state_sharding) if checkpointer.latest_step() is not None else None
    if state is None:
        state = jax.jit(init, out_shardings=state_sharding)()
    start = int(jax.device_get(state["step"]))
    if not config.data.on_device:  # stream uint8 batches from the memory-mapped sets, prefetched
        put = partial(parallel.put_batch, mesh=mesh)
        for i, (s, side) in enumerate(sides.items()):
            loaders[s] = HostLoader((side.faces, side.maps), config.train.batch_per_side, seed=config.seed * 2 + i,
                                    start_step=start, device_put=lambda b: tuple(put(x) for x in b))
    shown = {s: np.linspace(0, len(side.faces) - 1, 4).astype(int) for s, side in sides.items()}
    preview_cond = None
    if cond_window(config):  # previews draw each face with its own (unaugmented) maps
        plain = AugmentConfig(enabled=False)
        preview_cond = {s: window_maps(data[f"cond_{s}"], jnp.asarray(shown[s]),
                                       target_geometry(jax.random.key(0), 4, side.faces.shape[1], plain, res), res)
                        for s, side in sides.items()}
    preview = make_previewer(generator, {s: side.faces[shown[s]] for s, side in sides.items()}, res, preview_cond)

    def feed(step: int) -> dict:
        for s, loader in loaders.items():
            data[f"stream_faces_{s}"], data[f"stream_maps_{s}"] = next(loader)
            if f"cond_{s}" in data:  # the loader's faces of this step, for their controls
                data[f"stream_idx_{s}"] = parallel.put_batch(loader.batch_indices(step).astype(np.int32), mesh)
        return data

    try:
        done = run_loop(state, step_fn, feed, start=start, config=config, workdir=workdir, checkpointer=checkpointer,
                        preview=lambda state: preview(state["params"]), progress=progress)
    finally:
        for loader in loaders.values():
            loader.close()
        checkpointer.close()
    steps_run = done.step - start
    return {"workdir": str(workdir), "steps_run": steps_run, "step": done.step, "stopped_by": done.stopped_by,
            "seconds": round(done.seconds, 1),
            "images_per_s": round(steps_run * 2 * config.train.batch_per_side / max(done.seconds, 1e-9), 1),
            "devices": mesh.size, "loss": None if done.last_log is None else done.last_log["loss"],
            "preview": str(workdir / "previews" / "latest.png")}
