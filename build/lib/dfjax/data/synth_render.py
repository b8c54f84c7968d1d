"""Per-frame states and the cv2 renderer of procedural faces, with exact ground truth.

A `FrameState` holds everything that changes over time (pose, gaze, blink, mouth, lighting,
background, translation); `sample_states` draws a smooth sequence of them from a seed. `render_frame`
draws one identity in one state and returns the image with its `GroundTruth`. Passing `context=`
renders one identity's face inside another's frame (background, hair, ears, neck, clothes): the
exact result a perfect face swap would produce.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dfjax.data import synth_identity as sd
from dfjax.data.synth_identity import BEARD, MESH, Identity, expressed_face
from dfjax.faces.model3d import (EYEBALL_RADIUS_TO_EYE_WIDTH, eyeball_centres, gaze_vector,
                                 rotation_from_euler)

_SHIFT = 4                 # cv2 fixed-point drawing: 1/16 px precision, so motion is sub-pixel smooth
_ONE = 1 << _SHIFT
_FACE_WIDTH_MM = 145.0     # jaw 0 to jaw 16 of the mean face
_IRIS_TO_EYE_WIDTH = 0.21  # iris radius over eye width
BLINK_THRESHOLD = 0.5      # eye closure above which a frame counts as a blink


@dataclass(frozen=True, eq=False)
class FrameState:
    """What varies from frame to frame. Angles in degrees, as in `dfjax.faces.model3d`."""

    yaw: float
    pitch: float
    roll: float
    gaze_pitch: float
    gaze_yaw: float
    eye_closure: float      # 0 open .. 1 closed
    mouth_open: float       # 0 closed .. 1 wide open
    smile: float            # 0 .. 1
    light_azimuth: float    # degrees, positive: light from image right
    light_elevation: float  # degrees, positive: light from above
    light_intensity: float
    ambient: float
    tx: float               # head translation, fraction of the frame's short side
    ty: float
    scale: float            # face size factor around 1
    background: np.ndarray  # (7,) top colour RGB, bottom colour RGB, gradient angle (radians)
    blobs: np.ndarray       # (K, 6) x, y, radius (fractions of the short side), RGB


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Exact annotations of one rendered frame (pixel coordinates of that frame)."""

    landmarks: np.ndarray   # (68, 2) float32
    pose: np.ndarray        # (3,) float32 yaw, pitch, roll
    gaze: np.ndarray        # (2,) float32 pitch, yaw (eye-in-head)
    blink: bool
    mask: np.ndarray        # (H, W) uint8, 255 on the visible face
    pupils: np.ndarray      # (2, 2) float32, right eye (image left) then left eye
    eye_closure: float
    mouth_open: float
    rotation: np.ndarray    # (3, 3) model -> camera
    translation: np.ndarray  # (3,) mm
    focal: float


def _smooth(rng: np.random.Generator, t: np.ndarray, f_lo: float, f_hi: float, k: int = 3) -> np.ndarray:
    """A smooth signal in (-1, 1): a few sinusoids with random frequency and phase, softly clipped."""
    freqs, phases, amps = rng.uniform(f_lo, f_hi, k), rng.uniform(0, 2 * np.pi, k), rng.uniform(0.5, 1.0, k)
    x = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(axis=0)
    return np.tanh(0.75 * x / np.sqrt((amps ** 2).sum() / 2))


def _blinks(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Eye closure over time: short blinks every 2-5 s, the first within 2 s."""
    closure = np.zeros_like(t)
    start = rng.uniform(0.2, 2.0)
    while start < (t[-1] if len(t) else 0.0):
        duration = rng.uniform(0.22, 0.36)
        u = (t - start) / duration
        inside = (u > 0) & (u < 1)
        closure[inside] = np.maximum(closure[inside], np.clip(1.7 * np.sin(np.pi * u[inside]), 0, 1))
        start += duration + rng.uniform(2.0, 5.0)
    return closure


def sample_states(n_frames: int, seed: int = 0, fps: float = 25.0) -> list[FrameState]:
    """A smooth sequence of frame states; the same seed gives the same sequence (and its prefixes)."""
    rng = np.random.default_rng([seed, 0x57A7E])
    t = np.arange(n_frames) / fps
    s = lambda lo, hi: _smooth(rng, t, lo, hi)  # noqa: E731
    yaw, pitch, roll = 40 * s(0.06, 0.22), 20 * s(0.06, 0.25), 15 * s(0.05, 0.2)
    gaze_pitch, gaze_yaw = 15 * s(0.1, 0.5), 20 * s(0.1, 0.5)
    mouth = ((s(0.4, 1.6) + 1) / 2) ** 2 * (0.55 + 0.45 * s(0.05, 0.2))
    smile = 0.4 * (s(0.03, 0.15) + 1)
    azimuth, elevation = 50 * s(0.02, 0.1), 25 + 15 * s(0.02, 0.1)
    intensity, ambient = 0.7 + 0.15 * s(0.05, 0.2), 0.45 + 0.08 * s(0.05, 0.2)
    tx, ty, scale = 0.06 * s(0.03, 0.15), 0.05 * s(0.03, 0.15), 1 + 0.06 * s(0.03, 0.15)
    closure = _blinks(rng, t)
    colours = rng.uniform(30, 225, (2, 3))
    background = np.concatenate([
        np.clip(colours[0][:, None] + 25 * np.stack([s(0.02, 0.1) for _ in range(3)]), 0, 255),
        np.clip(colours[1][:, None] + 25 * np.stack([s(0.02, 0.1) for _ in range(3)]), 0, 255),
        (rng.uniform(0, 2 * np.pi) + 0.6 * s(0.01, 0.05))[None]])
    n_blobs = 3
    blob_base = np.stack([rng.uniform(0, 1, n_blobs), rng.uniform(0, 1, n_blobs),
                          rng.uniform(0.08, 0.25, n_blobs)], axis=1)
    blob_colour = rng.uniform(20, 235, (n_blobs, 3))
    blobs = np.stack([np.concatenate([
        np.stack([blob_base[i, 0] + 0.12 * s(0.02, 0.08), blob_base[i, 1] + 0.12 * s(0.02, 0.08),
                  np.full_like(t, blob_base[i, 2])]),
        np.broadcast_to(blob_colour[i][:, None], (3, len(t)))]) for i in range(n_blobs)])  # (K, 6, T)
    return [FrameState(float(yaw[i]), float(pitch[i]), float(roll[i]), float(gaze_pitch[i]),
                       float(gaze_yaw[i]), float(closure[i]), float(mouth[i]), float(smile[i]),
                       float(azimuth[i]), float(elevation[i]), float(intensity[i]), float(ambient[i]),
                       float(tx[i]), float(ty[i]), float(scale[i]), background[:, i].copy(),
                       blobs[:, :, i].copy()) for i in range(n_frames)]


def neutral_state(**changes) -> FrameState:
    """A frontal, evenly lit, eyes-open state (for previews and tests), with `changes` applied."""
    values = dict(yaw=0.0, pitch=0.0, roll=0.0, gaze_pitch=0.0, gaze_yaw=0.0, eye_closure=0.0,
                  mouth_open=0.0, smile=0.2, light_azimuth=20.0, light_elevation=25.0,
                  light_intensity=0.7, ambient=0.45, tx=0.0, ty=0.0, scale=1.0,
                  background=np.array([90, 120, 160, 200, 210, 220, 1.2]),
                  blobs=np.array([[0.15, 0.2, 0.12, 220, 200, 90]]))
    values.update(changes)
    return FrameState(**values)


# ---------------------------------------------------------------------------------------- drawing

def _fix(points: np.ndarray, offset=(0.0, 0.0)) -> np.ndarray:
    """Pixel coordinates as cv2 fixed-point int32 (pixel centres at integers)."""
    return np.round((np.asarray(points) - offset) * _ONE).astype(np.int32)


def _poly(img, points, colour, offset=(0.0, 0.0)) -> None:
    cv2.fillPoly(img, [_fix(points, offset)], colour, cv2.LINE_AA, _SHIFT)


def _line(img, points, colour, width, offset=(0.0, 0.0), closed=False) -> None:
    cv2.polylines(img, [_fix(points, offset)], closed, colour, max(1, int(round(width))), cv2.LINE_AA, _SHIFT)


def _shade(colour, factor) -> tuple[float, ...]:
    return tuple(float(min(255.0, c * factor)) for c in colour)


def _background(state: FrameState, width: int, height: int) -> np.ndarray:
    small = (max(2, width // 8), max(2, height // 8))
    gx, gy = np.meshgrid(np.linspace(-1, 1, small[0]), np.linspace(-1, 1, small[1]))
    angle = state.background[6]
    g = np.clip(0.5 + 0.5 * (gx * np.cos(angle) + gy * np.sin(angle)), 0, 1)[..., None]
    top, bottom = state.background[:3], state.background[3:6]
    img = cv2.resize((top + (bottom - top) * g).astype(np.float32), (width, height),
                     interpolation=cv2.INTER_LINEAR).astype(np.uint8)
    side = min(width, height)
    for x, y, r, *rgb in state.blobs:
        cv2.circle(img, (int(x * width * _ONE), int(y * height * _ONE)), int(r * side * _ONE),
                   tuple(float(c) for c in rgb), -1, cv2.LINE_AA, _SHIFT)
    return img


class _Camera:
    """Pinhole camera placing the head for one state in a width x height frame."""

    def __init__(self, state: FrameState, width: int, height: int, face_scale: float):
        side = min(width, height)
        self.focal = float(width)  # the default of dfjax.faces.pose.estimate_pose: a ~53 degree webcam
        self.cx, self.cy = width / 2.0, height / 2.0
        z = self.focal * _FACE_WIDTH_MM / (face_scale * side * state.scale)
        self.rotation = rotation_from_euler(state.yaw, state.pitch, state.roll)
        per_px = z / self.focal
        # A point 5 mm below the head centre sits at the frame centre + shift, so hair and chin fit.
        self.translation = np.array([state.tx * side * per_px, state.ty * side * per_px - 5.0, z])

    def head(self, points: np.ndarray) -> np.ndarray:
        """Camera coordinates of points that move with the head."""
        return points @ self.rotation.T + self.translation

    def body(self, points: np.ndarray) -> np.ndarray:
        """Camera coordinates of points that only translate (neck, shoulders)."""
        return points + self.translation

    def project(self, cam: np.ndarray) -> np.ndarray:
        return self.focal * cam[:, :2] / cam[:, 2:3] + (self.cx, self.cy)


def _light(state: FrameState) -> np.ndarray:
    """Unit vector toward the light, camera coordinates."""
    a, e = np.radians([state.light_azimuth, state.light_elevation])
    return np.array([np.sin(a) * np.cos(e), -np.sin(e), -np.cos(a) * np.cos(e)])


def _lambert(state: FrameState, normal_model: np.ndarray, rotation: np.ndarray | None) -> float:
    n = normal_model if rotation is None else rotation @ normal_model
    n = n / np.linalg.norm(n)
    return state.ambient + state.light_intensity * max(0.0, float(n @ _light(state)))


def _draw_context(img: np.ndarray, ctx: Identity, state: FrameState, cam: _Camera) -> None:
    """Everything around the face that a face swap keeps: clothes, neck, hair, ears."""
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    shoulders = np.stack([180 * np.cos(angles), 225 + 80 * np.sin(angles), np.full(24, 40.0)], 1)
    clothes = _shade(ctx.clothes, _lambert(state, np.array([0, -0.4, -1.0]), None))
    _poly(img, cam.project(cam.body(shoulders)), clothes)
    neck = np.array([[-40, 20, 20], [40, 20, 20], [46, 190, 20], [-46, 190, 20]], dtype=np.float64)
    neck_colour = _shade(ctx.skin, 0.72 * _lambert(state, np.array([0, 0.3, -1.0]), None))
    _poly(img, cam.project(cam.body(neck)), neck_colour)
    hair_colour = ctx.skin if ctx.hair_style == "bald" else ctx.hair
    hair_colour = _shade(hair_colour, _lambert(state, np.array([0, -0.6, -0.8]), cam.rotation))
    for piece in sd.hair_pieces(ctx):
        hull = cv2.convexHull(_fix(cam.project(cam.head(piece))))
        cv2.fillConvexPoly(img, hull, hair_colour, cv2.LINE_AA, _SHIFT)
    outlines = sd.ears(ctx)
    if outlines is not None:
        for side, outline in zip((-1.0, 1.0), outlines):
            normal = cam.rotation @ np.array([side, 0.0, -0.35])
            if normal[2] / np.linalg.norm(normal) > 0.25:
                continue  # turned away: behind the head
            colour = _shade(ctx.skin, 0.9 * _lambert(state, np.array([side, 0.0, -0.35]), cam.rotation))
            projected = cam.project(cam.head(outline))
            _poly(img, projected, colour)
            inner = projected.mean(axis=0) + 0.55 * (projected - projected.mean(axis=0))
            _line(img, inner[3:12], _shade(colour, 0.75), 1)


def _draw_eye(face: np.ndarray, contour: np.ndarray, iris: np.ndarray, iris_r: float, squash: float,
              angle: float, identity: Identity, closure: float, eye_w: float) -> None:
    """Lid lines, then the eye white, iris and pupil clipped to the opening. Points are ROI pixels.

    The lines go first so the opening inside the contour stays clear of lashes. The iris is a disc
    seen at an angle: an ellipse `squash` times narrower along `angle` (degrees).
    """
    _line(face, contour[[0, 1, 2, 3]], (40, 28, 28), max(1.0, 0.09 * eye_w))
    _line(face, contour[[3, 4, 5, 0]], _shade(identity.skin, 0.7), max(1.0, 0.04 * eye_w))
    if closure < 0.85:
        x0, y0 = np.floor(contour.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(contour.max(axis=0)).astype(int) + 2
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, face.shape[1]), min(y1, face.shape[0])
        if x1 > x0 and y1 > y0:
            patch = face[y0:y1, x0:x1]
            eye = patch.copy()
            _poly(eye, contour, (236, 234, 228), (x0, y0))
            centre = tuple(int(v) for v in _fix(iris, (x0, y0)))
            for scale, colour in ((1.0, identity.iris), (0.5, (14, 10, 10))):
                axes = (int(scale * squash * iris_r * _ONE), int(scale * iris_r * _ONE))
                cv2.ellipse(eye, centre, axes, angle, 0, 360, colour, -1, cv2.LINE_AA, _SHIFT)
            glint = _fix(iris + (-0.45 * iris_r, -0.45 * iris_r), (x0, y0))
            cv2.circle(eye, tuple(int(v) for v in glint), int(0.15 * iris_r * _ONE), (250, 250, 250), -1,
                       cv2.LINE_AA, _SHIFT)
            inside = np.zeros(patch.shape[:2], np.uint8)
            _poly(inside, contour, 255, (x0, y0))
            alpha = inside[..., None].astype(np.float32) / 255.0
            patch[:] = (eye * alpha + patch * (1.0 - alpha)).astype(np.uint8)


def _draw_mouth(face: np.ndarray, p: np.ndarray, teeth: np.ndarray, identity: Identity, width: float) -> None:
    """Lips, and when open the dark mouth and the upper teeth. Points are ROI pixels."""
    _poly(face, p[48:60], identity.lips)
    gap = np.linalg.norm(p[66] - p[62])
    if gap > 0.8:
        _poly(face, p[60:68], (70, 24, 30))
        _poly(face, teeth, (238, 236, 226))
        _poly(face, p[[48, 59, 58, 57, 56, 55, 54, 64, 65, 66, 67, 60]], identity.lips)
        _poly(face, p[[48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60]], identity.lips)
    _line(face, p[[48, 60, 61, 62, 63, 64, 54]], _shade(identity.lips, 0.55), max(1.0, 0.012 * width))


def _draw_brows(face: np.ndarray, cam: _Camera, pts3d: np.ndarray, identity: Identity, offset) -> None:
    """Brows as 3-D bands around the brow points, thickest near the middle of the face."""
    taper = np.array([0.45, 0.8, 1.0, 1.0, 0.9])
    for brow, t in ((slice(17, 22), taper), (slice(22, 27), taper[::-1])):
        half = np.array([0.0, 1.0, 0.0]) * (identity.brow_thickness * t / 2)[:, None]
        outline = np.concatenate([pts3d[brow] - half, (pts3d[brow] + half)[::-1]])
        _poly(face, cam.project(cam.head(outline)), identity.brows, offset)


# Soft ambient-occlusion darkening (points, factor): eye sockets, under the nose, under the lower lip.
_OCCLUSION = [([17, 18, 19, 20, 21, 39, 38, 37, 36], 0.72), ([22, 23, 24, 25, 26, 45, 44, 43, 42], 0.72),
              ([31, 32, 33, 34, 35, 52, 51, 50], 0.82), ([59, 58, 57, 56, 55, 10, 9, 8, 7, 6], 0.9)]


def _draw_face(img: np.ndarray, ident: Identity, state: FrameState, cam: _Camera,
               pts3d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draws the shaded face; returns its mask (H, W) uint8 and the pupil centres (2, 2)."""
    height, width = img.shape[:2]
    camp = cam.head(pts3d)
    p2 = cam.project(camp)
    centres = eyeball_centres(ident.face[:68])
    radii = EYEBALL_RADIUS_TO_EYE_WIDTH * np.linalg.norm(ident.face[[39, 45]] - ident.face[[36, 42]], axis=1)
    pupils3d = centres + radii[:, None] * gaze_vector(state.gaze_pitch, state.gaze_yaw)
    pupils = cam.project(cam.head(pupils3d))
    mask = np.zeros((height, width), np.uint8)
    x0, y0 = np.maximum(np.floor(p2.min(axis=0)).astype(int) - 3, 0)
    x1, y1 = np.minimum(np.ceil(p2.max(axis=0)).astype(int) + 4, (width, height))
    if x1 <= x0 or y1 <= y0:
        return mask, pupils
    off = (x0, y0)
    h, w = y1 - y0, x1 - x0
    face_px = np.linalg.norm(p2[16] - p2[0])

    # Lambert shading of the mesh, painted far to near, then smoothed inside the face only.
    a, b, c = camp[MESH[:, 0]], camp[MESH[:, 1]], camp[MESH[:, 2]]
    normals = np.cross(b - a, c - a)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-9
    lam = state.ambient + state.light_intensity * np.clip(normals @ _light(state), 0.0, None)
    shade = np.zeros((h, w), np.float32)
    corners = _fix(p2, off)[MESH]
    for i in np.argsort(-(a[:, 2] + b[:, 2] + c[:, 2])):
        cv2.fillConvexPoly(shade, corners[i], float(lam[i]), cv2.LINE_8, _SHIFT)
    inside = (shade > 0).astype(np.float32)
    occlusion = np.ones_like(shade)
    for region, value in _OCCLUSION:
        cv2.fillPoly(occlusion, [_fix(p2[region], off)], value, cv2.LINE_8, _SHIFT)
    shade *= occlusion
    k = max(3, int(face_px / 6) | 1)
    shade = cv2.GaussianBlur(shade, (k, k), 0) / np.maximum(cv2.GaussianBlur(inside, (k, k), 0), 1e-3)

    face = np.empty((h, w, 3), np.uint8)
    face[:] = ident.skin
    p = p2 - off
    if ident.beard > 0:
        colour = tuple(float(s + (t - s) * 0.6 * ident.beard) for s, t in zip(ident.skin, ident.brows))
        _poly(face, p[BEARD], colour)
    nostril = _shade(ident.skin, 0.45)
    for i, j in ((31, 32), (35, 34)):
        centre = _fix(p[i] * 0.55 + p[j] * 0.45 + (p[33] - p[30]) * -0.08)
        cv2.circle(face, tuple(int(v) for v in centre), int(max(0.6, 0.018 * face_px) * _ONE), nostril, -1,
                   cv2.LINE_AA, _SHIFT)
    _line(face, p[31:36], _shade(ident.skin, 0.72), max(1.0, 0.012 * face_px))
    teeth3d = pts3d[60:65] + [0.0, min(3.5, 0.6 * np.linalg.norm(pts3d[66] - pts3d[62])), 0.0]
    teeth = cam.project(cam.head(np.concatenate([pts3d[60:65], teeth3d[::-1]]))) - off
    _draw_mouth(face, p, teeth, ident, face_px)
    gaze_cam = cam.rotation @ gaze_vector(state.gaze_pitch, state.gaze_yaw)
    for e, eye in enumerate((slice(36, 42), slice(42, 48))):
        eye_w = np.linalg.norm(p[eye][3] - p[eye][0])
        pupil_cam = cam.head(pupils3d[e:e + 1])[0]
        iris_r = _IRIS_TO_EYE_WIDTH * np.linalg.norm(ident.face[eye][3] - ident.face[eye][0]) \
            * cam.focal / pupil_cam[2]
        squash = max(0.25, float(-(gaze_cam @ pupil_cam) / np.linalg.norm(pupil_cam)))
        angle = float(np.degrees(np.arctan2(gaze_cam[1], gaze_cam[0])))
        _draw_eye(face, p[eye], pupils[e] - off, iris_r, squash, angle, ident, state.eye_closure, eye_w)
    _draw_brows(face, cam, pts3d, ident, off)

    alpha = cv2.GaussianBlur(inside, (3, 3), 0)
    roi = img[y0:y1, x0:x1]
    lit = face.astype(np.float32) * shade[..., None]
    roi[:] = np.clip(roi + (lit - roi) * alpha[..., None], 0, 255).astype(np.uint8)
    mask[y0:y1, x0:x1] = np.where(alpha > 0, 255, 0).astype(np.uint8)
    return mask, pupils


def render_frame(identity: Identity, state: FrameState, size: int | tuple[int, int] = (128, 128), *,
                 context: Identity | None = None, face_scale: float = 0.42) -> tuple[np.ndarray, GroundTruth]:
    """Render `identity` in `state` as an RGB uint8 (H, W, 3) frame with its exact ground truth.

    context: the identity whose hair, ears, neck and clothes surround the face (default: the same).
    Rendering B with `context=A` in A's state is the ground truth of swapping B's face into A's video.
    face_scale: the face's width (jaw to jaw) as a fraction of the frame's short side.
    """
    width, height = (size, size) if isinstance(size, int) else size
    ctx = identity if context is None else context
    cam = _Camera(state, width, height, face_scale)
    pts3d = expressed_face(identity, state.eye_closure, state.mouth_open, state.smile)
    img = _background(state, width, height)
    _draw_context(img, ctx, state, cam)
    mask, pupils = _draw_face(img, identity, state, cam, pts3d)
    front = sd.fringe(ctx)
    if front is not None:
        outline = cam.project(cam.head(front))
        _poly(img, outline, _shade(ctx.hair, 1.08 * _lambert(state, np.array([0, -0.3, -1.0]), cam.rotation)))
        covered = np.zeros_like(mask)
        cv2.fillPoly(covered, [_fix(outline)], 255, cv2.LINE_8, _SHIFT)
        mask[cv2.erode(covered, np.ones((3, 3), np.uint8)) > 0] = 0  # only where the hair is opaque
    landmarks = cam.project(cam.head(pts3d[:68]))
    truth = GroundTruth(
        landmarks=landmarks.astype(np.float32),
        pose=np.array([state.yaw, state.pitch, state.roll], np.float32),
        gaze=np.array([state.gaze_pitch, state.gaze_yaw], np.float32),
        blink=bool(state.eye_closure > BLINK_THRESHOLD), mask=mask, pupils=pupils.astype(np.float32),
        eye_closure=state.eye_closure, mouth_open=state.mouth_open, rotation=cam.rotation,
        translation=cam.translation, focal=cam.focal)
    return img, truth
