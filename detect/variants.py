"""Compression variants of videos, and the perturbations of the robustness sweep.

Video variants re-encode whole videos with libx264 at FaceForensics++'s qualities, `c23` (CRF 23)
and `c40` (CRF 40), so a detector can be trained on one and scored on another as in Rössler et al.
2019. FaceForensics++ compressed its raw videos; re-encoding already compressed ones compresses
twice, so a c40 made here is a little worse than theirs. Copies are cached (one .mp4 per video and
variant under `cache_dir`/crf<N>/, keyed by the source's path and modification time) and written
atomically. The copies' VideoItems keep the originals' order, labels, methods and groups.

Perturbations act on face crops, uint8 (N, S, S, 3), and return new arrays: pure functions of
their inputs and a seed. `PERTURBATIONS` lists each one's levels, mildest first:

* jpeg: JPEG quality (cv2, 4:2:0);
* crf: H.264 at that CRF: the crops of each video id, in their order, coded as one short clip
  (25 fps, libx264), so inter-frame coding acts as it does on video;
* blur: Gaussian blur, sigma in pixels;
* noise: additive Gaussian noise, standard deviation in grey levels (0-255), clipped;
* resize: down to `scale` of the side (area) and back up (bilinear).
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from detect.sources import VideoItem
from dfjax import media
from dfjax.errors import UserError

VARIANTS = {"raw": None, "c23": 23, "c40": 40}  # name -> libx264 CRF; raw: the videos as they are


def variant_path(path: Path, crf: int, cache_dir: Path) -> Path:
    """Where the CRF-`crf` copy of `path` is cached."""
    resolved = Path(path).resolve()
    key = f"{resolved}|{resolved.stat().st_mtime_ns}|{crf}"
    return Path(cache_dir) / f"crf{crf}" / f"{resolved.stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.mp4"


def reencode(path: Path, target: Path, crf: int, preset: str = "medium") -> Path:
    """`path` re-encoded as H.264 (yuv420p) at `crf`, same frame rate and frames; odd sizes lose a row/column."""
    info = media.probe(path)
    width, height = info.width - info.width % 2, info.height - info.height % 2
    with media.VideoWriter(target, info.fps, width, height, crf=crf, preset=preset) as writer:
        for _, frame in media.iter_frames(path):
            writer.write(frame[:height, :width])
    return target


def variant_items(items: list[VideoItem], variant: str, cache_dir: str | Path, progress=None,
                  preset: str = "medium") -> list[VideoItem]:
    """The same videos (same order, labels, methods and groups) re-encoded as `variant` ("c23", "c40").

    Copies are made once under `cache_dir`/crf<N>/ and reused. "raw" returns `items` unchanged.
    """
    if variant not in VARIANTS:
        raise UserError(f"unknown compression variant {variant!r}; choose from {', '.join(VARIANTS)}.")
    crf = VARIANTS[variant]
    if crf is None:
        return list(items)
    task = progress.add_task(f"re-encode {variant}", total=len(items)) if progress else None
    out = []
    for item in items:
        target = variant_path(item.path, crf, Path(cache_dir))
        if not target.is_file():
            reencode(item.path, target, crf, preset)
        out.append(dataclasses.replace(item, path=target))  # same frames: a re-encode keeps their indices
        if progress:
            progress.advance(task)
    return out


# ---------------------------------------------------------------- perturbations of crops


def _check(crops: np.ndarray) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[-1] != 3:
        raise ValueError(f"crops must be uint8 (N, S, S, 3), got {crops.dtype} {crops.shape}")
    return crops


def jpeg(crops: np.ndarray, quality: int) -> np.ndarray:
    """Each crop JPEG-encoded at `quality` (1-100) and decoded."""
    crops = _check(crops)
    out = np.empty_like(crops)
    for i, crop in enumerate(crops):
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise RuntimeError(f"cv2 could not JPEG-encode crop {i} at quality {quality}")
        out[i] = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return out


def h264(crops: np.ndarray, crf: int, video_ids: np.ndarray | None = None, preset: str = "medium") -> np.ndarray:
    """The crops of each video id, in order, coded as one H.264 clip at `crf` and decoded back."""
    crops = _check(crops)
    ids = np.zeros(len(crops), np.int64) if video_ids is None else np.asarray(video_ids)
    n, h, w = crops.shape[:3]
    out = np.empty_like(crops)
    with tempfile.TemporaryDirectory(prefix="dfjax-h264-") as tmp:
        for vid in np.unique(ids):
            rows = np.flatnonzero(ids == vid)
            clip = Path(tmp) / "clip.mp4"
            with media.VideoWriter(clip, 25, w + w % 2, h + h % 2, crf=int(crf), preset=preset) as writer:
                for row in rows:  # yuv420p needs even sides: pad by repeating the edge
                    writer.write(np.pad(crops[row], ((0, h % 2), (0, w % 2), (0, 0)), mode="edge"))
            decoded = [frame[:h, :w] for _, frame in media.iter_frames(clip)]
            if len(decoded) != len(rows):
                raise RuntimeError(f"H.264 round trip returned {len(decoded)} of {len(rows)} frames")
            out[rows] = decoded
    return out


def blur(crops: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation `sigma` pixels (0: unchanged)."""
    crops = _check(crops)
    if sigma <= 0 or not len(crops):
        return crops.copy()
    return np.stack([cv2.GaussianBlur(c, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_REFLECT101)
                     for c in crops]).astype(np.uint8).reshape(crops.shape)


def noise(crops: np.ndarray, std: float, seed: int = 0) -> np.ndarray:
    """Additive Gaussian noise of `std` grey levels, clipped to 0-255; the same seed gives the same noise."""
    crops = _check(crops)
    z = np.random.default_rng(seed).standard_normal(crops.shape, dtype=np.float32)
    return np.clip(np.rint(crops.astype(np.float32) + np.float32(std) * z), 0, 255).astype(np.uint8)


def resize(crops: np.ndarray, scale: float) -> np.ndarray:
    """Each crop shrunk to `scale` of its side (area filter) and enlarged back (bilinear)."""
    crops = _check(crops)
    h, w = crops.shape[1:3]
    small = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = [cv2.resize(cv2.resize(c, small, interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_LINEAR)
           for c in crops]
    return np.stack(out).reshape(crops.shape) if out else crops.copy()


PERTURBATIONS: dict[str, list] = {
    "jpeg": [90, 70, 50, 30],
    "crf": [23, 30, 40],
    "blur": [1.0, 2.0, 3.0],
    "noise": [5.0, 10.0, 20.0],
    "resize": [0.75, 0.5, 0.25],
}

_APPLY: dict[str, Callable] = {
    "jpeg": lambda crops, level, ids, seed: jpeg(crops, level),
    "crf": lambda crops, level, ids, seed: h264(crops, level, ids),
    "blur": lambda crops, level, ids, seed: blur(crops, level),
    "noise": lambda crops, level, ids, seed: noise(crops, level, seed),
    "resize": lambda crops, level, ids, seed: resize(crops, level),
}


def _known(name: str) -> str:
    name = "crf" if name == "h264" else name
    if name not in _APPLY:
        raise UserError(f"unknown perturbation {name!r}; choose from {', '.join(PERTURBATIONS)}.")
    return name


def apply(name: str, level, crops: np.ndarray, video_ids: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Perturbation `name` ("jpeg", "crf" (alias "h264"), "blur", "noise", "resize") at `level`.

    video_ids: (N,) the video of each crop, used by "crf" to code each video's crops as one clip.
    """
    return _APPLY[_known(name)](crops, level, video_ids, seed)


def sweep(crops: np.ndarray, video_ids: np.ndarray | None = None, seed: int = 0,
          names: list[str] | None = None) -> Iterator[tuple[str, object, np.ndarray]]:
    """(name, level, perturbed crops) for every level of every perturbation in `names` (default: all)."""
    for name in names or list(PERTURBATIONS):
        for level in PERTURBATIONS[_known(name)]:
            yield name, level, apply(name, level, crops, video_ids, seed)
