"""Motion retargeting: a driver's expression, head pose, gaze and blinks, moved onto another identity.

Two faces differ in shape (a wide mouth, close-set eyes), so a driver's landmarks cannot be drawn
on the target as they are. Each identity gets a `Reference`: its neutral landmarks (the per-point
median over its frames, in aligned-crop coordinates, where the alignment has already removed each
frame's position, scale and in-plane rotation), its inter-ocular distance and its reference head
pose (the median). `retarget` then transfers

- expression (and the layout change a head turn brings) as the driver's offsets from its own
  neutral landmarks, scaled by the ratio of inter-ocular distances, added to the target's neutral;
- head pose relative to each identity's reference: target reference + (driver pose - driver reference);
- gaze and blinks unchanged (eye-in-head angles and eye openness need no geometry).

`retarget_absolute` is the face-swap variant (`dfjax swap --pose absolute`): the head stays the
source's, so pose is copied, and each identity's landmark layout is a `PoseLayout`, its crop
landmarks fitted linearly on (1, yaw, pitch, roll) over its frames. The target's layout at the
source's pose plus the source's residual from its own layout (scaled as above) puts the target's
eyes and mouth where that identity's face would sit in that pose, rather than where its median
frame had them: on synthetic ground truth the eye centres land 0.3 px from the exact swap's instead
of 1.9 px (64 px crops of 256 px frames).

`controls_from_meta` reads these controls from face-set metadata (`dfjax extract`, `dfjax synth`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dfjax.faces.align import transform_points
from dfjax.faces.gaze import BLINK_THRESHOLD

# Eye openness from the eye aspect ratio: 0 at and below EAR_CLOSED, 1 at and above EAR_OPEN, so the
# blink threshold (0.2) sits at an openness of 0.5.
EAR_CLOSED = BLINK_THRESHOLD - 0.05
EAR_OPEN = BLINK_THRESHOLD + 0.05


class Reference(NamedTuple):
    """One identity's neutral geometry: landmarks (68, 2), inter-ocular distance, pose (3,) in degrees."""

    neutral: np.ndarray
    iod: float
    pose: np.ndarray


class Controls(NamedTuple):
    """Per-frame face controls: landmarks (N, 68, 2) aligned-crop pixels, pose (N, 3) yaw/pitch/roll,
    gaze (N, 2) pitch/yaw (degrees), eyes_open (N, 2) in [0, 1] (subject's right, left)."""

    landmarks: np.ndarray
    pose: np.ndarray
    gaze: np.ndarray
    eyes_open: np.ndarray


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the two eye centres, (...,) for landmarks (..., 68, 2)."""
    landmarks = np.asarray(landmarks, np.float64)
    return np.linalg.norm(landmarks[..., 36:42, :].mean(-2) - landmarks[..., 42:48, :].mean(-2), axis=-1)


def reference_of(landmarks: np.ndarray, poses: np.ndarray) -> Reference:
    """The Reference of an identity from its frames' aligned-crop landmarks (N, 68, 2) and poses (N, 3)."""
    landmarks = np.asarray(landmarks, np.float64).reshape(-1, 68, 2)
    poses = np.asarray(poses, np.float64).reshape(-1, 3)
    if len(landmarks) == 0:
        raise ValueError("a reference needs at least one frame")
    neutral = np.median(landmarks, axis=0)
    return Reference(neutral=neutral, iod=float(np.median(inter_ocular(landmarks))), pose=np.median(poses, axis=0))


class PoseLayout(NamedTuple):
    """One identity's landmarks as a linear function of head pose: coef (4, 68, 2) on
    (1, yaw, pitch, roll) in degrees, and its median inter-ocular distance."""

    coef: np.ndarray
    iod: float

    def at(self, pose: np.ndarray) -> np.ndarray:
        """The layout (..., 68, 2) at poses (..., 3)."""
        pose = np.asarray(pose, np.float64)
        design = np.concatenate([np.ones((*pose.shape[:-1], 1)), pose], axis=-1)
        return np.einsum("...k,kpc->...pc", design, self.coef)


def pose_layout_of(landmarks: np.ndarray, poses: np.ndarray) -> PoseLayout:
    """The PoseLayout of an identity from its frames' aligned-crop landmarks (N, 68, 2) and poses (N, 3)
    (least squares; with too few or too similar poses the fit keeps the smallest coefficients)."""
    landmarks = np.asarray(landmarks, np.float64).reshape(-1, 68, 2)
    poses = np.asarray(poses, np.float64).reshape(-1, 3)
    if len(landmarks) == 0:
        raise ValueError("a pose layout needs at least one frame")
    design = np.concatenate([np.ones((len(poses), 1)), poses], axis=1)
    coef, *_ = np.linalg.lstsq(design, landmarks.reshape(len(landmarks), -1), rcond=None)
    return PoseLayout(coef=coef.reshape(4, 68, 2), iod=float(np.median(inter_ocular(landmarks))))


def retarget_absolute(landmarks: np.ndarray, pose: np.ndarray, gaze: np.ndarray, eyes_open: np.ndarray,
                      source: PoseLayout, target: PoseLayout) -> Controls:
    """The source's controls on the target in the source's own head pose: the target's layout at that
    pose plus the source's residual from its layout, scaled by inter-ocular distance."""
    landmarks, pose = np.asarray(landmarks, np.float64), np.asarray(pose, np.float64)
    scale = target.iod / max(source.iod, 1e-9)
    moved = target.at(pose) + (landmarks - source.at(pose)) * scale
    return Controls(moved, pose.copy(), np.asarray(gaze, np.float64).copy(), np.asarray(eyes_open, np.float64).copy())


def retarget(landmarks: np.ndarray, pose: np.ndarray, gaze: np.ndarray, eyes_open: np.ndarray,
             source_ref: Reference, target_ref: Reference) -> Controls:
    """The source's controls (any leading batch shape) re-expressed on the target identity."""
    landmarks = np.asarray(landmarks, np.float64)
    scale = target_ref.iod / max(source_ref.iod, 1e-9)
    moved = target_ref.neutral + (landmarks - source_ref.neutral) * scale
    new_pose = target_ref.pose + (np.asarray(pose, np.float64) - source_ref.pose)
    return Controls(moved, new_pose, np.asarray(gaze, np.float64).copy(), np.asarray(eyes_open, np.float64).copy())


def eyes_open_from_ear(ear: np.ndarray) -> np.ndarray:
    """Eye openness in [0, 1] from eye aspect ratios (a linear ramp around the blink threshold)."""
    return np.clip((np.asarray(ear, np.float64) - EAR_CLOSED) / (EAR_OPEN - EAR_CLOSED), 0.0, 1.0)


def _angle(value) -> float:
    return float("nan") if value is None else float(value)


def controls_from_meta(meta: list[dict]) -> Controls:
    """Controls of face-set records (meta.jsonl lines): landmarks mapped into the crop by each
    record's matrix; an unknown gaze (a blink) becomes NaN, which `render_maps` draws as straight ahead."""
    if not meta:
        raise ValueError("no face records")
    landmarks = np.stack([transform_points(np.asarray(m["landmarks"], np.float64).reshape(68, 2), m["matrix"])
                          for m in meta])
    pose = np.array([[m["pose"][k] for k in ("yaw", "pitch", "roll")] for m in meta], np.float64)
    gaze = np.array([[_angle(m["gaze"]["pitch"]), _angle(m["gaze"]["yaw"])] for m in meta], np.float64)
    ear = np.array([m.get("ear", [1.0, 1.0]) for m in meta], np.float64)
    return Controls(landmarks, pose, gaze, eyes_open_from_ear(ear))


__all__ = ["Controls", "PoseLayout", "Reference", "controls_from_meta", "eyes_open_from_ear", "inter_ocular",
           "pose_layout_of", "reference_of", "retarget", "retarget_absolute"]
