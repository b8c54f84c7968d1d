"""Detection datasets: labelled real/fake videos -> evenly spaced frames -> face crops, cached.

Inputs are video files, folders of videos (searched recursively), labels CSVs (`path,label[,method,
group]`, header optional, paths relative to the CSV) and dfjax swap outputs (a video with a JSON
sidecar beside it). Crops follow DeepfakeBench: the largest dlib box, enlarged `scale` times around
its centre to a square, zero-padded at the frame border, resized; the 68 landmarks come along in
crop coordinates. A sampled frame without a face is recorded as missing, never silently dropped
(DeepfakeBench issues #66, #107).

Groups (the unit of splitting, so one source never lands in two splits) default to the video's
stem, except: FaceForensics++ names `004_634` -> `004` (the target video, shared with the real
`004.mp4`); dfjax synthetic `a_as_b_truth` -> `a` (its frames are a's); dfjax swap outputs -> the
stem of the sidecar's `source`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from dfjax import media
from dfjax.errors import UserError

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
_LABELS = {"0": 0, "1": 1, "real": 0, "fake": 1}


@dataclass(frozen=True)
class VideoItem:
    path: Path
    label: int   # 0 real, 1 fake
    method: str  # "real", "dfjax", "Deepfakes", ...
    group: str   # source/identity id; a group never spans two splits


def default_group(path: Path) -> str:
    """The group of a video from its name (see the module docstring)."""
    stem = Path(path).stem
    if m := re.fullmatch(r"(\d+)_\d+", stem):
        return m.group(1)
    if m := re.fullmatch(r"(.+?)_as_.+_truth", stem):
        return m.group(1)
    return stem


def _sidecar(video: Path) -> dict | None:
    """The dfjax swap sidecar beside `video`, or None when there is none."""
    try:
        data = json.loads(video.with_suffix(".json").read_text())
    except (OSError, ValueError):  # no sidecar, or not JSON
        return None
    return data if isinstance(data, dict) and "source" in data and "frames" in data else None


def _video_item(path: Path, label: int) -> VideoItem:
    side = _sidecar(path)
    if side is not None:
        if label == 0:
            raise UserError(f"{path} is a dfjax swap output (sidecar {path.with_suffix('.json')}); "
                            "pass it as a fake video, not a real one.")
        return VideoItem(path, 1, "dfjax", default_group(Path(side["source"])))
    method = "real" if label == 0 else next((p for p in path.parts if p in FFPP_METHODS), "fake")
    return VideoItem(path, label, method, default_group(path))


def _read_csv(path: Path) -> list[VideoItem]:
    items = []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            row = [c.strip() for c in row]
            if not any(row) or row[0].startswith("#") or (line == 1 and row[0].lower() == "path"):
                continue
            if len(row) < 2 or len(row) > 4 or row[1].lower() not in _LABELS:
                raise UserError(f"{path} line {line} is not `path,label[,method,group]` with label 0/1 "
                                f"or real/fake (got {','.join(row)!r}); fix that row.")
            video = Path(row[0]) if Path(row[0]).is_absolute() else path.parent / row[0]
            if not video.is_file():
                raise UserError(f"{path} line {line}: {video} does not exist; fix the path in that row.")
            label = _LABELS[row[1].lower()]
            base = _video_item(video, label)
            method = row[2] if len(row) > 2 and row[2] else base.method
            group = row[3] if len(row) > 3 and row[3] else base.group
            items.append(VideoItem(video, label, method, group))
    return items


def collect(real: list[Path], fake: list[Path]) -> list[VideoItem]:
    """Every labelled video named by `real` and `fake` (files, folders, CSVs, dfjax outputs).

    A CSV's own labels win over the list it was passed in. Duplicates are kept once.
    """
    items: list[VideoItem] = []
    for label, entries in ((0, real), (1, fake)):
        for entry in entries:
            entry = Path(entry)
            if not entry.exists():
                raise UserError(f"{entry} does not exist; check the path.")
            if entry.is_dir():
                videos = sorted(p for p in entry.rglob("*") if p.is_file() and media.is_video(p))
                if not videos:
                    raise UserError(f"{entry} contains no videos; point at a folder of videos.")
                items += [_video_item(p, label) for p in videos]
            elif entry.suffix.lower() == ".csv":
                items += _read_csv(entry)
            elif media.is_video(entry):
                items.append(_video_item(entry, label))
            else:
                raise UserError(f"{entry} is neither a video, a folder of videos nor a labels CSV; "
                                "pass one of those.")
    unique: dict[Path, VideoItem] = {}
    for item in items:
        unique.setdefault(item.path.resolve(), item)
    return list(unique.values())


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


_MODELS: dict = {}  # the default detector and predictor, loaded once


def _models(detector, predictor):
    if not _MODELS and (detector is None or predictor is None):
        from dfjax.faces.detect import FaceDetector
        from dfjax.faces.landmarks import LandmarkPredictor
        _MODELS.update(detector=FaceDetector("hog"), predictor=LandmarkPredictor())
    return detector or _MODELS["detector"], predictor or _MODELS["predictor"]


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
                  detector=None, predictor=None) -> Crops:
    """Face crops from `k` evenly spaced frames of a video; the largest face per frame.

    Detection retries with dlib upsampling before a frame is declared missing.
    """
    path = Path(item.path if isinstance(item, VideoItem) else item)
    detector, predictor = _models(detector, predictor)
    n = media.probe(path).frames
    if n <= 0:
        n = sum(1 for _ in media.iter_frames(path, gray=True))
    wanted = set(sample_frames(n, k).tolist())
    crops, points, found, missing, seen = [], [], [], [], set()
    for index, frame in media.iter_frames(path, stop=max(wanted, default=-1) + 1):
        if index not in wanted:
            continue
        seen.add(index)
        faces = detector(frame) or detector(frame, upsample=1)
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


def _cache_path(cache_dir: Path, path: Path, k: int, size: int, scale: float) -> Path:
    resolved = path.resolve()
    key = f"{resolved}|{resolved.stat().st_mtime_ns}|{k}|{size}|{scale}"
    return cache_dir / f"{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def _cached_crops(item: VideoItem, k: int, size: int, scale: float, cache_dir: Path | None,
                  detector, predictor) -> Crops:
    if cache_dir is None:
        return extract_crops(item, k, size, scale, detector, predictor)
    target = _cache_path(cache_dir, item.path, k, size, scale)
    if target.is_file():
        with np.load(target) as z:
            return Crops(z["crops"], z["landmarks"], z["frames"], len(z["missing_frames"]), z["missing_frames"])
    result = extract_crops(item, k, size, scale, detector, predictor)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.partial.npz")  # written whole, then renamed
    np.savez(tmp, **{name: getattr(result, name) for name in ("crops", "landmarks", "frames", "missing_frames")})
    os.replace(tmp, target)
    return result


def build_dataset(items: list[VideoItem], k: int = 32, size: int = 256, cache_dir: str | Path | None = None,
                  progress=None, scale: float = 1.3, detector=None, predictor=None) -> Dataset:
    """Crops of every video, read from `cache_dir` (one .npz per video and settings) when there.

    progress: a rich Progress (or None). Raises UserError when no video has a face.
    """
    cache = Path(cache_dir) if cache_dir is not None else None
    task = progress.add_task("crops", total=len(items)) if progress else None
    parts, missing = [], {}
    for vid, item in enumerate(items):
        result = _cached_crops(item, k, size, scale, cache, detector, predictor)
        parts.append((vid, item, result))
        if result.missing:
            missing[str(item.path)] = result.missing_frames.tolist()
        if progress:
            progress.advance(task)
    if not any(len(r.frames) for _, _, r in parts):
        shown = ", ".join(str(it.path) for it in items[:3]) + (", ..." if len(items) > 3 else "")
        raise UserError(f"no faces found in {shown} ({len(items)} videos); check that the videos show "
                        "frontal faces at least about 80 px wide, or pass other videos.")
    counts = [len(r.frames) for _, _, r in parts]
    return Dataset(crops=np.concatenate([r.crops for _, _, r in parts]),
                   landmarks=np.concatenate([r.landmarks for _, _, r in parts]),
                   labels=np.repeat(np.array([it.label for it in items], np.int32), counts),
                   video_ids=np.repeat(np.arange(len(items), dtype=np.int32), counts),
                   methods=np.repeat(np.array([it.method for it in items], str), counts),
                   frames=np.concatenate([r.frames for _, _, r in parts]), videos=list(items), missing=missing)
