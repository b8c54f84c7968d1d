"""One-shot animation with the First Order Motion Model (Siarohin et al. 2019): a photo moves as the
face in a driving video does.

Training lives in dfjax.training.animate (`dfjax train --config configs/animate.py[:tiny] --workdir W`).

`dfjax animate --model W --source PHOTO --driver VIDEO -o OUT.mp4`: the photo's face and the driver's
face are found with dlib (HOG boxes, 68 landmarks) and each gets one square crop, as in training (the
landmarks' box, over the driver's sampled frames for the video, enlarged by the model's
data.crop_scale). Keypoints and Jacobians of the source crop and of every driver crop drive the
generator. `--mode relative` (the paper's default for animation) moves the source keypoints by the
driver's displacement from its FIRST frame, Jacobians by J_d J_d0^-1 J_s, displacements scaled by
sqrt(hull area of the source keypoints / that of the first driver frame's) unless
`--no-adapt-scale`; `--mode absolute` uses the driver's keypoints as they are (identities must
then be aligned alike). Each generated crop is pasted back into the photo with a feathered edge.

The output has the driver's frame count, fps and audio, the photo's size (an odd side loses its last
pixel row or column, for H.264), and the `dfjax swap` contract: a provenance tag naming the method
("fomm") with IPTC's digital source type trainedAlgorithmicMedia, the per-frame manipulation masks
`OUT.masks.mkv` (the paste weights) and the JSON sidecar `OUT.json`; the three are renamed into place
together at the end and existing ones are refused without `overwrite`.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from dfjax import __version__, convert, media
from dfjax.errors import UserError
from dfjax.io import dumps, staged, write_text
from dfjax.models.fomm import FOMM
from dfjax.swap import MAX_CRF, check_driven_video, check_ranges, provenance
from dfjax.training.animate import crop_square, stable_crop_box
from dfjax.training.core import TrainedModel, in_padded_batches, load_trained

__all__ = ["AnimateOptions", "animate", "batched_keypoints", "generate", "relative_keypoints"]

BATCH = 16        # driver frames per jitted call (padded: one compilation)
FACE_SAMPLES = 8   # driver frames searched for the face that sets the crop
MODES = ("relative", "absolute")


@dataclass(frozen=True)
class AnimateOptions:
    mode: str = "relative"
    adapt_scale: bool = True
    crf: int = 18
    preset: str = media.DEFAULT_PRESET  # x264's speed preset (media.X264_PRESETS)
    lossless: bool = False


def check_options(options: AnimateOptions) -> None:
    if options.mode not in MODES:
        raise UserError(f"--mode {options.mode!r} is unknown; choose one of {', '.join(MODES)}.")
    media.check_preset(options.preset)
    check_ranges((options.crf, 0, MAX_CRF, "--crf"))


# ----------------------------------------------------------------------------- keypoints and motion transfer


def hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of 2-D points (K, 2)."""
    return float(cv2.contourArea(cv2.convexHull(np.asarray(points, np.float32))))


def relative_keypoints(kp_source: dict, kp_driving: dict, kp_initial: dict, adapt_scale: bool = True) -> dict:
    """Driving keypoints (B, K, ...) moved onto the source (one frame): the source's keypoints plus the
    driver's displacement from its first frame (scaled by sqrt of the hull-area ratio with `adapt_scale`),
    Jacobians J_d J_d0^-1 J_s (the paper's normalize_kp)."""
    scale = 1.0
    if adapt_scale:
        scale = float(np.sqrt(hull_area(np.asarray(kp_source["value"][0])) /
                              max(hull_area(np.asarray(kp_initial["value"][0])), 1e-12)))
    value = (kp_driving["value"] - kp_initial["value"]) * scale + kp_source["value"]
    jacobian = kp_driving["jacobian"] @ jnp.linalg.inv(kp_initial["jacobian"]) @ kp_source["jacobian"]
    return {"value": value, "jacobian": jacobian}


@partial(jax.jit, static_argnums=0)
def _keypoints(model: FOMM, params, images_u8):
    kp = model.apply({"params": params}, images_u8.astype(jnp.float32) / 255.0, method=FOMM.keypoints)
    return {"value": kp["value"], "jacobian": kp["jacobian"]}


def _prediction(model: FOMM, params, source_u8, kp_source, kp_driving):
    """Generated frames in [0, 1] (B, R, R, 3): one source (1, R, R, 3) and its keypoints (1, K, ...)
    driven by keypoints (B, K, ...)."""
    n = kp_driving["value"].shape[0]
    source = jnp.broadcast_to(source_u8.astype(jnp.float32) / 255.0, (n, *source_u8.shape[1:]))
    kp_source = jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape[1:])), kp_source)
    out = model.apply({"params": params}, source, kp_source, kp_driving, method=FOMM.animate)
    return jnp.clip(out["prediction"].astype(jnp.float32), 0, 1)


@partial(jax.jit, static_argnums=0)
def _generate_u8(model: FOMM, params, source_u8, kp_source, kp_driving):
    return jnp.round(_prediction(model, params, source_u8, kp_source, kp_driving) * 255).astype(jnp.uint8)


_generate_float = partial(jax.jit, static_argnums=0)(_prediction)


def batched_keypoints(model: TrainedModel, crops: np.ndarray) -> dict:
    """Keypoints {"value": (N, K, 2), "jacobian": (N, K, 2, 2)} of uint8 crops (N, R, R, 3)."""
    return in_padded_batches(lambda chunk: _keypoints(model.generator, model.params, jnp.asarray(chunk)), crops,
                             BATCH)


def generate(model: TrainedModel, source_u8: np.ndarray, kp_source: dict, kp_driving: dict,
             as_float: bool = False) -> np.ndarray:
    """Frames (N, R, R, 3) of one source crop (1, R, R, 3) with keypoints `kp_source` (computed once)
    driven by `kp_driving` (N, ...): uint8, or float32 in [0, 1] with `as_float`."""
    fn = _generate_float if as_float else _generate_u8
    source, kp_source = jnp.asarray(source_u8), jax.tree.map(jnp.asarray, kp_source)
    return in_padded_batches(lambda kp: fn(model.generator, model.params, source, kp_source, kp), kp_driving, BATCH)


# ----------------------------------------------------------------------------- faces and crops


def face_and_box(detector, predictor, image: np.ndarray, upsample: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """(68 landmarks, box) of the most confident face in `image`, or None. The most confident, not the
    largest: HOG's weak false hits (score < 0.1) can be larger than the real face."""
    found = detector(image, upsample=upsample)
    if not found:
        return None
    box = max(found, key=lambda d: d.score).box
    return predictor(image, box), box


def _face_landmarks(detector, predictor, image: np.ndarray, upsample: int = 0) -> np.ndarray | None:
    """The 68 landmarks of the most confident face in `image`, or None."""
    found = face_and_box(detector, predictor, image, upsample)
    return None if found is None else found[0]


def source_crop(path: Path, scale: float, detector, predictor,
                landmarks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(photo with even sides, crop box [x0, y0, side]) of the source photo; a UserError without a face.
    `landmarks`: the photo's 68 landmarks when known (no detection)."""
    image = media.read_image(path)
    image = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]
    if min(image.shape[:2]) < 16:
        raise UserError(f"source {path} is {image.shape[1]}x{image.shape[0]} pixels; pass a photo with a face "
                        "(about 40 px or larger).")
    if landmarks is None:
        landmarks = _face_landmarks(detector, predictor, image)
    if landmarks is None:  # a small face: look again at twice the size
        landmarks = _face_landmarks(detector, predictor, image, upsample=1)
    if landmarks is None:
        raise UserError(f"no face was found in source {path}; pass a photo with a face (about 40 px or larger).")
    return image, stable_crop_box(landmarks[None], scale)


def driver_crops(path: Path, info: media.VideoInfo, scale: float, res: int, detector, predictor,
                 progress=None, landmarks: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 crops (F, res, res, 3) of every driver frame, the crop box): one crop for the whole video,
    around the faces of up to FACE_SAMPLES evenly spaced frames (or around `landmarks`, the faces' 68
    landmarks when known: no detection)."""
    listed = max(info.frames, 1)
    wanted = set(np.linspace(0, listed - 1, min(FACE_SAMPLES, listed)).round().astype(int).tolist())
    sampled, count = [], 0
    for index, frame in media.iter_frames(path):
        count = index + 1
        if index in wanted:
            sampled.append(frame)
    if count == 0:
        raise UserError(f"driver {path} has no frames; pass a video with a face in it.")
    faces: list[np.ndarray] = [] if landmarks is None else list(landmarks)
    for upsample in () if faces else (0, 1):  # small faces: look again at twice the size
        faces = [lm for lm in (_face_landmarks(detector, predictor, f, upsample) for f in sampled) if lm is not None]
        if faces:
            break
    if not faces:
        raise UserError(f"no face was found in driver {path} (searched {len(wanted)} frames); drive with a "
                        "video that shows a face (about 40 px or larger).")
    box = stable_crop_box(np.stack(faces), scale)
    task = progress.add_task("driver frames", total=count) if progress else None
    crops = []
    for _, frame in media.iter_frames(path):
        crops.append(crop_square(frame, box, res))
        if progress:
            progress.advance(task)
    return np.stack(crops), box


def crop_matrix(box: np.ndarray, res: int) -> np.ndarray:
    """The 2x3 frame -> crop matrix of `crop_square(frame, box, res)` (pixel centres)."""
    x0, y0, side = (float(v) for v in box)
    s = res / side
    return np.array([[s, 0, (0.5 - x0) * s - 0.5], [0, s, (0.5 - y0) * s - 0.5]], np.float64)


# ----------------------------------------------------------------------------- the command


def animate(model_dir: str | Path, source: str | Path, driver: str | Path, output: str | Path,
            options: AnimateOptions = AnimateOptions(), *, overwrite: bool = False, progress=None,
            source_landmarks: np.ndarray | None = None, driver_landmarks: list[np.ndarray] | None = None) -> dict:
    """Animate the face of the photo `source` with the motion of the `driver` video; write OUT, its masks
    and sidecar. overwrite: replace an existing OUT, its masks and sidecar (refused otherwise).
    source_landmarks, driver_landmarks: the faces' 68 landmarks when known (a face set's), instead of
    finding them with dlib."""
    from dfjax.faces.detect import FaceDetector
    from dfjax.faces.landmarks import LandmarkPredictor

    check_options(options)
    source, driver, output = Path(source), Path(driver), Path(output)
    if not source.is_file() or not media.is_image(source):
        raise UserError(f"source {source} is not an image file; pass a photo (.jpg, .png) with a face in it.")
    masks_path, sidecar_path = check_driven_video(driver, output, overwrite)
    info = media.probe(driver)
    model = load_trained(model_dir, "animate")
    res, scale = model.resolution, float(model.config.data.crop_scale)
    detector, predictor = FaceDetector(), LandmarkPredictor()
    image, box = source_crop(source, scale, detector, predictor, source_landmarks)
    crops, driver_box = driver_crops(driver, info, scale, res, detector, predictor, progress, driver_landmarks)

    started = time.perf_counter()
    source_u8 = crop_square(image, box, res)[None]
    kp_source = batched_keypoints(model, source_u8)
    kp_driving = batched_keypoints(model, crops)
    if options.mode == "relative":
        initial = {k: v[:1] for k, v in kp_driving.items()}
        kp_driving = jax.tree.map(np.asarray, relative_keypoints(kp_source, kp_driving, initial, options.adapt_scale))

    matrix = crop_matrix(box, res)
    feather = max(1, res // 16)
    blend = convert.refine_mask(np.ones((res, res), np.float32), feather, feather)
    height, width = image.shape[:2]
    tag = {**provenance(model, "animate"), "dfjax_method": "fomm", "dfjax_source": str(source),
           "dfjax_driver": str(driver),
           "comment": f"SYNTHETIC: animated by dfjax {__version__} (First Order Motion Model; {source.name} driven "
                      f"by {driver.name}); not a real recording"}
    to_frame = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    task = progress.add_task("animate", total=len(crops)) if progress else None
    records = []
    with staged([output, masks_path, sidecar_path]) as tmp:
        with media.VideoWriter(tmp[output], info.fps, width, height, crf=options.crf, preset=options.preset,
                               lossless=options.lossless, metadata=tag, audio_from=driver) as writer, \
                media.VideoWriter(tmp[masks_path], info.fps, width, height, gray=True, metadata=tag) as mask_writer:
            for start in range(0, len(crops), BATCH):
                stop = min(start + BATCH, len(crops))
                kp = {k: v[start:stop] for k, v in kp_driving.items()}
                faces = generate(model, source_u8, kp_source, kp)
                for k, index in enumerate(range(start, stop)):
                    frame, mask = convert.paste_back(image, faces[k], blend, matrix)
                    writer.write(frame)
                    mask_writer.write(mask)
                    ys, xs = np.nonzero(mask)
                    points = (kp["value"][k] + 1) / 2 * (res - 1)
                    points = points @ to_frame[:, :2].T + to_frame[:, 2]
                    records.append({"index": index, "manipulated": bool(len(xs)),
                                    "faces": [{"box": [int(xs.min()), int(ys.min()), int(xs.max()) + 1,
                                                       int(ys.max()) + 1],
                                               "keypoints": np.round(points, 1).tolist()}] if len(xs) else []})
                    if progress:
                        progress.advance(task)
        sidecar = {"source": str(source), "driver": str(driver), "output": str(output), "masks": str(masks_path),
                   "mode": "animate", "method": "fomm",
                   "model": {"workdir": os.path.abspath(model.workdir), "step": model.step,
                             "config_hash": model.config_hash, "arch": "fomm"},
                   "source_crop": box.tolist(), "driver_crop": driver_box.tolist(), "options": asdict(options),
                   "provenance": tag, "video": info.as_dict(), "frames": records}
        write_text(tmp[sidecar_path], dumps(sidecar))
    seconds = time.perf_counter() - started
    return {"output": str(output), "masks": str(masks_path), "sidecar": str(sidecar_path), "frames": len(records),
            "frames_animated": sum(r["manipulated"] for r in records), "mode": options.mode,
            "seconds": round(seconds, 2), "frames_per_s": round(len(records) / max(seconds, 1e-9), 1)}
