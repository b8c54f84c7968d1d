"""The swap trainer: the shared-encoder autoencoder of faceswap and DeepFaceLab with one decoder per
identity (two by default; `data.identities` or `data.synth_identities` for N, every step sampling
every identity, so one run serves all N(N-1) swap directions), optionally a GAN (one PatchGAN per identity), a VAE (`model.latent=vae`: sampled codes and a KL term in training,
the mean code at swap time) and with the deep-video-portrait conditioning branch.

Both face sets go onto every device once as uint8 and each step samples its batch by index and
augments it inside the jitted step (or, with `data.on_device=False`, a host loader streams the
batch from the memory-mapped sets). With the branch (`model.cond_window` > 0) each face's causal
window of conditioning maps is drawn on the device from its controls and moved with the targets'
augmentation.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dfjax import losses
from dfjax.training import parallel
from dfjax.data.augment import AugmentConfig, augment_batch, sample_indices, target_geometry
from dfjax.data.controls import face_controls, window_maps
from dfjax.data.faceset import FaceSet
from dfjax.data.loader import HostLoader
from dfjax.data.training_set import Side, listed_identities, load_side, synthetic_facesets
from dfjax.errors import UserError
from dfjax.models.autoencoder import ARCHITECTURES, LATENTS, FaceSwapAE, resolution
from dfjax.models.conditioning import C_MAPS
from dfjax.models.discriminator import discriminator_from_config
from dfjax.previews import make_previewer
from dfjax.training.trainer import TRAINERS, Trainer, Variables

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@flax.struct.dataclass
class SideData:
    """One identity's training data on the devices."""

    faces: jax.Array        # uint8: the whole face set (N, S, S, 3), or the step's streamed batch (B, S, S, 3)
    maps: jax.Array         # uint8, alike: face mask, eye and mouth regions
    controls: Any = None    # with the conditioning branch: per-face controls of the maps (dfjax.data.controls)
    indices: Any = None     # streamed with the branch: the batch's face indices, for their controls


@flax.struct.dataclass
class SwapData:
    sides: dict             # identity name -> SideData
    vgg: Any = None         # the fixed VGG16 parameters of the perceptual loss




def identity_sets(config: ml_collections.ConfigDict) -> dict[str, str]:
    """Identity name -> face-set folder ("" for a synthetic identity), in the model's decoder order.

    `data.identities` (comma-separated folders, each named after its folder) when given; else `data.a`
    and `data.b` as identities a and b; else `data.synth_identities` synthetic ones (a, b, c, ...).
    """
    from dfjax.data.synthetic import identity_names

    listed = listed_identities(config)
    if listed:
        names = [Path(p).name for p in listed]
        return dict(zip(names, listed))
    if config.data.a or config.data.b:
        return {"a": config.data.a, "b": config.data.b}
    return dict.fromkeys(identity_names(int(config.data.get("synth_identities", 2))), "")


def identities(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The model's identity names, in decoder order."""
    return tuple(identity_sets(config))


def cond_window(config: ml_collections.ConfigDict) -> int:
    """Frames in the conditioning branch's causal window (`model.cond_window`); 0: no branch."""
    return int(config.model.get("cond_window", 0) or 0)


def latent(config: ml_collections.ConfigDict) -> str:
    """`model.latent`: "ae" or "vae" (configs saved before it existed are "ae")."""
    return config.model.get("latent", "ae")


def kl_weight(config: ml_collections.ConfigDict, step: jax.Array) -> jax.Array:
    """`loss.kl`, ramped linearly from 0 at step 0 to full at `loss.kl_warmup_steps`."""
    warmup = config.loss.get("kl_warmup_steps", 0)
    ramp = jnp.minimum(1.0, step.astype(jnp.float32) / warmup) if warmup else 1.0
    return config.loss.get("kl", 0.0) * ramp


def needs_vgg(config: ml_collections.ConfigDict) -> bool:
    """Whether a VGG16 term (feature or style) is on."""
    return bool(config.loss.get("perceptual", 0.0) or config.loss.get("style", 0.0))


@TRAINERS.register("swap")
class SwapTrainer(Trainer):
    name = "swap"
    noun = "face-swap model"
    command = "dfjax swap"
    config_file = "configs/swap.py"

    def __init__(self, config: ml_collections.ConfigDict):
        super().__init__(config)
        self.res = self.resolution(config)
        self.window = cond_window(config)
        self.streaming = not config.data.on_device
        self.augment = AugmentConfig.from_dict(config.data.augment.to_dict())
        self.vgg = None
        self.loaders: dict[str, HostLoader] = {}
        self.sides: dict[str, Side] = {}
        self.names = identities(config)
        if len(self.names) > 2:
            self.preview_caption = (f"rows: 4 faces of each of {', '.join(self.names)}; columns: the face, then "
                                    f"decoded as {', '.join(self.names)}")

    @staticmethod
    def build_models(config):
        dtype = jnp.dtype(config.model.dtype)
        generator = FaceSwapAE(arch=config.model.arch, dtype=dtype, param_dtype=jnp.float32,
                               attention_res=config.model.attention_res or None, tiny_res=config.model.tiny_res,
                               cond_channels=C_MAPS * cond_window(config), cond_width=config.model.get("cond_width", 0),
                               latent=latent(config), identities=identities(config))
        return generator, discriminator_from_config(config.gan, dtype)

    @staticmethod
    def resolution(config) -> int:
        return resolution(config.model.arch, config.model.tiny_res)

    @staticmethod
    def check_config(config) -> None:
        ARCHITECTURES.get(config.model.arch, "model.arch")
        res = config.model.tiny_res
        if config.model.arch.endswith("tiny") and (res % 16 or res < 16):
            raise UserError(f"model.tiny_res={res} is impossible; give a multiple of 16 (e.g. 32, 64, 128).")
        if latent(config) not in LATENTS:
            raise UserError(f"model.latent={latent(config)!r} is unknown; choose one of {', '.join(LATENTS)}.")
        if needs_vgg(config) and not config.loss.vgg16_weights:
            raise UserError("loss.perceptual and loss.style need VGG16 weights: "
                            "--set loss.vgg16_weights=PATH (.npz or .h5).")
        if config.data.get("identities") and (config.data.a or config.data.b):
            raise UserError("give the identities either as --a/--b or as data.identities (--faces), not both.")
        from dfjax.data.synthetic import identity_names

        identity_names(int(config.data.get("synth_identities", 2)), "data.synth_identities")  # 2 to 26
        sets = listed_identities(config)
        names = [Path(p).name for p in sets]
        if sets and len(sets) < 2:
            raise UserError(f"data.identities names {len(sets)} face set; a swap model needs 2 or more.")
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise UserError(f"two face sets of data.identities are both named {twice!r} (identities are named after "
                            "their folders); rename one folder.")
        bad = next((n for n in names if not n or set(n) - NAME_CHARS), None)
        if bad is not None:
            raise UserError(f"face set folder name {bad!r} cannot name an identity; use letters, digits, _ and - only.")
        if cond_window(config) and len(identities(config)) > 2:
            raise UserError("the conditioning branch (model.cond_window > 0) trains two identities; set "
                            "model.cond_window=0 to train more than two.")

    def init_variables(self, key) -> Variables:
        k_g, k_d = jax.random.split(key)
        dummy = jnp.zeros((1, self.res, self.res, 3), jnp.float32)
        channels = self.generator.cond_channels
        n = len(self.names)
        cond = (jnp.zeros((1, self.res, self.res, channels), jnp.float32),) * n if channels else ()
        params = self.generator.init(k_g, *(dummy,) * n, *cond)["params"]
        if self.discriminator is None:
            return Variables(params)
        d_vars = {s: self.discriminator.init(jax.random.fold_in(k_d, i), dummy) for i, s in enumerate(self.names)}
        return Variables(params, d_params={s: v["params"] for s, v in d_vars.items()},
                         d_stats={s: v.get("batch_stats", {}) for s, v in d_vars.items()})

    # -- data

    def prepare(self, workdir: Path, mesh, progress=None) -> None:
        config = self.config
        sets = identity_sets(config)
        if bool(config.data.a) != bool(config.data.b):
            raise UserError("give both --a and --b face sets, or neither to train on synthetic data.")
        if not any(sets.values()):
            sets = dict(zip(sets, synthetic_facesets(workdir, config.data.synth_frames, config.data.synth_size,
                                                     progress, identities=tuple(sets))))
        cache = workdir / "cache" if self.streaming else None
        self.sides = {name: load_side(name, path, cache) for name, path in sets.items()}
        rep, shard = parallel.replicated(mesh), parallel.batch_sharded(mesh)
        self.mesh, self.batch_sharding = mesh, shard
        sides, shardings = {}, {}
        for s, side in self.sides.items():
            controls = controls_sharding = None
            if self.window:  # per-frame controls of the conditioning maps, beside the faces
                raw = face_controls(FaceSet(side.path), self.window)
                controls = {k: parallel.put_replicated(v, mesh) for k, v in raw.items()}
                controls_sharding = {k: rep for k in raw}
            if self.streaming:  # filled by feed() from the host loader
                sides[s] = SideData(None, None, controls, None)
                shardings[s] = SideData(shard, shard, controls_sharding, shard if self.window else None)
            else:
                sides[s] = SideData(parallel.put_replicated(side.faces, mesh), parallel.put_replicated(side.maps, mesh),
                                    controls)
                shardings[s] = SideData(rep, rep, controls_sharding)
        vgg_params = None
        if needs_vgg(config):
            self.vgg, vgg_params = load_perceptual(config, mesh)
        self.data = SwapData(sides, vgg_params)
        self.data_sharding = SwapData(shardings,
                                      jax.tree.map(lambda _: rep, vgg_params) if vgg_params is not None else None)

    def start(self, step: int, mesh) -> None:
        if not self.streaming:
            return
        put = partial(parallel.put_batch, mesh=mesh)
        for i, (s, side) in enumerate(self.sides.items()):
            self.loaders[s] = HostLoader((side.faces, side.maps), self.config.train.batch_per_side,
                                         seed=self.config.seed * 2 + i, start_step=step,
                                         device_put=lambda b: tuple(put(x) for x in b))

    def feed(self, step: int) -> SwapData:
        if not self.streaming:
            return self.data
        sides = {}
        for s, loader in self.loaders.items():
            faces, maps = next(loader)
            indices = None
            if self.window:  # the loader's faces of this step, for their controls
                indices = parallel.put_batch(loader.batch_indices(step).astype(np.int32), self.mesh)
            sides[s] = self.data.sides[s].replace(faces=faces, maps=maps, indices=indices)
        return self.data.replace(sides=sides)

    def close(self) -> None:
        for loader in self.loaders.values():
            loader.close()

    # -- the step

    def _side_batch(self, key, side: SideData) -> dict:
        """Augmented batch of one side; with the branch, also the stacked maps of each face's window."""
        batch = self.config.train.batch_per_side
        k_idx, k_aug = jax.random.split(key)
        if self.streaming:
            faces, maps, idx = side.faces, side.maps, side.indices
        else:
            idx = jax.lax.with_sharding_constraint(sample_indices(k_idx, side.faces.shape[0], batch),
                                                   self.batch_sharding)
            faces, maps = side.faces[idx], side.maps[idx]
        out = augment_batch(k_aug, faces, maps, self.augment, self.res)
        if self.window:
            geometry = target_geometry(k_aug, batch, faces.shape[1], self.augment, self.res)
            out["cond"] = window_maps(side.controls, idx, geometry, self.res)
        return out

    def batch(self, key, data: SwapData) -> dict:
        keys = jax.random.split(key, len(self.names))
        return {**{s: self._side_batch(k, data.sides[s]) for s, k in zip(self.names, keys)}, "vgg": data.vgg}

    def generator_loss(self, params, state, batch, key):
        config, generator, discriminator = self.config, self.generator, self.discriminator
        gan = losses.gan_losses(config.gan.objective) if discriminator is not None else None
        conds = [batch[s]["cond"] for s in self.names if "cond" in batch[s]]
        inputs = (*(batch[s]["inputs"] for s in self.names), *conds)
        metrics, total = {}, 0.0
        if latent(config) == "vae":  # sampled codes (the mean at swap time), and their KL to N(0, I)
            out, recorded = generator.apply({"params": params}, *inputs, rngs={"latent": jax.random.fold_in(key, 1)},
                                            mutable=["losses"])
            metrics["kl"] = sum(jax.tree.leaves(recorded["losses"]))
            total += kl_weight(config, state.step) * metrics["kl"]
        else:
            out = generator.apply({"params": params}, *inputs)
        for s in self.names:
            target, maps = batch[s]["targets"], batch[s]["target_masks"]
            rec = losses.reconstruction(config, out[f"face_{s}"], target, maps, self.vgg, batch["vgg"])
            mask = losses.mask_loss(out[f"mask_{s}"], maps[..., :1])
            metrics[f"rec_{s}"], metrics[f"mask_{s}"] = rec, mask
            total += rec + config.loss.mask * mask
            if gan is not None:
                logits, _ = discriminator.apply({"params": state.d_params[s], "batch_stats": state.d_stats[s]},
                                                out[f"face_{s}"], update_stats=False, mutable=["batch_stats"])
                metrics[f"g_adv_{s}"] = gan[1](logits)
                total += config.gan.weight * metrics[f"g_adv_{s}"]
        return total, (metrics, {"out": out})

    def discriminator_loss(self, d_params, state, batch, aux):
        objective = losses.gan_losses(self.config.gan.objective)[0]
        total, stats = 0.0, {}
        for s in self.names:
            both = jnp.concatenate([batch[s]["targets"], jax.lax.stop_gradient(aux["out"][f"face_{s}"])])
            logits, new_vars = self.discriminator.apply({"params": d_params[s], "batch_stats": state.d_stats[s]},
                                                        both, update_stats=True, mutable=["batch_stats"])
            real, fake = jnp.split(logits, 2)
            total += objective(real, fake)
            stats[s] = new_vars["batch_stats"]
        return total, ({}, stats)

    # -- previews and summary

    def preview(self, state) -> np.ndarray:
        if not hasattr(self, "_previewer"):
            shown = {s: np.linspace(0, len(side.faces) - 1, 4).astype(int) for s, side in self.sides.items()}
            cond = None
            if self.window:  # previews draw each face with its own (unaugmented) maps
                plain = AugmentConfig(enabled=False)
                cond = {s: window_maps(self.data.sides[s].controls, jnp.asarray(shown[s]),
                                       target_geometry(jax.random.key(0), 4, side.faces.shape[1], plain, self.res),
                                       self.res)
                        for s, side in self.sides.items()}
            self._previewer = make_previewer(self.generator, {s: side.faces[shown[s]] for s, side in self.sides.items()},
                                             self.res, cond)
        return self._previewer(state.params)

    def images_per_step(self) -> int:
        return len(self.names) * self.config.train.batch_per_side


def load_perceptual(config, mesh):
    """The fixed VGG16 feature extractor of the perceptual and style losses, from the file the user named."""
    path = config.loss.vgg16_weights
    if not path:
        raise UserError("loss.perceptual and loss.style need VGG16 weights: --set loss.vgg16_weights=PATH (.npz or .h5).")
    try:
        weights = losses.load_vgg16_weights(path)
    except (ValueError, OSError) as exc:
        raise UserError(f"cannot use VGG16 weights {path}: {exc}; pass a Keras .h5 or an .npz of VGG16.") from None
    vgg = losses.PerceptualVGG16(preprocess=weights.preprocess, dtype=jnp.dtype(config.model.dtype))
    return vgg, jax.tree.map(lambda x: parallel.put_replicated(x, mesh), weights.params)
