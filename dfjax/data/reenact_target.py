"""The target of a reenactor: one identity's footage at the model's resolution, the controls of its
conditioning maps, their causal windows, and its reference (neutral landmarks and pose).

Training renders every frame's maps once, on the device (`render_all`); inference needs only what
`save_target_info` keeps in the workdir (target.npz): the reference and the still frame the
generated faces are pasted into.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from dfjax import io, media
from dfjax.data.faceset import FaceSet
from dfjax.errors import UserError
from dfjax.faces.align import resize_points
from dfjax.faces.retarget import Controls, Reference, controls_from_meta, reference_of
from dfjax.models.conditioning import C_MAPS, render_maps, stack_window, window_indices

RENDER_CHUNK = 32  # frames per map-rendering call (a fixed shape: one compilation)


@dataclass
class Target:
    """One identity's footage at the model's resolution, its maps' controls and its reference."""

    path: str
    faces: np.ndarray        # uint8 (N, R, R, 3)
    controls: Controls       # landmarks in R px crop coordinates
    windows: np.ndarray      # (N, window) causal window indices
    n_train: int             # faces [0, n_train) train; the rest are held out
    reference: Reference     # from the training faces, R px crop coordinates
    faceset: FaceSet


def load_target(path: str | Path, res: int, window: int, holdout: float = 0.0) -> Target:
    path = Path(path)
    faceset = FaceSet(path)
    n = len(faceset)
    n_train = n - int(round(holdout * n))
    if n_train < 2 or not 0.0 <= holdout < 1.0:
        raise UserError(f"face set {path} has {n} faces and data.holdout={holdout} leaves {n_train} to train on; "
                        "reenactment needs at least 2 (use a longer video or a smaller holdout).")
    faceset.require("landmarks", "matrix", "pose", "gaze")
    controls = controls_from_meta(faceset.meta)
    controls = controls._replace(landmarks=resize_points(controls.landmarks, res / faceset.size))
    faces = np.stack([cv2.resize(np.asarray(f), (res, res), interpolation=cv2.INTER_AREA if res < faceset.size
                                 else cv2.INTER_CUBIC) for f in faceset.faces])
    sources = {s: i for i, s in enumerate(dict.fromkeys(m.get("source", "") for m in faceset.meta))}
    windows = window_indices(np.array([m.get("frame", i) for i, m in enumerate(faceset.meta)]),
                             np.array([sources[m.get("source", "")] for m in faceset.meta]), window)
    reference = reference_of(controls.landmarks[:n_train], controls.pose[:n_train])
    return Target(str(path), faces, controls, windows, n_train, reference, faceset)


def render_all(controls: Controls, res: int) -> np.ndarray:
    """uint8 (N, R, R, C_MAPS) maps of every frame, rendered on the default device in fixed chunks."""
    render = _renderer(res)
    n = len(controls.landmarks)
    out = np.zeros((n, res, res, C_MAPS), np.uint8)
    for start in range(0, n, RENDER_CHUNK):
        part = [np.asarray(a[start:start + RENDER_CHUNK], np.float32) for a in controls]
        k = len(part[0])
        part = [np.concatenate([a, np.repeat(a[-1:], RENDER_CHUNK - k, 0)]) for a in part]
        out[start:start + k] = np.asarray(render(*part))[:k]
    return out


@partial(jax.jit, static_argnums=4)
def _render_u8(landmarks, pose, gaze, eyes_open, res):
    return jnp.round(render_maps(landmarks, pose, gaze, eyes_open, res) * 255).astype(jnp.uint8)


def _renderer(res: int):
    return lambda *args: _render_u8(*args, res)


def window_conditioning(maps_u8: jax.Array, windows: jax.Array, window: int) -> jax.Array:
    """Float maps (B, R, R, C * window) of faces whose windows (B, window) index `maps_u8`."""
    return stack_window(jnp.take(maps_u8, windows, axis=0).astype(jnp.float32) / 255.0, window)


def reference_frame(target: Target) -> dict:
    """The training frame nearest the neutral face: its full frame, frame->crop matrix (face-set px) and
    landmarks. Falls back to the aligned crop itself when the source video is gone."""
    lm, ref = target.controls.landmarks[:target.n_train], target.reference
    score = np.linalg.norm(lm - ref.neutral, axis=-1).mean(-1) / max(ref.iod, 1e-6)
    score = score + np.abs(target.controls.pose[:target.n_train] - ref.pose).sum(-1) / 30.0
    index = int(np.argmin(score))
    meta = target.faceset.meta[index]
    source = Path(meta.get("source", ""))
    if source.is_file() and "frame" in meta:
        frame = next((f for _, f in media.iter_frames(source, start=int(meta["frame"]), stop=int(meta["frame"]) + 1)),
                     None)
        if frame is not None:
            return {"frame": frame, "matrix": np.asarray(meta["matrix"], np.float64), "index": index,
                    "landmarks": np.asarray(meta["landmarks"], np.float64), "source": str(source),
                    "source_frame": int(meta["frame"])}
    crop = np.asarray(target.faceset.faces[index])
    matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return {"frame": crop, "matrix": matrix, "index": index, "source": target.path, "source_frame": index,
            "landmarks": resize_points(target.controls.landmarks[index], target.faceset.size / target.faces.shape[1])}


def save_target_info(workdir: Path, target: Target) -> None:
    """workdir/target.npz: what inference needs from the target without its face set or video."""
    ref = reference_frame(target)
    info = {"faceset": target.path, "face_type": target.faceset.info.get("face_type", "face"),
            "coverage": float(target.faceset.info.get("coverage", 1.0)), "faceset_size": target.faceset.size,
            "source": ref["source"], "source_frame": ref["source_frame"], "n_train": target.n_train}
    io.atomic_write(workdir / "target.npz", lambda f: np.savez(
        f, neutral=target.reference.neutral, iod=target.reference.iod, pose=target.reference.pose,
        frame=ref["frame"], matrix=ref["matrix"], landmarks=ref["landmarks"], info=json.dumps(info)))
