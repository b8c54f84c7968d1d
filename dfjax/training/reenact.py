"""The reenactment trainer (Deep Video Portraits): one target, re-rendered from its own maps.

A conditional U-Net (dfjax.models.unet) learns to reproduce every aligned face of the target from
that face's own conditioning maps (correspondence, head pose, gaze, mask) over a causal window of
`model.cond_window` frames, against L1 and a PatchGAN that sees maps and face together (pix2pix).
The maps of the whole face set are rendered once on the device and kept there as uint8 beside the
faces; steps sample training faces by index. `data.holdout` keeps the last part of the footage out
of training, for self-reenactment; the workdir also gets target.npz, what inference needs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import flax
import jax
import jax.numpy as jnp
import numpy as np

from dfjax import losses
from dfjax.training import parallel
from dfjax.data.augment import sample_indices
from dfjax.data.reenact_target import Target, load_target, render_all, save_target_info, window_conditioning
from dfjax.data.training_set import synthetic_facesets
from dfjax.errors import UserError
from dfjax.models.conditioning import C_MAPS
from dfjax.models.discriminator import discriminator_from_config
from dfjax.models.unet import UNet
from dfjax.training.trainer import TRAINERS, Trainer, Variables


@flax.struct.dataclass
class TargetData:
    faces: jax.Array     # uint8 (N, R, R, 3)
    maps: jax.Array      # uint8 (N, R, R, C_MAPS): every frame's conditioning maps
    windows: jax.Array   # int32 (N, window): each frame's causal window


@TRAINERS.register("reenact")
class ReenactTrainer(Trainer):
    name = "reenact"
    noun = "reenactor"
    command = "dfjax reenact"
    config_file = "configs/reenact.py"
    preview_caption = "reenact: correspondence map, eyes/pupils/mask, generated, real"

    def __init__(self, config):
        super().__init__(config)
        self.target: Target | None = None

    @staticmethod
    def build_models(config):
        m, dtype = config.model, jnp.dtype(config.model.dtype)
        generator = UNet(features=m.features, depth=m.depth, max_features=m.max_features, dtype=dtype)
        return generator, discriminator_from_config(config.gan, dtype)

    @staticmethod
    def resolution(config) -> int:
        return config.model.res

    @staticmethod
    def check_config(config) -> None:
        if config.model.cond_window < 1:
            raise UserError(f"model.cond_window={config.model.cond_window} is impossible for a reenactor; "
                            "give a window of 1 or more frames.")
        if config.model.res % 2 ** config.model.depth:
            raise UserError(f"model.res={config.model.res} does not halve {config.model.depth} times "
                            f"(model.depth); give a multiple of {2 ** config.model.depth}.")
        if config.data.get("b"):
            raise UserError("reenactment trains on one face set (the target): pass --a TARGET_FACESET and drop --b.")

    def init_variables(self, key) -> Variables:
        # An "rbg" key: XLA:CPU compiles threefry's initialisers slowly (about 20 s for the tiny U-Net, 3 s so).
        k_g, k_d = jax.random.split(jax.random.key(self.config.seed, impl="rbg"))
        res, channels = self.config.model.res, C_MAPS * self.config.model.cond_window
        params = self.generator.init(k_g, jnp.zeros((1, res, res, channels), jnp.float32))["params"]
        if self.discriminator is None:
            return Variables(params)
        d_vars = self.discriminator.init(k_d, jnp.zeros((1, res, res, channels + 3), jnp.float32))
        return Variables(params, d_params=d_vars["params"], d_stats=d_vars.get("batch_stats", {}))

    def prepare(self, workdir: Path, mesh, progress=None) -> None:
        config = self.config
        path = config.data.a or synthetic_facesets(workdir, config.data.synth_frames, config.data.synth_size,
                                                   progress)[0]
        res = config.model.res
        self.target = load_target(path, res, config.model.cond_window, config.data.holdout)
        self.maps = render_all(self.target.controls, res)
        if jax.process_index() == 0:
            save_target_info(workdir, self.target)
        self.batch_sharding = parallel.batch_sharded(mesh)
        rep = parallel.replicated(mesh)
        self.data = TargetData(parallel.put_replicated(self.target.faces, mesh), parallel.put_replicated(self.maps, mesh),
                               parallel.put_replicated(self.target.windows.astype(np.int32), mesh))
        self.data_sharding = TargetData(rep, rep, rep)

    def compile_key(self) -> tuple:
        return (self.target.n_train,)  # training faces are sampled from [0, n_train)

    def batch(self, key, data: TargetData) -> dict:
        idx = jax.lax.with_sharding_constraint(
            sample_indices(key, self.target.n_train, self.config.train.batch_per_side), self.batch_sharding)
        return {"cond": window_conditioning(data.maps, data.windows[idx], self.config.model.cond_window),
                "target": jnp.take(data.faces, idx, axis=0).astype(jnp.float32) / 255.0}

    def generator_loss(self, params, state, batch, key):
        config, cond = self.config, batch["cond"]
        fake = self.generator.apply({"params": params}, cond)
        metrics = {"l1": losses.l1(fake, batch["target"])}
        total = config.loss.l1 * metrics["l1"]
        if self.discriminator is not None:
            logits, _ = self.discriminator.apply({"params": state.d_params, "batch_stats": state.d_stats},
                                                 jnp.concatenate([cond, fake], -1), update_stats=False,
                                                 mutable=["batch_stats"])
            metrics["g_adv"] = losses.gan_losses(config.gan.objective)[1](logits)
            total += config.gan.weight * metrics["g_adv"]
        return total, (metrics, {"fake": fake})

    def discriminator_loss(self, d_params, state, batch, aux):
        cond = batch["cond"]
        pairs = jnp.concatenate([jnp.concatenate([cond, batch["target"]], -1),
                                 jnp.concatenate([cond, jax.lax.stop_gradient(aux["fake"])], -1)])
        logits, new_vars = self.discriminator.apply({"params": d_params, "batch_stats": state.d_stats}, pairs,
                                                    update_stats=True, mutable=["batch_stats"])
        real, fake = jnp.split(logits, 2)
        return losses.gan_losses(self.config.gan.objective)[0](real, fake), ({}, new_vars["batch_stats"])

    def preview(self, state) -> np.ndarray:
        """Per row: correspondence map | eyes and pupils | generated | real, of four fixed faces (EMA weights)."""
        if not hasattr(self, "_preview"):
            shown = np.unique(np.linspace(0, len(self.target.faces) - 1, 4).round().astype(int))
            maps, windows = jnp.asarray(self.maps), jnp.asarray(self.target.windows[shown])
            real = jnp.asarray(self.target.faces[shown], jnp.float32) / 255.0
            generator, window = self.generator, self.config.model.cond_window

            @jax.jit
            def run(params):
                cond = window_conditioning(maps, windows, window)
                current = cond[..., -C_MAPS:]
                eyes = jnp.stack([current[..., 6], current[..., 7], current[..., 8] * 0.3], -1)
                fake = generator.apply({"params": params}, cond)
                return jnp.concatenate([current[..., :3], eyes, fake, real], axis=2)

            self._preview = run
        rows = np.asarray(jax.device_get(self._preview(state.ema)), np.float32)
        image = (np.clip(np.concatenate(list(rows), axis=0), 0, 1) * 255).round().astype(np.uint8)
        scale = max(1, 128 // rows.shape[1])
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)

    def summary(self) -> dict:
        return {"target": self.target.path, "faces_train": self.target.n_train,
                "faces_held_out": len(self.target.faces) - self.target.n_train}
