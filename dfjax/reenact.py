"""Reenactment after Deep Video Portraits (Kim et al. 2018): one target person, driven by another's face.

Training lives in dfjax.reenact_train (`dfjax train --config configs/reenact.py[:tiny] --a
TARGET_FACESET --workdir W`): a conditional U-Net learns to reproduce the target's aligned faces from
their own conditioning maps (dfjax.models.conditioning) over a causal window, with L1 + PatchGAN.

Driving (`dfjax reenact --model W --driver VIDEO -o OUT.mp4`): the driver's faces are found with
the face pipeline (dfjax.faces.pipeline: dlib landmarks, head pose, gaze, blinks, as `dfjax extract`
and `dfjax swap` find them), retargeted onto the target (dfjax.faces.retarget: expression as offsets
from each identity's neutral landmarks scaled by inter-ocular distance, pose relative to each
identity's reference pose, gaze and blinks copied), rendered to maps, and turned into the target's face.

Where the generated face goes: DVP re-renders the target's whole video. dfjax pastes every
generated face into ONE still frame of the target, its reference frame (the training frame whose
landmarks are nearest the target's neutral face and pose; saved in the workdir as target.npz when
training starts, so inference needs neither the face set nor the target's video), at that frame's
face position. The output is the target's own picture with the driver's head rotation, expression,
gaze and blinks, and nothing else moves; cycling through the target's footage instead would paste
faces onto heads that turn on their own, with seams where the two poses disagree. In-plane head
motion (translation, scale, roll) is removed by the alignment and is not transferred. The blend mask is
the union of the generated and the reference face's landmark hulls (with forehead), feathered: when
the driven head turns away from the reference frame's, the generator's own background fills the side
the face left (the generated face alone would leave the reference face's eye and cheek showing
beside it). A driver frame without a face gives the reference frame unchanged (not manipulated).

The output keeps the driver's frame count, fps and audio, and the `dfjax swap` contract holds: a
provenance tag in the container metadata (with IPTC's digital source type trainedAlgorithmicMedia), the
lossless per-frame manipulation masks `OUT.masks.mkv` and the JSON sidecar `OUT.json` saying which
frames are fake; the three are renamed into place together at the end, and existing ones are refused
without `overwrite`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from dfjax import __version__, convert, media
from dfjax.config import load_config
from dfjax.errors import UserError
from dfjax.faces.align import resize_matrix, transform_points
from dfjax.faces.masks import landmark_mask
from dfjax.faces.smooth import check_smoothing
from dfjax.faces.retarget import Controls, Reference, controls_from_meta, reference_of, retarget
from dfjax.faces.server import start_face_worker_server
from dfjax.io import dumps, staged, write_text
from dfjax.models.conditioning import stack_window, window_indices
from dfjax.data.reenact_target import load_target, render_all
from dfjax.training.core import TrainedModel, in_padded_batches, load_trained, train
from dfjax.swap import MAX_CRF, check_driven_video, check_ranges, provenance

__all__ = ["ReenactOptions", "Reenactor", "demo_reenact", "load_reenactor", "reenact", "self_reenactment"]

BATCH = 32  # inference batch (padded: one compilation)


@dataclass(frozen=True)
class ReenactOptions:
    crf: int = 18
    preset: str = media.DEFAULT_PRESET  # x264's speed preset (media.X264_PRESETS)
    lossless: bool = False
    every_n: int = 10
    workers: int = 0
    smoothing: str = "one-euro"  # landmarks over time: one-euro | kalman | none (dfjax.faces.smooth)


def check_options(options: ReenactOptions) -> None:
    """A UserError naming the first option of `options` out of its range."""
    check_smoothing(options.smoothing)
    media.check_preset(options.preset)
    check_ranges((options.crf, 0, MAX_CRF, "--crf"), (options.every_n, 1, None, "--every-n"),
                 (options.workers, 0, None, "--workers"))


@dataclass
class Reenactor:
    """A trained reenactor: generator and EMA parameters, the target's reference and reference frame."""

    model: TrainedModel
    reference: Reference      # in model-resolution crop pixels
    frame: np.ndarray         # the target's reference frame (RGB)
    matrix: np.ndarray        # its frame -> crop matrix at the model's resolution
    info: dict

    @property
    def res(self) -> int:
        return self.model.resolution

    def generate(self, controls: Controls, frames: np.ndarray | None = None) -> np.ndarray:
        """uint8 faces (N, R, R, 3) for per-frame controls in crop pixels at the model's resolution.

        frames: the video frame number of each control, so causal windows stop at gaps (default: consecutive).
        """
        n = len(controls.landmarks)
        frames = np.arange(n) if frames is None else np.asarray(frames)
        windows = window_indices(frames, np.zeros(n, int), self.model.config.model.cond_window)
        return self.faces_from_maps(render_all(controls, self.res), windows)

    def faces_from_maps(self, maps: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """uint8 faces (B, R, R, 3) for uint8 maps (N, R, R, C_MAPS) and the windows (B, window) into them."""
        model = self.model
        return in_padded_batches(lambda chunk: _infer(model.generator, model.params, jnp.asarray(maps[chunk]),
                                                      model.config.model.cond_window), windows, BATCH)

    def composite(self, face: np.ndarray, landmarks: np.ndarray, frame: np.ndarray | None = None,
                  matrix: np.ndarray | None = None, frame_landmarks: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """The reference frame with a generated face (crop landmarks `landmarks`) pasted in; and its mask.

        frame, matrix, frame_landmarks: paste into another still `frame` instead, at `matrix` (frame -> crop at
        the model's resolution), covering that frame's own face (its 68 landmarks in frame pixels, or None)."""
        size = self.res
        if frame is None:
            frame, matrix, frame_landmarks = self.frame, self.matrix, self.info["frame_landmarks"]
        mask = landmark_mask(landmarks, size, size, "extended")
        if frame_landmarks is not None:
            own = transform_points(frame_landmarks, matrix)
            mask = np.maximum(mask, landmark_mask(own, size, size, "extended"))
        mask = convert.refine_mask(mask.astype(np.float32) / 255.0, 0, max(1, size // 32))
        return convert.paste_back(frame, face, mask, np.asarray(matrix, np.float64))


@partial(jax.jit, static_argnums=(0, 3))
def _infer(generator, params, maps_window_u8, window):
    cond = stack_window(maps_window_u8.astype(jnp.float32) / 255.0, window)
    return jnp.round(jnp.clip(generator.apply({"params": params}, cond), 0, 1) * 255).astype(jnp.uint8)


def load_reenactor(workdir: str | Path) -> Reenactor:
    """The latest checkpoint (EMA weights) of a reenactment workdir, with its target's reference."""
    workdir = Path(workdir)
    model = load_trained(workdir, "reenact")
    config = model.config
    if not (workdir / "target.npz").exists():
        raise UserError(f"{workdir} has no target.npz; train it again with `dfjax train --workdir {workdir}`.")
    with np.load(workdir / "target.npz") as target:
        info = json.loads(str(target["info"]))
        scale = config.model.res / info["faceset_size"]
        reference = Reference(target["neutral"], float(target["iod"]), target["pose"])
        frame, matrix = target["frame"], resize_matrix(target["matrix"], scale)
        info["frame_landmarks"] = target["landmarks"]
    return Reenactor(model, reference, frame, matrix, info)


# ----------------------------------------------------------------------------- driving with a video


def driver_finder(reenactor: Reenactor, options: ReenactOptions):
    """The face pipeline's settings for a driver video: the target's crop, the reenact options' tracking."""
    from dfjax.faces.pipeline import ExtractOptions

    return ExtractOptions(size=reenactor.res, face_type=reenactor.info["face_type"],
                          coverage=reenactor.info["coverage"], every_n=options.every_n, workers=options.workers,
                          smoothing=options.smoothing)


def find_driver_faces(reenactor: Reenactor, driver: Path, info: media.VideoInfo, options: ReenactOptions,
                  progress=None) -> list[dict | None]:
    """The extraction record of the face in every driver frame (None where there is none)."""
    from dfjax.faces.pipeline import face_finders, video_faces

    finder = driver_finder(reenactor, options)
    task = progress.add_task("driver faces", total=info.frames) if progress else None
    metas = []
    with face_finders(finder, None) as (pool, workers):
        for _, _, found in video_faces(pool, workers, driver, info):
            metas.append(found[0][2] if found else None)
            if progress:
                progress.advance(task)
    return metas


def _stored_driver_faces(reenactor: Reenactor, driver: Path, faces: Path, frames: int) -> list[dict | None]:
    """The driver's faces from a face set that `dfjax extract` (or `dfjax synth`) made of it, re-aligned
    to the target's crop; matched by source path, then by file name."""
    from dfjax.data.faceset import FaceSet
    from dfjax.faces.align import alignment_matrix

    faceset = FaceSet(faces)
    faceset.require("landmarks", "pose", "gaze")
    records = faceset.meta
    for same in (lambda m: Path(m.get("source", "")).resolve() == driver.resolve(),
                 lambda m: Path(m.get("source", "")).name == driver.name):
        mine = [m for m in records if same(m) and 0 <= int(m.get("frame", -1)) < frames]
        if mine:
            break
    else:
        raise UserError(f"{faces} holds no faces of {driver}; pass the face set extracted from that video, "
                        "or leave out --driver-faces to find faces live.")
    metas: list[dict | None] = [None] * frames
    for m in mine:
        matrix = alignment_matrix(np.asarray(m["landmarks"], np.float64).reshape(68, 2), reenactor.res,
                                  reenactor.info["face_type"], reenactor.info["coverage"])
        metas[int(m["frame"])] = {**m, "matrix": matrix}
    return metas


def reenact(model_dir: str | Path, driver: str | Path, output: str | Path, options: ReenactOptions = ReenactOptions(),
            *, driver_faces: str | Path | None = None, overwrite: bool = False, progress=None) -> dict:
    """Drive the target of `model_dir` with the faces of the `driver` video; write OUT, its masks and sidecar.

    driver_faces: a face set extracted from the driver video, to reuse its faces instead of finding them live.
    overwrite: replace an existing OUT, its masks and sidecar (refused otherwise).
    """
    from dfjax.data.faceset import FaceSet

    check_options(options)
    driver, output = Path(driver), Path(output)
    masks_path, sidecar_path = check_driven_video(driver, output, overwrite)
    info = media.probe(driver)
    if driver_faces is not None:
        FaceSet(driver_faces).require("landmarks", "pose", "gaze")  # refused before the model loads
    else:
        start_face_worker_server()  # if the command has not: it loads dlib's models while the model loads
    reenactor = load_reenactor(model_dir)
    if driver_faces is not None:
        metas = _stored_driver_faces(reenactor, driver, Path(driver_faces), info.frames)
    else:
        metas = find_driver_faces(reenactor, driver, info, options, progress)
    found = [i for i, m in enumerate(metas) if m is not None]
    if not found:
        raise UserError(f"no face was found in any frame of {driver}; drive with a video that shows a face "
                        "(about 40 px or larger).")
    controls = controls_from_meta([metas[i] for i in found])
    driven = retarget(*controls, reference_of(controls.landmarks, controls.pose), reenactor.reference)
    faces = reenactor.generate(driven, np.asarray(found))
    tag = {**provenance(reenactor.model, "reenact"), "dfjax_driver": str(driver),
           "comment": f"SYNTHETIC: reenacted by dfjax {__version__} (target driven by {driver.name}); "
                      "not a real recording"}
    height, width = reenactor.frame.shape[:2]
    by_frame = dict(zip(found, range(len(found))))
    records, started = [], time.perf_counter()
    with staged([output, masks_path, sidecar_path]) as tmp:
        with media.VideoWriter(tmp[output], info.fps, width, height, crf=options.crf, preset=options.preset,
                               lossless=options.lossless, metadata=tag, audio_from=driver) as writer, \
                media.VideoWriter(tmp[masks_path], info.fps, width, height, gray=True, metadata=tag) as mask_writer, \
                media.BackgroundWriter(writer, mask_writer) as write:  # encoding overlaps the pasting
            for index in range(len(metas)):
                frame, mask, faces_out = reenactor.frame, np.zeros((height, width), np.uint8), []
                if index in by_frame:
                    k = by_frame[index]
                    frame, mask = reenactor.composite(faces[k], driven.landmarks[k])
                    ys, xs = np.nonzero(mask)
                    faces_out = [{"box": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
                                  "driver_box": [round(float(v), 1) for v in metas[index]["box"]]}] if len(xs) else []
                write(frame, mask)
                records.append({"index": index, "manipulated": bool(faces_out), "faces": faces_out})
        model = reenactor.model
        sidecar = {"driver": str(driver), "output": str(output), "masks": str(masks_path), "mode": "reenact",
                   "model": {"workdir": os.path.abspath(model.workdir), "step": model.step,
                             "config_hash": model.config_hash, "arch": "unet"},
                   "target": {k: reenactor.info[k] for k in ("faceset", "source", "source_frame")},
                   "options": asdict(options), "provenance": tag, "video": info.as_dict(), "frames": records}
        write_text(tmp[sidecar_path], dumps(sidecar))
    seconds = time.perf_counter() - started
    manipulated = sum(r["manipulated"] for r in records)
    return {"output": str(output), "masks": str(masks_path), "sidecar": str(sidecar_path), "frames": len(records),
            "frames_reenacted": manipulated, "frames_without_driver_face": len(records) - manipulated,
            "seconds_writing": round(seconds, 2)}


# ----------------------------------------------------------------------------- evaluation and demo


def self_reenactment(model_dir: str | Path, size: int = 256) -> dict:
    """Reenact the target's held-out frames (data.holdout) from their own maps and score them against
    the real frames (dfjax.metrics.self_reenactment_scores), beside a mean-training-frame baseline.

    Returns the figures under "scores" and "mean_frame_baseline", and the uint8 crops compared under
    "outputs" and "truths" (frames_held_out, R, R, 3).
    """
    from dfjax.metrics import pixel_fidelity, self_reenactment_scores

    reenactor = load_reenactor(model_dir)
    config = reenactor.model.config
    target = load_target(reenactor.info["faceset"], config.model.res, config.model.cond_window, config.data.holdout)
    held = np.arange(target.n_train, len(target.faces))
    if len(held) == 0:
        raise UserError(f"{model_dir} was trained on every face (data.holdout=0); train with "
                        "--set data.holdout=0.2 to keep frames for self-reenactment.")
    outputs = reenactor.faces_from_maps(render_all(target.controls, config.model.res), target.windows[held])
    truths, landmarks = target.faces[held], target.controls.landmarks[held]
    mean_frame = np.round(target.faces[:target.n_train].mean(0)).astype(np.uint8)
    scores = self_reenactment_scores(outputs, truths, landmarks, size)
    hulls = np.stack([landmark_mask(p, truths.shape[2], truths.shape[1], "hull") > 0 for p in landmarks])
    return {"target": target.path, "frames_held_out": len(held), "resolution": config.model.res,
            "step": reenactor.model.step, "scores": scores,
            "mean_frame_baseline": pixel_fidelity(np.repeat(mean_frame[None], len(held), 0), truths, hulls),
            "outputs": outputs, "truths": truths}


def _side_by_side(left: Path, right: Path, output: Path, tag: dict) -> int:
    """Write left | right frame by frame (both resized to the left's height); returns the frame count."""
    info = media.probe(left)
    right_info = media.probe(right)
    width = info.width + 2 * round(right_info.width * info.height / right_info.height / 2)
    count = 0
    with media.VideoWriter(output, info.fps, width, info.height, metadata=tag, audio_from=left) as writer:
        for (_, a), (_, b) in zip(media.iter_frames(left), media.iter_frames(right)):
            b = cv2.resize(b, (width - info.width, info.height), interpolation=cv2.INTER_AREA)
            writer.write(np.concatenate([a, b], axis=1))
            count += 1
    return count


def demo_reenact(synth_dir: str | Path, output: str | Path, progress=None, steps: int = 400) -> dict:
    """Train the tiny reenactor on synthetic identity A (last 20 % held out), score self-reenactment on
    A's held-out frames, drive A with identity B's video, and write driver | reenacted side by side."""
    from dfjax.metrics import control_error, save_report

    synth_dir, output = Path(synth_dir), Path(output)
    facesets, videos = synth_dir / "facesets", synth_dir / "videos"
    workdir = output / "reenact_train"
    shutil.rmtree(workdir, ignore_errors=True)  # a demo always starts from scratch
    config = load_config("reenact.py:tiny", [f"data.a='{facesets / 'a'}'", "data.holdout=0.2", f"train.steps={steps}",
                                             "log.preview_every=300", "log.checkpoint_every=1000"])
    trained = train(config, workdir, progress=progress)
    held = self_reenactment(workdir)
    out_dir = output / "reenact"
    driven = reenact(workdir, videos / "b.mp4", out_dir / "b_drives_a.mp4", driver_faces=facesets / "b",
                     overwrite=True, progress=progress)
    # control accuracy across identities: B's own controls (exact, from its face set) drive A
    reenactor = load_reenactor(workdir)
    driver = load_target(facesets / "b", reenactor.res, config.model.cond_window)
    moved = retarget(*driver.controls, driver.reference, reenactor.reference)
    cross = control_error(reenactor.generate(moved), moved.landmarks, driver.faces, driver.controls.landmarks,
                          relative_pose=True)
    tag = {**provenance(reenactor.model, "reenact"), "comment": f"SYNTHETIC: driver | reenacted by dfjax {__version__}"}
    clip = out_dir / "driver_vs_reenacted.mp4"
    frames = _side_by_side(videos / "b.mp4", Path(driven["output"]), clip, tag)
    figures = {"self_reenactment": held["scores"], "mean_frame_baseline": held["mean_frame_baseline"],
               "cross_identity_control": cross, "train": trained}
    save_report(figures, out_dir / "reenact.metrics.json")
    s = held["scores"]
    return {"reenactor": f"{workdir} ({trained['step']} steps, {trained['images_per_s']} images/s)",
            "reenactor preview (maps, eyes, generated, real)": trained["preview"],
            "self-reenactment (A, held-out frames)":
                f"L1 {s['l1']:.3f}, PSNR {s['psnr']:.2f} dB (face {s['face_psnr']:.2f}), SSIM {s['ssim']:.3f}, "
                f"AKD {s['akd_px']:.2f} px @256 (mean-frame baseline PSNR {held['mean_frame_baseline']['psnr']:.2f} dB, "
                f"face {held['mean_frame_baseline']['face_psnr']:.2f})",
            "self-reenactment control error": f"yaw {s['pose_error_deg']['yaw']['median']:.1f}, pitch "
                f"{s['pose_error_deg']['pitch']['median']:.1f}, gaze yaw {s['gaze_error_deg']['yaw']['median']:.1f}, "
                f"gaze pitch {s['gaze_error_deg']['pitch']['median']:.1f} degrees (medians)",
            "B drives A: control error": f"yaw {cross['pose_error_deg']['yaw']['median']:.1f}, pitch "
                f"{cross['pose_error_deg']['pitch']['median']:.1f}, gaze yaw "
                f"{cross['gaze_error_deg']['yaw']['median']:.1f} degrees (medians)",
            "reenacted video (B drives A)": f"{driven['output']} ({driven['frames_reenacted']} of {driven['frames']} "
                                            "frames), masks and sidecar beside it",
            "driver | reenacted": f"{clip} ({frames} frames)",
            "metrics": str(out_dir / "reenact.metrics.json")}
