"""Per-frame face controls for the conditioning branch: read from a face set, kept on the device
next to its faces, and drawn into conditioning maps inside the jitted train step.

A face set's meta.jsonl already holds what Deep Video Portraits' maps need: the 68 landmarks (mapped
into the aligned crop by each face's stored 2x3 matrix), head pose, gaze and eye aspect ratios
(dfjax.faces.retarget.controls_from_meta). `face_controls` turns them into small arrays plus each
face's causal window: the indices of the previous Nw - 1 frames of the same source video, oldest
first, never reaching into another video or across a frame without a face (the window repeats its
earliest face instead, as at a video start).

Maps and augmentation. The generator must draw the *target* (the augmented face before the warp),
so its maps must describe the target's geometry. Rather than warping rendered maps (which would blur
the binary eye, pupil and mask channels and leave pose and gaze values describing the unaugmented
face), the landmarks of every frame in the window are moved by the sample's exact target affine
(`augment.target_geometry`: rotation, zoom, shift, flip and the resize to the model's resolution)
and the maps are rendered from them (`dfjax.models.conditioning.render_maps`, on the device):

- landmarks go through the affine; a flipped sample is relabelled with `model3d.MIRROR_68`, so its
  left eye is drawn as a left eye and the correspondence colours stay those of a real face;
- the in-plane rotation alpha of the affine adds to roll, and a flip mirrors the head:
  yaw -> -yaw, roll -> alpha - roll, gaze yaw -> -gaze yaw, and the two eyes' openness swap;
- colour jitter and the warp (which only moves the inputs) leave the maps alone.

All frames of a window get their sample's affine, so the stack stays temporally consistent.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dfjax.data.faceset import FaceSet
from dfjax.faces.model3d import MIRROR_68
from dfjax.faces.retarget import controls_from_meta
from dfjax.models.conditioning import C_MAPS, render_maps, stack_window, window_indices

CONTROL_KEYS = ("landmarks", "pose", "gaze", "eyes_open")


def causal_windows(sources: list, frames: list[int], nw: int) -> np.ndarray:
    """(N, nw) int32 indices of each face's causal window (oldest first, itself last), for faces in
    any order: windows follow frame order within each source and never cross sources or gaps."""
    if nw < 1:
        raise ValueError(f"a window holds at least one frame, got {nw}")
    _, ids = np.unique(np.asarray(sources, dtype=str), return_inverse=True)
    frames = np.asarray(frames, np.int64)
    order = np.lexsort((frames, ids))
    windows = np.empty((len(frames), nw), np.int64)
    windows[order] = order[window_indices(frames[order], ids[order], nw)]
    return windows.astype(np.int32)


def face_controls(faceset: FaceSet, nw: int) -> dict[str, np.ndarray]:
    """A face set's controls (landmarks in face-set crop pixels, pose, gaze, eyes_open; float32) and
    causal `windows` (N, nw) int32, ready to go onto the devices beside the faces."""
    controls = controls_from_meta(faceset.meta)
    out = {key: np.asarray(getattr(controls, key), np.float32) for key in CONTROL_KEYS}
    out["windows"] = causal_windows([m.get("source", "") for m in faceset.meta],
                                    [m.get("frame", i) for i, m in enumerate(faceset.meta)], nw)
    return out


def move_controls(controls: dict[str, jax.Array], matrix: jax.Array) -> dict[str, jax.Array]:
    """The controls of faces after an image transform `matrix` (..., 2, 3) (source -> output pixels;
    leading dimensions broadcast against the controls'), following flips and in-plane rotation."""
    linear, shift = matrix[..., :2], matrix[..., 2]
    landmarks = jnp.einsum("...ij,...pj->...pi", linear, controls["landmarks"]) + shift[..., None, :]
    flipped = (linear[..., 0, 0] * linear[..., 1, 1] - linear[..., 0, 1] * linear[..., 1, 0]) < 0
    sign = jnp.where(flipped, -1.0, 1.0)
    alpha = jnp.degrees(jnp.arctan2(sign * linear[..., 1, 0], sign * linear[..., 0, 0]))  # rotation after unflipping
    landmarks = jnp.where(flipped[..., None, None], landmarks[..., MIRROR_68, :], landmarks)
    yaw, pitch, roll = (controls["pose"][..., k] for k in range(3))
    pose = jnp.stack([sign * yaw, pitch, sign * roll + alpha], axis=-1)
    gaze = controls["gaze"] * jnp.stack([jnp.ones_like(sign), sign], axis=-1)
    eyes_open = jnp.where(flipped[..., None], controls["eyes_open"][..., ::-1], controls["eyes_open"])
    return {"landmarks": landmarks, "pose": pose, "gaze": gaze, "eyes_open": eyes_open}


def render_window(controls: dict[str, jax.Array], size: int) -> jax.Array:
    """Stacked maps (B, size, size, C_MAPS * nw) of controls with leading shape (B, nw)."""
    b, nw = controls["pose"].shape[:2]
    flat = [controls[key].reshape(b * nw, *controls[key].shape[2:]) for key in CONTROL_KEYS]
    maps = render_maps(*flat, size)
    return stack_window(maps.reshape(b, nw, size, size, C_MAPS), nw)


def window_maps(controls: dict[str, jax.Array], idx: jax.Array, geometry: jax.Array, size: int) -> jax.Array:
    """Conditioning maps (B, size, size, C_MAPS * nw) of the faces `idx` (B,) of a face set's
    `face_controls` (on the device), each window moved by its sample's `geometry` (B, 2, 3)."""
    windows = controls["windows"][idx]  # (B, nw)
    picked = {key: controls[key][windows] for key in CONTROL_KEYS}
    return render_window(move_controls(picked, geometry[:, None]), size)


__all__ = ["CONTROL_KEYS", "causal_windows", "face_controls", "move_controls", "render_window", "window_maps"]
