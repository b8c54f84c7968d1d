"""Detection datasets: labelled real/fake videos -> evenly spaced frames -> face crops, cached.

Which videos, with which labels, methods and groups, is `detect.sources` (files, folders, labels
CSVs, dfjax swap outputs, FaceForensics++ and DFDC folders); its names are re-exported here. Crops
follow DeepfakeBench: the largest dlib box, enlarged `scale` times around its centre to a square,
zero-padded at the frame border, resized; the 68 landmarks come along in crop coordinates. A
sampled frame without a face is recorded as missing, where DeepfakeBench's preprocessing silently
drops it. Splits are by group, so one source never lands in two splits.

Which face detector finds the boxes is `face_detector`, a spec of dfjax.faces.detect: "hog" (the
default, DeepfakeBench's dlib HOG frontal detector, retried with upsampling), "cnn" (dlib's MMOD CNN,
several times slower on CPU) or "hog,cnn" (HOG first, the CNN only on frames HOG missed). HOG misses
dark, low-contrast faces (29 of 40 frames of the demo's synthetic identity B) that the CNN finds;
each choice has its own crop cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from detect.sources import FFPP_METHODS, VideoItem, collect, default_group
from dfjax import media
from dfjax.errors import UserError
from dfjax.faces.detect import DEFAULT_FACE_DETECTOR, parse_face_detector
from dfjax.io import atomic_write

__all__ = ["FFPP_METHODS", "VideoItem", "collect", "default_group", "sample_frames", "Crops", "crop_face",
           "check_face_detector", "extract_crops", "split_by_group", "Dataset", "build_dataset"]


def check_face_detector(face_detector: str) -> str:
    """`face_detector` when it is a face-detector spec ("hog", "cnn", "hog,cnn"); a UserError otherwise."""
    parse_face_detector(face_detector, "--face-detector")
    return face_detector


def sample_frames(n_frames: int, k: int = 32) -> np.ndarray:
    """Up to `k` evenly spaced frame indices over `n_frames` frames (first and last included)."""
    if n_frames <= 0 or k <= 0:
        return np.zeros(0, np.int64)
    return np.unique(np.linspace(0, n_frames - 1, min(k, n_frames)).round().astype(np.int64))


class Crops(NamedTuple):
    crops: np.ndarray           # uint8 (m, size, size, 3)
    landmarks: np.ndarray       # float32 (m, 68, 2), crop pixels
    frames: np.ndarray          # int64 (m,) frame index of each crop
    missing: int                # sampled frames without a face
    missing_frames: np.ndarray  # int64 (missing,) their indices


_MODELS: dict = {}  # "predictor" and each face-detector spec: loaded once per process, when first needed


def _model(name: str):
    if name not in _MODELS:
        if name == "predictor":
            from dfjax.faces.landmarks import LandmarkPredictor
            _MODELS[name] = LandmarkPredictor()
        else:  # detects on a copy whose long side is at most 640 px (the CNN needs faces of about 80 px);
            # HOG retries upsampled as DeepfakeBench does, the CNN does not (4x its cost, about 2 s a 640 px frame)
            from dfjax.faces.detect import FaceDetector
            _MODELS[name] = FaceDetector(name, retry_upsampled=("hog",))
    return _MODELS[name]


def _face_finder(face_detector: str, detector):
    """frame -> faces: the spec's FaceDetector, or a given `detector` retried upsampled where it finds nothing."""
    if detector is None:
        return _model(face_detector)
    return lambda frame: detector(frame) or detector(frame, upsample=1)


def crop_face(frame: np.ndarray, box, landmarks: np.ndarray, size: int = 256,
              scale: float = 1.3) -> tuple[np.ndarray, np.ndarray]:
    """The square crop of `box` enlarged `scale` times (zero-padded past the border), and the landmarks in it."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(2, int(round(max(x1 - x0, y1 - y0) * scale)))
    left, top = int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2))
    h, w = frame.shape[:2]
    canvas = np.zeros((side, side, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(left, 0), max(top, 0), min(left + side, w), min(top + side, h)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - top:sy1 - top, sx0 - left:sx1 - left] = frame[sy0:sy1, sx0:sx1]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    crop = cv2.resize(canvas, (size, size), interpolation=interp)
    points = (landmarks - np.array([left, top], np.float32)) * np.float32(size / side)
    return crop, points.astype(np.float32)


def extract_crops(item: VideoItem | Path, k: int = 32, size: int = 256, scale: float = 1.3,
                  detector=None, predictor=None, face_detector: str = DEFAULT_FACE_DETECTOR) -> Crops:
    """Face crops from `k` evenly spaced frames of a video (of `item.frames` when set); the largest face per frame.

    face_detector: "hog", "cnn" or "hog,cnn" (see the module docstring); HOG retries with dlib
    upsampling before a frame is declared missing. A given `detector` is used instead, with that retry.
    """
    path = Path(item.path if isinstance(item, VideoItem) else item)
    check_face_detector(face_detector)
    find_faces = _face_finder(face_detector, detector)
    predictor = predictor or _model("predictor")
    allowed = item.frames if isinstance(item, VideoItem) else None
    if allowed is not None:  # evenly spaced over the frames sampling may pick (a dfjax swap's manipulated ones)
        candidates = np.unique(np.asarray(allowed, np.int64))
        wanted = set(candidates[sample_frames(len(candidates), k)].tolist())
    else:
        n = media.probe(path).frames
        if n <= 0:
            n = sum(1 for _ in media.iter_frames(path, gray=True))
        wanted = set(sample_frames(n, k).tolist())
    crops, points, found, missing, seen = [], [], [], [], set()
    for index, frame in media.iter_frames(path, stop=max(wanted, default=-1) + 1):
        if index not in wanted:
            continue
        seen.add(index)
        faces = find_faces(frame)
        if not faces:
            missing.append(index)
            continue
        box = max(faces, key=lambda d: d.area).box
        crop, lm = crop_face(frame, box, predictor(frame, box), size, scale)
        crops, points, found = crops + [crop], points + [lm], found + [index]
    missing = sorted(missing + [i for i in wanted if i not in seen])
    return Crops(np.array(crops, np.uint8).reshape(-1, size, size, 3), np.array(points, np.float32).reshape(-1, 68, 2),
                 np.array(found, np.int64), len(missing), np.array(missing, np.int64))


def split_by_group(items: list[VideoItem], val: float = 0.15, test: float = 0.15,
                   seed: int = 0) -> dict[str, list[VideoItem]]:
    """Train/val/test lists, whole groups at a time, stratified by label.

    Test and then val each first receive one group with real and one with fake videos, as long as
    train keeps at least one of each; the rest go, largest group first, to the split furthest below
    its share of each label.
    """
    groups: dict[str, list[VideoItem]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    rng = np.random.default_rng(seed)
    names = [sorted(groups)[i] for i in rng.permutation(len(groups))]
    counts = {g: np.bincount([it.label for it in groups[g]], minlength=2) for g in names}
    fracs = {"train": 1.0 - val - test, "val": val, "test": test}
    total = sum(counts.values(), np.zeros(2, np.int64))
    have = {s: np.zeros(2, np.int64) for s in fracs}
    chosen: dict[str, list[str]] = {s: [] for s in fracs}

    def assign(g: str, split: str) -> None:
        chosen[split].append(g)
        have[split] += counts[g]
        names.remove(g)

    for split in [s for s in ("test", "val") if fracs[s] > 0]:
        for label in (0, 1):
            options = [g for g in names if counts[g][label]]
            if not have[split][label] and len(options) >= 2:  # keep one for train
                assign(min(options, key=lambda g: counts[g].sum()), split)
    for g in sorted(names, key=lambda g: -counts[g].sum()):
        deficit = {s: float(((fracs[s] * total - have[s]) * counts[g]).sum()) for s in fracs if fracs[s] > 0}
        assign(g, max(deficit, key=deficit.get))
    return {s: [it for g in chosen[s] for it in groups[g]] for s in fracs}


@dataclass
class Dataset:
    """Face crops of many videos, one row per crop."""

    crops: np.ndarray       # uint8 (N, S, S, 3)
    landmarks: np.ndarray   # float32 (N, 68, 2), crop pixels
    labels: np.ndarray      # int32 (N,)
    video_ids: np.ndarray   # int32 (N,) index into `videos`
    methods: np.ndarray     # str (N,)
    frames: np.ndarray      # int64 (N,) frame index in its video
    videos: list[VideoItem]
    missing: dict[str, list[int]] = field(default_factory=dict)  # video path -> frames without a face

    def __len__(self) -> int:
        return len(self.labels)


def _cache_path(cache_dir: Path, path: Path, k: int, size: int, scale: float,
                face_detector: str = DEFAULT_FACE_DETECTOR, frames: tuple[int, ...] | None = None) -> Path:
    resolved = path.resolve()
    key = f"{resolved}|{resolved.stat().st_mtime_ns}|{k}|{size}|{scale}"
    # hog on every frame keeps the key it had before these choices existed, so old caches stay valid
    if face_detector != "hog":
        key += f"|{face_detector}"
    if frames is not None:
        key += f"|frames:{hashlib.sha1(np.asarray(frames, np.int64).tobytes()).hexdigest()}"
    return cache_dir / f"{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def _cached_crops(item: VideoItem, k: int, size: int, scale: float, cache_dir: Path | None,
                  detector, predictor, face_detector: str = DEFAULT_FACE_DETECTOR) -> Crops:
    check_face_detector(face_detector)
    if cache_dir is None:
        return extract_crops(item, k, size, scale, detector, predictor, face_detector)
    target = _cache_path(cache_dir, item.path, k, size, scale, face_detector, item.frames)
    if target.is_file():
        with np.load(target) as z:
            return Crops(z["crops"], z["landmarks"], z["frames"], len(z["missing_frames"]), z["missing_frames"])
    result = extract_crops(item, k, size, scale, detector, predictor, face_detector)
    atomic_write(target, lambda f: np.savez(f, **{name: getattr(result, name)
                                                  for name in ("crops", "landmarks", "frames", "missing_frames")}))
    return result


def build_dataset(items: list[VideoItem], k: int = 32, size: int = 256, cache_dir: str | Path | None = None,
                  progress=None, scale: float = 1.3, detector=None, predictor=None,
                  face_detector: str = DEFAULT_FACE_DETECTOR) -> Dataset:
    """Crops of every video, read from `cache_dir` (one .npz per video and settings) when there.

    face_detector: "hog" (default), "cnn" or "hog,cnn" (see the module docstring).
    progress: a rich Progress (or None). Raises UserError when no video has a face or the choice is unknown.
    """
    check_face_detector(face_detector)
    cache = Path(cache_dir) if cache_dir is not None else None
    task = progress.add_task("crops", total=len(items)) if progress else None
    parts, missing = [], {}
    for vid, item in enumerate(items):
        result = _cached_crops(item, k, size, scale, cache, detector, predictor, face_detector)
        parts.append((vid, item, result))
        if result.missing:
            missing[str(item.path)] = result.missing_frames.tolist()
        if progress:
            progress.advance(task)
    if not any(len(r.frames) for _, _, r in parts):
        shown = ", ".join(str(it.path) for it in items[:3]) + (", ..." if len(items) > 3 else "")
        hint = " or try face detector hog,cnn (finds dark, low-contrast faces HOG misses)," if face_detector == "hog" else ""
        raise UserError(f"no faces found in {shown} ({len(items)} videos); check that the videos show "
                        f"frontal faces at least about 80 px wide,{hint} or pass other videos.")
    counts = [len(r.frames) for _, _, r in parts]
    return Dataset(crops=np.concatenate([r.crops for _, _, r in parts]),
                   landmarks=np.concatenate([r.landmarks for _, _, r in parts]),
                   labels=np.repeat(np.array([it.label for it in items], np.int32), counts),
                   video_ids=np.repeat(np.arange(len(items), dtype=np.int32), counts),
                   methods=np.repeat(np.array([it.method for it in items], str), counts),
                   frames=np.concatenate([r.frames for _, _, r in parts]), videos=list(items), missing=missing)
