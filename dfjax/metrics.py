"""How good is a swap? Identity, pose, expression, gaze, jitter and pixel fidelity of a swapped video.

A swap should carry the target's identity while keeping everything else of the source frame: head
pose, expression, gaze, smooth motion. `evaluate_swap` follows the face through the source and the
swapped video side by side (one decode pass each, the same FaceTracker for both) and compares them
frame by frame; against the synthetic ground-truth swap it also gives PSNR and SSIM.

    report = evaluate_swap("a.mp4", "a_as_b.mp4", target_faces="facesets/b")
    print(format_table(report)); save_report(report, "a_as_b.metrics.json")

Landmarks are the tracker's raw ones (smoothing off), so jitter the swap adds is measured, not hidden.
"""

from __future__ import annotations

import functools
import math
from itertools import zip_longest
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dfjax import media
from dfjax.data.faceset import FaceSet
from dfjax.errors import UserError
from dfjax.faces.align import resize_points, transform_points
from dfjax.faces.detect import FaceDetector
from dfjax.faces.gaze import estimate_gaze
from dfjax.faces.identity import SAME_PERSON_DISTANCE, FaceEncoder
from dfjax.faces.landmarks import LandmarkPredictor, box_from_landmarks
from dfjax.faces.masks import landmark_mask
from dfjax.faces.pose import estimate_pose
from dfjax.faces.quality import inter_ocular_distance
from dfjax.faces.track import FaceTracker
from dfjax.io import write_json

FACESET_SAMPLES = 32    # aligned faces averaged into an identity descriptor
IDENTITY_FRAMES = 32    # frames given descriptors: dlib's ResNet takes about 0.15 s a face on a CPU core
SMALL_FRAME = 320       # frames whose long side is at most this are detected with one upsampling


@functools.lru_cache(maxsize=1)
def _models() -> tuple[LandmarkPredictor, FaceEncoder]:
    """dlib's landmark and descriptor networks, loaded once per process (about a second)."""
    return LandmarkPredictor(), FaceEncoder()


def faceset_descriptor(path: str | Path, encoder: FaceEncoder, predictor: LandmarkPredictor,
                       limit: int = FACESET_SAMPLES) -> np.ndarray:
    """Mean dlib descriptor of up to `limit` evenly spaced faces of a face set.

    The stored landmarks are mapped into the crop only to place the box; landmarks are then
    predicted in the crop, as they are in the videos, so both sides of a distance are measured
    the same way. The crop is padded by replicating its border because dlib's descriptor chip
    reaches past a "face" crop, and black corners pulled descriptors away from the same face in
    a video (measured on the synthetic identities).
    """
    faces = FaceSet(path)
    if len(faces) == 0:
        raise UserError(f"{path} holds no faces; extract faces of that identity into it first.")
    pad = faces.size // 2
    descriptors = []
    for i in np.unique(np.linspace(0, len(faces) - 1, min(limit, len(faces))).round().astype(int)):
        crop = cv2.copyMakeBorder(np.ascontiguousarray(faces.faces[i]), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        try:
            points = transform_points(faces.meta[i]["landmarks"], faces.meta[i]["matrix"]) + pad
        except KeyError:
            raise UserError(f"{path}/meta.jsonl lacks landmarks or matrix for face {i}; extract it again.") from None
        box = box_from_landmarks(points.astype(np.float32))
        descriptors.append(encoder(crop, predictor(crop, box), box))
    return np.mean(descriptors, axis=0)


def procrustes_error(reference: np.ndarray, moved: np.ndarray) -> float:
    """Mean point distance after the best similarity fit of `moved` onto `reference`, over inter-ocular distance.

    Removing rotation, scale and translation leaves what differs in shape: expression, mouth, eyes.
    The least-squares 2-D similarity is closed-form with points as complex numbers: y ~ a x + b.
    """
    x = moved[:, 0] - moved[:, 0].mean() + 1j * (moved[:, 1] - moved[:, 1].mean())
    y = reference[:, 0] - reference[:, 0].mean() + 1j * (reference[:, 1] - reference[:, 1].mean())
    a = np.vdot(x, y) / max(np.vdot(x, x).real, 1e-12)
    return float(np.abs(a * x - y).mean() / max(inter_ocular_distance(reference), 1e-6))


def _stats(values: list[float]) -> dict:
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return {"median": math.nan, "mean": math.nan}
    return {"median": float(np.median(values)), "mean": float(np.mean(values))}


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan


def _check_videos(source: Path, swapped: Path, truth: Path | None) -> media.VideoInfo:
    """Same size and frame count for every video, or a UserError saying which file differs."""
    info = media.probe(source)
    for path in (swapped, truth):
        if path is None:
            continue
        other = media.probe(path)
        if (other.width, other.height) != (info.width, info.height):
            raise UserError(f"{path} is {other.width}x{other.height} but {source} is {info.width}x{info.height}; "
                            "compare a swap with the video it was made from.")
        if other.frames and info.frames and other.frames != info.frames:
            raise UserError(f"{path} has {other.frames} frames but {source} has {info.frames}; "
                            "compare a swap with the video it was made from (same frames).")
    return info


def _frames_together(paths: list[Path | None], max_frames: int | None) -> Iterator[tuple[int, list]]:
    """Yield (index, [frame per path or None]) decoding all videos in step; uneven ends are a UserError."""
    streams = [media.iter_frames(p, stop=max_frames) if p is not None else iter(()) for p in paths]
    for index, frames in enumerate(zip_longest(*streams)):
        ended = [p for p, item in zip(paths, frames) if p is not None and item is None]
        if ended:
            longer = next(p for p, item in zip(paths, frames) if item is not None)
            raise UserError(f"{ended[0]} has {index} frames but {longer} has more; "
                            "compare a swap with the video it was made from (same frames).")
        yield index, [item[1] if item is not None else None for item in frames]


def evaluate_swap(source_video: str | Path, swapped_video: str | Path, *, target_faces: str | Path | None = None,
                  source_faces: str | Path | None = None, truth_video: str | Path | None = None,
                  max_frames: int | None = None, identity_frames: int = IDENTITY_FRAMES, progress=None) -> dict:
    """Score `swapped_video` against the `source_video` it was made from (see the module docstring).

    target_faces / source_faces: face-set folders of the identities (source defaults to the source
    video's own faces). truth_video: the exact ground-truth swap, for PSNR/SSIM. identity_frames: about
    how many evenly spaced frames get descriptors (the slow part); every other metric uses every frame
    with a face in both videos. progress: a rich Progress (or None). Returns a plain dict (NaN where
    a metric had no frames, inf PSNR for identical frames; save_report writes both as null); angles in degrees, landmark errors and jitter in inter-ocular distances, identity in dlib
    descriptor distance (under SAME_PERSON_DISTANCE means the same person).
    """
    if max_frames is not None and max_frames < 1:
        raise UserError(f"--max-frames {max_frames} is out of range; give 1 or more, or leave it out for every frame.")
    source, swapped = Path(source_video), Path(swapped_video)
    truth = Path(truth_video) if truth_video is not None else None
    info = _check_videos(source, swapped, truth)
    total = min(info.frames, max_frames) if max_frames else info.frames
    detector = FaceDetector(upsample=1 if max(info.width, info.height) <= SMALL_FRAME else 0)
    predictor, encoder = _models()
    trackers = [FaceTracker(detector, predictor, fps=float(info.fps), smoothing=False) for _ in range(2)]
    target_mean = faceset_descriptor(target_faces, encoder, predictor) if target_faces is not None else None
    source_mean = faceset_descriptor(source_faces, encoder, predictor) if source_faces is not None else None
    stride = max(1, math.ceil(total / max(1, identity_frames)))
    task = progress.add_task("evaluate", total=total) if progress else None

    frames = both = no_source = no_swapped = next_identity = 0
    source_descriptors, swapped_descriptors = [], []
    pose_err: dict[str, list[float]] = {"yaw": [], "pitch": [], "roll": []}
    landmark_err, gaze_pitch, gaze_yaw = [], [], []
    motion: dict[str, list[float]] = {"source": [], "swapped": []}
    pixels: dict[str, list[float]] = {"psnr": [], "ssim": [], "face_psnr": [], "face_ssim": []}
    previous: tuple[int, np.ndarray, np.ndarray] | None = None
    for index, (src_frame, swp_frame, truth_frame) in _frames_together([source, swapped, truth], max_frames):
        frames += 1
        if progress:
            progress.advance(task)
        src_face, _ = trackers[0](src_frame, index)
        swp_face, _ = trackers[1](swp_frame, index)
        no_source += src_face is None
        no_swapped += swp_face is None
        if truth_frame is not None:
            with np.errstate(divide="ignore"):  # identical frames: PSNR is +inf, which is the answer
                pixels["psnr"].append(peak_signal_noise_ratio(truth_frame, swp_frame, data_range=255))
            pixels["ssim"].append(structural_similarity(truth_frame, swp_frame, channel_axis=2, data_range=255))
            if src_face is not None:
                x0, y0 = np.maximum(np.floor(src_face.box[:2]).astype(int), 0)
                x1, y1 = np.ceil(src_face.box[2:]).astype(int)
                if x1 - x0 >= 7 and y1 - y0 >= 7:
                    a, b = truth_frame[y0:y1, x0:x1], swp_frame[y0:y1, x0:x1]
                    with np.errstate(divide="ignore"):
                        pixels["face_psnr"].append(peak_signal_noise_ratio(a, b, data_range=255))
                    pixels["face_ssim"].append(structural_similarity(a, b, channel_axis=2, data_range=255))
        if src_face is None or swp_face is None:
            previous = None
            continue
        src_lm, swp_lm = src_face.landmarks.astype(np.float64), swp_face.landmarks.astype(np.float64)
        both += 1
        if index >= next_identity:  # the first face at or after each stride mark
            next_identity = index + stride
            if source_mean is None:
                source_descriptors.append(encoder(src_frame, src_face.landmarks, src_face.box))
            swapped_descriptors.append(encoder(swp_frame, swp_face.landmarks, swp_face.box))
        src_pose = estimate_pose(src_lm, info.width, info.height)
        swp_pose = estimate_pose(swp_lm, info.width, info.height)
        for name in pose_err:
            pose_err[name].append(abs(getattr(src_pose, name) - getattr(swp_pose, name)))
        landmark_err.append(procrustes_error(src_lm, swp_lm))
        src_gaze, swp_gaze = estimate_gaze(src_frame, src_lm), estimate_gaze(swp_frame, swp_lm)
        if not (src_gaze.blink or swp_gaze.blink or math.isnan(src_gaze.pitch) or math.isnan(swp_gaze.pitch)):
            gaze_pitch.append(abs(src_gaze.pitch - swp_gaze.pitch))
            gaze_yaw.append(abs(src_gaze.yaw - swp_gaze.yaw))
        if previous is not None and previous[0] == index - 1:
            for name, now, before in (("source", src_lm, previous[1]), ("swapped", swp_lm, previous[2])):
                motion[name].append(float(np.linalg.norm(now - before, axis=1).mean()) / max(inter_ocular_distance(now), 1e-6))
        previous = (index, src_lm, swp_lm)

    if both == 0:
        missing = source if no_source == frames else swapped
        raise UserError(f"no face was found in both {source} and {swapped} on any frame (none at all in {missing}); "
                        "check that the videos show a face large enough to detect (about 40 px or more).")
    if source_mean is None:
        source_mean = np.mean(source_descriptors, axis=0)
    swapped_descriptors = np.asarray(swapped_descriptors)
    to_source = np.linalg.norm(swapped_descriptors - source_mean, axis=1)
    identity = {"to_source_median": float(np.median(to_source)), "same_person_distance": SAME_PERSON_DISTANCE,
                "to_target_median": None, "nearer_target_share": None, "target_to_source": None}
    if target_mean is not None:
        to_target = np.linalg.norm(swapped_descriptors - target_mean, axis=1)
        identity.update(to_target_median=float(np.median(to_target)),
                        nearer_target_share=float(np.mean(to_target < to_source)),
                        target_to_source=float(np.linalg.norm(target_mean - source_mean)))
    jitter_source, jitter_swapped = (float(np.mean(motion[k])) if motion[k] else math.nan for k in ("source", "swapped"))
    return {
        "source": str(source), "swapped": str(swapped), "truth": str(truth) if truth else None,
        "target_faces": str(target_faces) if target_faces is not None else None,
        "source_faces": str(source_faces) if source_faces is not None else None,
        "frames": {"total": frames, "with_faces": both, "skipped": frames - both,
                   "no_face_source": no_source, "no_face_swapped": no_swapped},
        "identity": identity,
        "pose_error_deg": {name: _stats(values) for name, values in pose_err.items()},
        "landmark_error_iod": _stats(landmark_err),
        "gaze_error_deg": {"pitch_median": _median(gaze_pitch), "yaw_median": _median(gaze_yaw),
                           "frames": len(gaze_pitch)},
        "jitter_iod": {"source": jitter_source, "swapped": jitter_swapped,
                       "difference": jitter_swapped - jitter_source,
                       "ratio": jitter_swapped / jitter_source if jitter_source > 0 else math.nan},
        "truth_fidelity": {name: float(np.mean(v)) if v else math.nan for name, v in pixels.items()} if truth else None,
    }


def _rows(report: dict, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted name, printed value) for every number in the report, in order."""
    rows = []
    for key, value in report.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _rows(value, name + ".")
        elif isinstance(value, float):
            rows.append((name, f"{value:.4f}" if math.isfinite(value) else str(value)))
        elif isinstance(value, int) and not isinstance(value, bool):
            rows.append((name, str(value)))
    return rows


def format_table(report: dict) -> str:
    """The report's numbers as an aligned two-column text table (paths and empty entries left out)."""
    rows = _rows(report)
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>10}" for name, value in rows)


def save_report(report: dict, path: str | Path) -> Path:
    """Write the report as indented JSON, atomically; NaN and infinity (PSNR of identical frames, empty
    metrics) become null, as JSON has neither."""
    path = Path(path)
    try:
        write_json(path, report, indent=1)
    except OSError as exc:
        raise UserError(f"cannot write {path} ({exc.strerror}); choose a writable output path.") from None
    return path


# ----------------------------------------------------------------------------- reenactment

def describe_crops(images: np.ndarray, landmarks: np.ndarray, size: int = 256) -> dict[str, np.ndarray]:
    """dlib landmarks, head pose and gaze re-estimated on aligned crops (N, R, R, 3), at `size` px.

    Each crop is resized to `size` and padded by half its size (border replicated, as in
    `faceset_descriptor`, because dlib's box reaches past a tight crop); the predictor's box comes
    from `landmarks` (N, 68, 2) in the crops' pixels (where the face should be), so an output and its
    reference are measured in the same box. Returns landmarks (N, 68, 2) in `size` px crop
    coordinates, pose (N, 3) yaw/pitch/roll and gaze (N, 2) pitch/yaw in degrees (NaN in a blink)
    and blink (N,).
    """
    predictor, _ = _models()
    images = np.asarray(images)
    scale, pad = size / images.shape[1], size // 2
    out = {"landmarks": [], "pose": [], "gaze": [], "blink": []}
    for image, points in zip(images, np.asarray(landmarks, np.float64)):
        resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        padded = cv2.copyMakeBorder(np.ascontiguousarray(resized), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        box = box_from_landmarks((resize_points(points, scale) + pad).astype(np.float32))
        found = predictor(padded, box).astype(np.float64)
        pose = estimate_pose(found, padded.shape[1], padded.shape[0])
        gaze = estimate_gaze(padded, found)
        out["landmarks"].append(found - pad)
        out["pose"].append((pose.yaw, pose.pitch, pose.roll))
        out["gaze"].append((math.nan, math.nan) if gaze.blink else (gaze.pitch, gaze.yaw))
        out["blink"].append(gaze.blink)
    return {k: np.asarray(v) for k, v in out.items()}


def _control(outputs: dict, drivers: dict, relative_pose: bool) -> dict:
    pose_out, pose_drv = outputs["pose"], drivers["pose"]
    if relative_pose:  # each identity's pose about its own median (retargeting is relative)
        pose_out, pose_drv = pose_out - np.median(pose_out, 0), pose_drv - np.median(pose_drv, 0)
    pose_err = np.abs(pose_out - pose_drv)
    gaze_err = np.abs(outputs["gaze"] - drivers["gaze"])
    seen = np.all(np.isfinite(gaze_err), axis=1)
    return {"pose_error_deg": {name: _stats(list(pose_err[:, k])) for k, name in enumerate(("yaw", "pitch", "roll"))},
            "gaze_error_deg": {"pitch": _stats(list(gaze_err[seen, 0])), "yaw": _stats(list(gaze_err[seen, 1])),
                               "frames": int(seen.sum())},
            "blink_agreement": float(np.mean(outputs["blink"] == drivers["blink"]))}


def control_error(outputs: np.ndarray, output_landmarks: np.ndarray, drivers: np.ndarray,
                  driver_landmarks: np.ndarray, *, relative_pose: bool = False, size: int = 256) -> dict:
    """Control accuracy of a reenactment: pose and gaze re-estimated on the output crops and on the
    driving crops, absolute differences in degrees (pose about each side's median when
    `relative_pose`, for a driver of another identity), plus how often blink states agree."""
    return _control(describe_crops(outputs, output_landmarks, size), describe_crops(drivers, driver_landmarks, size),
                    relative_pose)


def pixel_fidelity(outputs: np.ndarray, truths: np.ndarray, masks: np.ndarray | None = None) -> dict:
    """Mean L1 (on [0, 1]), PSNR (dB) and SSIM of uint8 images (N, H, W, 3) against their truths;
    with boolean `masks` (N, H, W) also L1 and PSNR over the masked pixels only (face_l1, face_psnr)."""
    outputs, truths = np.asarray(outputs), np.asarray(truths)
    error = (outputs.astype(np.float64) - truths.astype(np.float64)) / 255.0
    with np.errstate(divide="ignore"):
        psnr = [peak_signal_noise_ratio(t, o, data_range=255) for o, t in zip(outputs, truths)]
    ssim = [structural_similarity(t, o, channel_axis=2, data_range=255) for o, t in zip(outputs, truths)]
    out = {"l1": float(np.abs(error).mean()), "psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim))}
    if masks is not None:
        inside = [e[m] for e, m in zip(error, np.asarray(masks, bool)) if m.any()]
        with np.errstate(divide="ignore"):
            out.update(face_l1=float(np.mean([np.abs(e).mean() for e in inside])),
                       face_psnr=float(np.mean([-10 * np.log10((e ** 2).mean()) for e in inside])))
    return out


def self_reenactment_scores(outputs: np.ndarray, truths: np.ndarray, truth_landmarks: np.ndarray,
                            size: int = 256) -> dict:
    """Self-reenactment of held-out frames: pixel fidelity, average keypoint distance and control accuracy.

    outputs, truths: uint8 aligned crops (N, R, R, 3) of the same frames; truth_landmarks (N, 68, 2)
    the truths' landmarks in crop pixels (they place dlib's box, and their hull is the face region of
    face_l1 and face_psnr). AKD (as First Order Motion Model
    papers report it) is the mean distance between dlib's 68 landmarks on output and truth, in
    pixels of a `size` px crop; pose and gaze errors compare the two re-estimates.
    """
    described_out = describe_crops(outputs, truth_landmarks, size)
    described_truth = describe_crops(truths, truth_landmarks, size)
    akd = np.linalg.norm(described_out["landmarks"] - described_truth["landmarks"], axis=-1).mean(-1)
    hulls = np.stack([landmark_mask(points, truths.shape[2], truths.shape[1], "hull") > 0 for points in truth_landmarks])
    return {"frames": len(outputs), **pixel_fidelity(outputs, truths, hulls),
            "akd_px": float(akd.mean()), "akd_size": size, **_control(described_out, described_truth, False)}
