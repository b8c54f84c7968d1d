"""Deep-Video-Portraits conditioning maps, rendered on the device from per-frame face controls.

Deep Video Portraits (Kim et al. 2018) drives its generator with images rendered from a tracked
3-D face: a correspondence image of the face model, an eye-gaze image, and a window of past frames.
dfjax draws the same kind of images from what `extract` stores, in the aligned crop's pixels:

- correspondence (3 channels): the 68 landmarks, split by a fixed Delaunay triangulation of the
  mean face (`TRIANGLES`, computed once at import), every pixel coloured with the barycentric
  interpolation of its triangle's mean-face coordinates (x, y and a depth-like z from
  dfjax.faces.model3d), each in [0, 1]. Where triangles overlap (a turned head) the one nearer the
  camera wins, its depth taken from the mean face rotated by the frame's head pose. A stand-in for
  DVP's rendered 3-D face;
- head pose (3): constant channels 0.5 + angle / 180 of yaw, pitch and roll;
- gaze (2), DVP style: the eye whites (each eye's six-point contour filled), or, for a closed eye,
  a lid line between its corners; and the pupils: discs of IRIS_TO_EYE_WIDTH eye widths placed at
  the gaze on model3d's eyeball (the inverse of dfjax.faces.gaze.eye_angles), clipped to the eye
  opening and absent for a closed eye. Both are anti-aliased, so sub-pixel gaze survives at 64 px;
- face mask (1): the convex hull of the 68 landmarks.

`render_maps` is pure JAX with static shapes (jit it, vmap it, call it inside a train step); pixel
(x, y) has its centre at integer coordinates (x, y), as in OpenCV. `stack_window` and
`window_indices` build DVP's causal window of Nw frames.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial import Delaunay

from dfjax.faces.model3d import EYEBALL_RADIUS_TO_EYE_WIDTH, MODEL_68

#: Channels of one frame's maps: correspondence x, y, z; yaw, pitch, roll; eyes, pupils; mask.
CHANNELS = ("corr_x", "corr_y", "corr_z", "yaw", "pitch", "roll", "eyes", "pupils", "mask")
C_MAPS = len(CHANNELS)

#: Iris radius as a fraction of the eye's corner-to-corner width (about 6 mm of 30 mm).
IRIS_TO_EYE_WIDTH = 0.2
#: An eye counts as open (whites and pupil drawn) at or above this openness.
OPEN_THRESHOLD = 0.5
#: Width in pixels of the lid line drawn for a closed eye, per 64 pixels of map size.
LID_WIDTH_PER_64 = 1.0

_HULL_DIRECTIONS = 64  # the hull is the intersection of this many half-planes (error < 0.13 % of its radius)


def _mean_face_triangulation() -> tuple[np.ndarray, np.ndarray]:
    """Delaunay triangles (T, 3) of the frontal mean face, and each landmark's colour (68, 3) in [0, 1]."""
    points = MODEL_68[:, :2]
    triangles = Delaunay(points).simplices.astype(np.int32)
    lo, hi = MODEL_68.min(axis=0), MODEL_68.max(axis=0)
    colours = (MODEL_68 - lo) / (hi - lo)
    colours[:, 2] = 1.0 - colours[:, 2]  # z: nearer the camera is brighter (the nose tip is 1)
    return triangles, colours.astype(np.float32)


TRIANGLES, VERTEX_COLOURS = _mean_face_triangulation()
TRIANGLES.setflags(write=False)
VERTEX_COLOURS.setflags(write=False)


def _grid(size: int) -> tuple[jax.Array, jax.Array]:
    coords = jnp.arange(size, dtype=jnp.float32)
    return coords[None, :], coords[:, None]  # x varies along columns, y along rows


def _barycentric(tri: jax.Array, px: jax.Array, py: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Barycentric weights (3, ...) of points (px, py) in triangles `tri` (..., 3, 2), and an inside flag.

    Triangles and points broadcast against each other; a degenerate triangle contains nothing.
    """
    x0, y0, x1, y1 = tri[..., 0, 0], tri[..., 0, 1], tri[..., 1, 0], tri[..., 1, 1]
    x2, y2 = tri[..., 2, 0], tri[..., 2, 1]
    det = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
    valid = jnp.abs(det) >= 1e-6
    safe = jnp.where(valid, det, 1.0)
    w0 = ((y1 - y2) * (px - x2) + (x2 - x1) * (py - y2)) / safe
    w1 = ((y2 - y0) * (px - x2) + (x0 - x2) * (py - y2)) / safe
    w2 = 1.0 - w0 - w1
    eps = -1e-4  # a pixel on a shared edge belongs to both triangles: no cracks
    inside = (w0 >= eps) & (w1 >= eps) & (w2 >= eps) & valid
    return jnp.stack([w0, w1, w2]), inside


def _rotation(pose: jax.Array) -> jax.Array:
    """model3d.rotation_from_euler for (yaw, pitch, roll) in degrees, in JAX."""
    y, p, r = jnp.radians(pose[0]), jnp.radians(pose[1]), jnp.radians(pose[2])
    cy, sy, cp, sp, cr, sr = jnp.cos(y), jnp.sin(y), jnp.cos(p), jnp.sin(p), jnp.cos(r), jnp.sin(r)
    one, zero = jnp.ones_like(y), jnp.zeros_like(y)
    r_yaw = jnp.stack([jnp.stack([cy, zero, -sy]), jnp.stack([zero, one, zero]), jnp.stack([sy, zero, cy])])
    r_pitch = jnp.stack([jnp.stack([one, zero, zero]), jnp.stack([zero, cp, sp]), jnp.stack([zero, -sp, cp])])
    r_roll = jnp.stack([jnp.stack([cr, -sr, zero]), jnp.stack([sr, cr, zero]), jnp.stack([zero, zero, one])])
    return r_roll @ r_yaw @ r_pitch


def _correspondence(landmarks: jax.Array, pose: jax.Array, size: int) -> jax.Array:
    """(S, S, 3) mean-face coordinates of the nearest triangle under each pixel (0 outside the face).

    Every pixel is tested against every triangle at once ((S, S, T) depths, reduced by argmin, which
    XLA fuses); the winning triangle's weights are then recomputed per pixel to colour it.
    """
    px, py = _grid(size)
    triangles = jnp.asarray(TRIANGLES)
    corners = landmarks[triangles]  # (T, 3, 2)
    depth = (jnp.asarray(MODEL_68, jnp.float32) @ _rotation(pose).T)[:, 2][triangles]  # (T, 3) camera z
    weights, inside = _barycentric(corners, px[..., None], py[..., None])  # (3, S, S, T)
    # elementwise, not einsum: a dot would materialise the (S, S, T) weights instead of fusing them
    z = jnp.where(inside, weights[0] * depth[:, 0] + weights[1] * depth[:, 1] + weights[2] * depth[:, 2], jnp.inf)
    nearest = jnp.argmin(z, axis=-1)  # (S, S)
    covered = jnp.any(inside, axis=-1)
    weights, _ = _barycentric(corners[nearest], px, py)  # (3, S, S)
    colours = jnp.asarray(VERTEX_COLOURS)[triangles[nearest]]  # (S, S, 3 corners, 3 channels)
    image = sum(weights[k][..., None] * colours[:, :, k] for k in range(3))
    return jnp.where(covered[..., None], jnp.clip(image, 0.0, 1.0), 0.0)


def _hull_mask(landmarks: jax.Array, size: int) -> jax.Array:
    """(S, S) 1 inside the convex hull of the landmarks: inside every supporting half-plane."""
    px, py = _grid(size)
    angles = jnp.arange(_HULL_DIRECTIONS, dtype=jnp.float32) * (2 * jnp.pi / _HULL_DIRECTIONS)
    dirs = jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1)  # (K, 2)
    support = (landmarks @ dirs.T).max(axis=0)  # (K,)
    proj = dirs[:, 0, None, None] * px + dirs[:, 1, None, None] * py  # (K, S, S)
    return jnp.all(proj <= support[:, None, None] + 1e-3, axis=0).astype(jnp.float32)


def _segment_distance(a: jax.Array, b: jax.Array, px: jax.Array, py: jax.Array) -> jax.Array:
    d = b - a
    t = jnp.clip(((px - a[0]) * d[0] + (py - a[1]) * d[1]) / jnp.maximum(d @ d, 1e-6), 0.0, 1.0)
    return jnp.hypot(px - a[0] - t * d[0], py - a[1] - t * d[1])


def _convex_coverage(polygon: jax.Array, px: jax.Array, py: jax.Array) -> jax.Array:
    """Anti-aliased coverage (S, S) in [0, 1] of a convex polygon (K, 2), either winding: 0.5 plus the
    distance inside its nearest edge, clipped (a one-pixel ramp across every edge)."""
    nxt = jnp.roll(polygon, -1, axis=0)
    edge = nxt - polygon
    twice_area = jnp.sum(polygon[:, 0] * nxt[:, 1] - nxt[:, 0] * polygon[:, 1])
    inward = jnp.stack([-edge[:, 1], edge[:, 0]], axis=1) * jnp.where(twice_area >= 0, 1.0, -1.0)
    inward = inward / jnp.maximum(jnp.linalg.norm(inward, axis=1, keepdims=True), 1e-6)
    inside = (inward[:, 0, None, None] * (px - polygon[:, 0, None, None])
              + inward[:, 1, None, None] * (py - polygon[:, 1, None, None]))  # (K, S, S) signed distances
    return jnp.clip(0.5 + inside.min(axis=0), 0.0, 1.0)


def _eye(contour: jax.Array, pitch: jax.Array, yaw: jax.Array, is_open: jax.Array,
         size: int) -> tuple[jax.Array, jax.Array]:
    """Eye white (or lid line) and pupil disc (each (S, S)) of one eye's six contour points.

    All three are anti-aliased (a pixel's value is the fraction of it covered, to within a
    one-pixel ramp), so the pupil's centroid follows the gaze continuously: at 64 px the iris is
    about three pixels across and 20 degrees of gaze move it by about two, which binary pixels
    would round away.
    """
    px, py = _grid(size)
    opening = _convex_coverage(contour, px, py)
    axis = contour[3] - contour[0]
    width = jnp.maximum(jnp.linalg.norm(axis), 1e-6)
    right = axis / width
    up = jnp.stack([right[1], -right[0]])
    p, y = jnp.radians(pitch), jnp.radians(yaw)
    radius = EYEBALL_RADIUS_TO_EYE_WIDTH * width
    centre = contour.mean(axis=0) + radius * (jnp.sin(y) * jnp.cos(p) * right + jnp.sin(p) * up)
    disc = jnp.clip(IRIS_TO_EYE_WIDTH * width + 0.5 - jnp.hypot(px - centre[0], py - centre[1]), 0.0, 1.0)
    lid = jnp.clip(0.5 * LID_WIDTH_PER_64 * size / 64 + 0.5 - _segment_distance(contour[0], contour[3], px, py),
                   0.0, 1.0)
    white = jnp.where(is_open, opening, lid)
    pupil = jnp.where(is_open, opening * disc, 0.0)
    return white, pupil


def _render_one(landmarks: jax.Array, pose: jax.Array, gaze: jax.Array, eyes_open: jax.Array,
                size: int) -> jax.Array:
    correspondence = _correspondence(landmarks, pose, size)
    pose_planes = jnp.broadcast_to(jnp.clip(0.5 + pose / 180.0, 0.0, 1.0), (size, size, 3))
    whites, pupils = [], []
    for k, start in enumerate((36, 42)):
        white, pupil = _eye(landmarks[start:start + 6], gaze[0], gaze[1], eyes_open[k] >= OPEN_THRESHOLD, size)
        whites.append(white)
        pupils.append(pupil)
    eyes = jnp.maximum(whites[0], whites[1])
    pupil = jnp.maximum(pupils[0], pupils[1])
    mask = _hull_mask(landmarks, size)
    return jnp.concatenate([correspondence, pose_planes, eyes[..., None], pupil[..., None], mask[..., None]], axis=-1)


def render_maps(landmarks: jax.Array, pose: jax.Array, gaze: jax.Array, eyes_open: jax.Array,
                size: int) -> jax.Array:
    """Conditioning maps (B, size, size, C_MAPS) float32 in [0, 1] of B frames.

    landmarks (B, 68, 2) in aligned-crop pixels; pose (B, 3) yaw, pitch, roll in degrees; gaze
    (B, 2) eye-in-head pitch, yaw in degrees; eyes_open (B, 2) in [0, 1] for the subject's right
    (36-41) and left (42-47) eye. `size` is static under jit.
    """
    args = [jnp.asarray(a, jnp.float32) for a in (landmarks, pose, gaze, eyes_open)]
    gaze_ok = jnp.where(jnp.isfinite(args[2]), args[2], 0.0)  # an unknown gaze (blink) looks ahead
    return jax.vmap(lambda lm, po, ga, eo: _render_one(lm, po, ga, eo, size))(args[0], args[1], gaze_ok, args[3])


def stack_window(maps_seq: jax.Array, nw: int) -> jax.Array:
    """Causal window: (B, T, S, S, C) -> (B, S, S, C * nw), oldest frame first, current frame last.

    Uses the last `nw` frames of the sequence; a sequence shorter than `nw` (a video start) is
    padded in front by repeating its first frame.
    """
    t = maps_seq.shape[1]
    if t < nw:
        first = jnp.repeat(maps_seq[:, :1], nw - t, axis=1)
        maps_seq = jnp.concatenate([first, maps_seq], axis=1)
    window = maps_seq[:, -nw:]  # (B, nw, S, S, C)
    b, _, s, _, c = window.shape
    return jnp.moveaxis(window, 1, 3).reshape(b, s, s, nw * c)


def window_indices(frames: np.ndarray, sources: np.ndarray, nw: int) -> np.ndarray:
    """(N, nw) face indices of each face's causal window, oldest first, itself last.

    frames: (N,) frame numbers; sources: (N,) video ids, faces of a video in frame order. A window
    steps back one face at a time while the previous face is the previous frame of the same video;
    at a video start or a gap (a frame without a face) it repeats the earliest face it reached.
    """
    frames, sources = np.asarray(frames), np.asarray(sources)
    n = len(frames)
    previous = np.arange(n) - 1
    joined = np.zeros(n, bool)
    joined[1:] = (sources[1:] == sources[:-1]) & (frames[1:] == frames[:-1] + 1)
    previous = np.where(joined, previous, np.arange(n))
    out = np.empty((n, nw), np.int64)
    out[:, -1] = np.arange(n)
    for k in range(nw - 2, -1, -1):
        out[:, k] = previous[out[:, k + 1]]
    return out


__all__ = ["CHANNELS", "C_MAPS", "IRIS_TO_EYE_WIDTH", "OPEN_THRESHOLD", "TRIANGLES", "VERTEX_COLOURS",
           "render_maps", "stack_window", "window_indices"]
