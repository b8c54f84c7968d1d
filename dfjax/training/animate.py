"""The First Order Motion Model trainer: self-supervised reconstruction of one frame from another
frame of the same video.

Data: the source videos of one or two face sets (`dfjax extract` or `dfjax synth` made them; without
any, the built-in synthetic identities are rendered into the workdir). Each video gets ONE square crop
around the face for the whole clip (the landmarks' box over every frame, enlarged by data.crop_scale),
so the head moves inside a still frame as in VoxCeleb; the crops go onto the devices once as uint8,
and each step samples, inside the jitted step, a video and two of its frames by index (source,
driving), mirrored together at random.

Loss (the paper's): a perceptual loss over an image pyramid (VGG19 features from `loss.vgg19`, a local
.npz; without one an L1 pyramid, said in the log), and equivariance of the keypoints and their
Jacobians under a random affine + thin-plate-spline warp of the driving frame; optionally a multi-scale
discriminator (LSGAN) with feature matching. Everything else is the core's.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import cv2
import flax
import jax
import jax.numpy as jnp
import numpy as np

from dfjax import losses, media
from dfjax.errors import UserError
from dfjax.models.fomm import (FOMM, MultiScaleDiscriminator, downsample, fomm_from_config, kp_to_gaussian,
                               load_vgg19, random_tps, tps_frame, tps_jacobian, tps_points)
from dfjax.training import parallel
from dfjax.training.trainer import TRAINERS, Trainer, Variables

PREVIEW_ROWS = 4

# ----------------------------------------------------------------------------- stable crops of videos


def stable_crop_box(landmarks: np.ndarray, scale: float) -> np.ndarray:
    """The square crop [x0, y0, side] (integers, frame pixels) around every face of a clip: the box of
    all landmarks (F, 68, 2) of every frame, its longer side times `scale`, about the box's centre."""
    points = np.asarray(landmarks, np.float64).reshape(-1, 2)
    low, high = points.min(axis=0), points.max(axis=0)
    side = max(int(round(float((high - low).max()) * scale)), 8)
    centre = (low + high) / 2
    x0, y0 = (np.round(centre - side / 2)).astype(int)
    return np.array([x0, y0, side], np.int64)


def crop_square(frame: np.ndarray, box: np.ndarray, res: int) -> np.ndarray:
    """The crop `box` [x0, y0, side] of `frame` (edges replicated where it leaves the frame) at res x res."""
    x0, y0, side = (int(v) for v in box)
    h, w = frame.shape[:2]
    pad = [max(0, -y0), max(0, y0 + side - h), max(0, -x0), max(0, x0 + side - w)]
    if any(pad):
        frame = cv2.copyMakeBorder(frame, *pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad[2], y0 + pad[0]
    crop = frame[y0:y0 + side, x0:x0 + side]
    return cv2.resize(crop, (res, res), interpolation=cv2.INTER_AREA if side > res else cv2.INTER_CUBIC)


def faceset_clips(path: str | Path) -> list[tuple[Path, list[int], np.ndarray]]:
    """(video, frame indices with a face, landmarks (F, 68, 2)) of every source video of a face set."""
    from dfjax.data.faceset import FaceSet

    faceset = FaceSet(path)
    faceset.require("landmarks", "source", "frame")
    by_video: dict[str, list[dict]] = defaultdict(list)
    for record in faceset.meta:
        by_video[record["source"]].append(record)
    clips = []
    for source, records in by_video.items():
        if not media.is_video(source):
            continue  # a photo in the face set: no motion to learn from
        if not Path(source).is_file():
            raise UserError(f"face set {path} was extracted from {source}, which is not there any more; "
                            "put the video back or extract the face set again.")
        records = sorted({int(r["frame"]): r for r in records}.values(), key=lambda r: int(r["frame"]))
        landmarks = np.asarray([r["landmarks"] for r in records], np.float32).reshape(len(records), 68, 2)
        clips.append((Path(source), [int(r["frame"]) for r in records], landmarks))
    return clips


def load_clip(video: Path, frames: list[int], box: np.ndarray, res: int) -> np.ndarray:
    """uint8 (F, res, res, 3): the stable crop of the listed frames of `video`."""
    wanted, out = set(frames), []
    for index, frame in media.iter_frames(video, frames[0], frames[-1] + 1):
        if index in wanted:
            out.append(crop_square(frame, box, res))
    return np.stack(out) if out else np.zeros((0, res, res, 3), np.uint8)


# ----------------------------------------------------------------------------- the trainer


@flax.struct.dataclass
class Clips:
    frames: jax.Array   # uint8 (N, R, R, 3): every clip's crops, one after another
    starts: jax.Array   # int32 (V,): first frame of each clip in `frames`
    lengths: jax.Array  # int32 (V,)
    vgg: dict | None = None  # VGG19 parameters of the perceptual loss (None: L1 pyramid)


@TRAINERS.register("animate")
class AnimateTrainer(Trainer):
    name = "animate"
    noun = "motion model"
    command = "dfjax animate"
    config_file = "configs/animate.py"
    preview_caption = "animate: source, driving, driving keypoints, occlusion, generated"

    def __init__(self, config):
        super().__init__(config)
        self.vgg = None
        self.clips: list[dict] = []

    @staticmethod
    def build_models(config):
        model: FOMM = fomm_from_config(config.model)
        gan = config.gan
        discriminator = None
        if gan.enabled:
            discriminator = MultiScaleDiscriminator(tuple(gan.scales), gan.block_expansion, gan.max_features,
                                                    gan.num_blocks, gan.spectral_norm, jnp.dtype(config.model.dtype))
        return model, discriminator

    @staticmethod
    def resolution(config) -> int:
        return config.model.res

    @staticmethod
    def check_config(config) -> None:
        m = config.model
        for name, part in (("keypoints", m.keypoints), ("dense_motion", m.dense_motion)):
            inverse = 1 / part.scale
            if part.scale <= 0 or part.scale > 1 or abs(inverse - round(inverse)) > 1e-6:
                raise UserError(f"model.{name}.scale={part.scale} is impossible; give 1, 0.5, 0.25, ...")
            side = m.res * part.scale
            if side % 2 ** part.num_blocks:
                raise UserError(f"model.res={m.res} at model.{name}.scale={part.scale} does not halve "
                                f"{part.num_blocks} times (model.{name}.num_blocks); change one of them.")
        if m.res % 2 ** m.generator.num_down_blocks:
            raise UserError(f"model.res={m.res} does not halve {m.generator.num_down_blocks} times "
                            "(model.generator.num_down_blocks); change one of them.")
        from dfjax.data.synthetic import identity_names

        identity_names(int(config.data.get("synth_identities", 2)), "data.synth_identities")  # before any file
        if m.res * m.keypoints.scale <= 6 * 2:
            raise UserError(f"model.res={m.res} at model.keypoints.scale={m.keypoints.scale} leaves no room for "
                            "the 7x7 heatmap convolution; raise one of them.")
        if m.num_kp < 1:
            raise UserError(f"model.num_kp={m.num_kp} is impossible; give 1 or more keypoints.")
        for s in tuple(config.loss.scales) + (tuple(config.gan.scales) if config.gan.enabled else ()):
            if not 0 < s <= 1 or abs(1 / s - round(1 / s)) > 1e-6:
                raise UserError(f"pyramid scale {s} (loss.scales or gan.scales) is impossible; give 1, 0.5, 0.25, ...")

    def init_variables(self, key) -> Variables:
        # an "rbg" key: XLA:CPU compiles threefry's initialisers slowly
        k_g, k_d = jax.random.split(jax.random.key(self.config.seed, impl="rbg"))
        res = self.config.model.res
        image = jnp.zeros((1, res, res, 3), jnp.float32)
        params = self.generator.init(k_g, image, image)["params"]
        if self.discriminator is None:
            return Variables(params)
        d_vars = self.discriminator.init(k_d, image)
        return Variables(params, d_params=d_vars["params"], d_stats=d_vars.get("batch_stats", {}))

    # -- data

    def prepare(self, workdir: Path, mesh, progress=None) -> None:
        from dfjax.data.synthetic import identity_names
        from dfjax.data.training_set import listed_identities, synthetic_facesets

        config, res = self.config, self.config.model.res
        sets = listed_identities(config) or [p for p in (config.data.a, config.data.b) if p]
        if not sets:
            names = identity_names(int(config.data.get("synth_identities", 2)))
            sets = synthetic_facesets(workdir, config.data.synth_frames, config.data.synth_size, progress, names)
        crops, self.clips = [], []
        for path in sets:
            for video, frames, landmarks in faceset_clips(path):
                if len(frames) < 2:
                    continue
                box = stable_crop_box(landmarks, config.data.crop_scale)
                clip = load_clip(video, frames, box, res)
                if len(clip) < 2:
                    continue
                crops.append(clip)
                self.clips.append({"video": str(video), "faceset": str(path), "frames": len(crops[-1]),
                                   "crop": box.tolist()})
        if not crops:
            raise UserError(f"{' and '.join(map(str, sets))} hold no video with two or more face frames; a motion "
                            "model learns from videos: extract a face set from a video (`dfjax extract VIDEO`).")
        self.frames = np.concatenate(crops)
        lengths = np.array([len(c) for c in crops], np.int32)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int32)
        self.batch_sharding = parallel.batch_sharded(mesh)
        rep = parallel.replicated(mesh)
        self.vgg, vgg = self._load_vgg(), None
        if self.vgg is not None:
            vgg = jax.tree.map(lambda a: parallel.put_replicated(np.asarray(a), mesh), self.vgg[1])
        self.data = Clips(parallel.put_replicated(self.frames, mesh), parallel.put_replicated(starts, mesh),
                          parallel.put_replicated(lengths, mesh), vgg)
        self.data_sharding = Clips(rep, rep, rep, None if vgg is None else jax.tree.map(lambda _: rep, vgg))

    def _load_vgg(self):
        from dfjax.progress import console

        path = self.config.loss.vgg19
        if not path:
            if jax.process_index() == 0:
                console.print("animate: no VGG19 weights given (loss.vgg19); the perceptual loss is an L1 image "
                              f"pyramid at scales {tuple(self.config.loss.scales)}.", highlight=False)
            return None
        try:
            return load_vgg19(path)
        except ValueError as exc:
            raise UserError(f"{exc}; pass a VGG19 .npz with --set loss.vgg19=FILE, or leave it empty.") from None

    def compile_key(self) -> tuple:
        return (None if self.vgg is None else self.vgg[0].widths,)

    def batch_size(self) -> int:
        return self.config.train.batch

    def batch(self, key, data: Clips) -> dict:
        n = self.config.train.batch
        k_v, k_s, k_d, k_f = jax.random.split(key, 4)
        video = jax.random.randint(k_v, (n,), 0, data.lengths.shape[0])
        length, start = data.lengths[video], data.starts[video]
        first = start + jnp.floor(jax.random.uniform(k_s, (n,)) * length).astype(jnp.int32)
        second = start + jnp.floor(jax.random.uniform(k_d, (n,)) * length).astype(jnp.int32)
        first, second = (jax.lax.with_sharding_constraint(i, self.batch_sharding) for i in (first, second))
        source = jnp.take(data.frames, first, axis=0).astype(jnp.float32) / 255.0
        driving = jnp.take(data.frames, second, axis=0).astype(jnp.float32) / 255.0
        if self.config.data.flip:
            flip = jax.random.bernoulli(k_f, 0.5, (n, 1, 1, 1))
            source = jnp.where(flip, source[:, :, ::-1], source)
            driving = jnp.where(flip, driving[:, :, ::-1], driving)
        return {"source": source, "driving": driving, "vgg": data.vgg}

    # -- losses

    def perceptual(self, fake, real, vgg) -> jax.Array:
        """The pyramid loss: VGG19 features per scale when weights were given, else L1 per scale."""
        total = jnp.float32(0.0)
        for scale in self.config.loss.scales:
            a, b = downsample(fake, scale), downsample(real, scale)
            if self.vgg is None:
                total += self.config.loss.perceptual * losses.l1(a, b)
                continue
            fa, fb = (self.vgg[0].apply({"params": vgg}, x) for x in (a, b))
            for x, y in zip(fa, fb):
                total += self.config.loss.perceptual * jnp.mean(jnp.abs(x - jax.lax.stop_gradient(y)))
        return total

    def generator_loss(self, params, state, batch, key):
        config, model = self.config, self.generator
        source, driving = batch["source"], batch["driving"]
        out = model.apply({"params": params}, source, driving)
        fake = out["prediction"]
        metrics = {"perceptual" if self.vgg is not None else "l1_pyramid": self.perceptual(fake, driving, batch["vgg"])}
        total = metrics.get("perceptual", metrics.get("l1_pyramid"))
        loss = config.loss
        if loss.equivariance_value or loss.equivariance_jacobian:
            t = config.transform
            tps = random_tps(jax.random.fold_in(key, 1), driving.shape[0], t.sigma_affine, t.sigma_tps, t.points_tps)
            kp_t = model.apply({"params": params}, tps_frame(tps, driving), method=FOMM.keypoints)
            kp_d = out["kp_driving"]
            metrics["equivariance_value"] = jnp.mean(jnp.abs(kp_d["value"] - tps_points(tps, kp_t["value"])))
            total += loss.equivariance_value * metrics["equivariance_value"]
            if config.model.estimate_jacobian and loss.equivariance_jacobian:
                warped = tps_jacobian(tps, kp_t["value"]) @ kp_t["jacobian"]
                product = jnp.linalg.inv(kp_d["jacobian"]) @ warped
                metrics["equivariance_jacobian"] = jnp.mean(jnp.abs(jnp.eye(2) - product))
                total += loss.equivariance_jacobian * metrics["equivariance_jacobian"]
        if self.discriminator is not None:
            g_loss = losses.gan_losses(config.gan.objective)[1]
            d_vars = {"params": state.d_params, "batch_stats": state.d_stats}
            fake_out, _ = self.discriminator.apply(d_vars, fake, update_stats=False, mutable=["batch_stats"])
            real_out, _ = self.discriminator.apply(d_vars, driving, update_stats=False, mutable=["batch_stats"])
            metrics["g_adv"] = sum(g_loss(fake_out[s][1]) for s in fake_out)
            metrics["feature_matching"] = sum(jnp.mean(jnp.abs(a - jax.lax.stop_gradient(b)))
                                              for s in fake_out for a, b in zip(fake_out[s][0], real_out[s][0]))
            total += config.gan.weight * metrics["g_adv"] + config.gan.feature_matching * metrics["feature_matching"]
        return total, (metrics, {"fake": fake})

    def discriminator_loss(self, d_params, state, batch, aux):
        both = jnp.concatenate([batch["driving"], jax.lax.stop_gradient(aux["fake"])])
        out, new_vars = self.discriminator.apply({"params": d_params, "batch_stats": state.d_stats}, both,
                                                 update_stats=True, mutable=["batch_stats"])
        d_loss = losses.gan_losses(self.config.gan.objective)[0]
        total = sum(d_loss(*jnp.split(logits, 2)) for _, logits in out.values())
        return total, ({}, new_vars.get("batch_stats", {}))

    # -- previews

    def preview(self, state) -> np.ndarray:
        """Per row: source | driving | driving with its keypoints | occlusion | generated (EMA weights)."""
        if not hasattr(self, "_preview"):
            lengths = [c["frames"] for c in self.clips]
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            rows = [(v % len(lengths), (v // len(lengths) + 1) * lengths[v % len(lengths)] // (PREVIEW_ROWS + 1))
                    for v in range(PREVIEW_ROWS)]
            source = jnp.asarray(self.frames[[starts[v] for v, _ in rows]], jnp.float32) / 255.0
            driving = jnp.asarray(self.frames[[starts[v] + i for v, i in rows]], jnp.float32) / 255.0
            model = self.generator

            @jax.jit
            def run(params):
                out = model.apply({"params": params}, source, driving)
                marked = draw_keypoints(driving, out["kp_driving"]["value"])
                occlusion = out.get("occlusion", jnp.ones_like(out["deformation"][..., :1]))
                occlusion = jnp.repeat(jax.image.resize(occlusion, (*driving.shape[:3], 1), "bilinear"), 3, -1)
                return jnp.concatenate([source, driving, marked, occlusion, out["prediction"]], axis=2)

            self._preview = run
        rows = np.asarray(jax.device_get(self._preview(state.ema)), np.float32)
        image = (np.clip(np.concatenate(list(rows), axis=0), 0, 1) * 255).round().astype(np.uint8)
        scale = max(1, 128 // rows.shape[1])
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)

    def summary(self) -> dict:
        return {"videos": len(self.clips), "frames": int(sum(c["frames"] for c in self.clips)),
                "perceptual": "vgg19" if self.vgg is not None else "l1 pyramid"}


PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]], np.float32) / 255.0


def draw_keypoints(images: jax.Array, kp: jax.Array) -> jax.Array:
    """`images` (B, H, W, 3) in [0, 1] with a coloured dot at each keypoint (B, K, 2) in [-1, 1]."""
    _, h, w, _ = images.shape
    radius = 2.5 * 2 / max(h - 1, 1)  # about 2.5 pixels
    blobs = kp_to_gaussian(kp, h, w, radius ** 2 / 2)                                     # (B, H, W, K)
    colours = jnp.asarray(PALETTE[np.arange(kp.shape[1]) % len(PALETTE)])
    alpha = jnp.clip(blobs.max(-1, keepdims=True) * 1.5, 0, 1)
    colour = jnp.einsum("bhwk,kc->bhwc", blobs, colours) / (blobs.sum(-1, keepdims=True) + 1e-6)
    return images * (1 - alpha) + colour * alpha
