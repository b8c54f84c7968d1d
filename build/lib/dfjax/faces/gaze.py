"""Eye gaze and blinks from one image and its 68 landmarks.

A swap should keep where the source looks and when it blinks, and a detector can use both, so
every extracted face records them. The pupil is searched only inside each eye's landmark contour
(36-41, 42-47): after a small blur, the darkest pixels there form the iris, and the centroid of
their largest blob is taken as the pupil. Its offset from the contour centre, measured along the
eye's own corner-to-corner axis and normalised by the eye width, is turned into angles with the
eyeball of dfjax.faces.model3d (radius EYEBALL_RADIUS_TO_EYE_WIDTH eye widths): the exact inverse
of model3d.pupil_points for a frontal eye. Gaze is eye-in-head: positive yaw looks toward image
right, positive pitch looks up. Closed eyes are found by the eye aspect ratio (Soukupova & Cech,
"Real-Time Eye Blink Detection using Facial Landmarks", 2016).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from dfjax.faces.model3d import EYEBALL_RADIUS_TO_EYE_WIDTH, LEFT_EYE, RIGHT_EYE

# Below this eye aspect ratio an eye counts as closed (Soukupova & Cech use 0.2 on 300-W points).
BLINK_THRESHOLD = 0.2
# The iris is taken as the darkest quarter of the eye opening (or the darker half of the range
# when the iris is smaller than that), so it stays inside the iris whether the eye is wide or narrow.
IRIS_PERCENTILE = 25.0
# Blur and lid margin, as fractions of the eye width: they remove sensor noise and keep the dark
# lash line on the contour out of the search.
BLUR_SIGMA = 0.03
LID_MARGIN = 0.04


@dataclass(frozen=True)
class Gaze:
    """Eye-in-head gaze in degrees; `right`/`left` are (pitch, yaw) of the subject's eyes.

    pitch and yaw average the open eyes and are NaN when both are closed (blink); a closed eye's
    own angles are NaN too. ear is the eye aspect ratio (right, left).
    """

    pitch: float
    yaw: float
    right: tuple[float, float]
    left: tuple[float, float]
    ear: tuple[float, float]
    blink: bool

    def as_dict(self) -> dict:
        """JSON-ready: angles to 0.01 degree, EAR to 0.001, None where an angle is unknown."""
        def angle(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 2) + 0.0  # + 0.0: no "-0.0"

        return {
            "pitch": angle(self.pitch),
            "yaw": angle(self.yaw),
            "right": {"pitch": angle(self.right[0]), "yaw": angle(self.right[1])},
            "left": {"pitch": angle(self.left[0]), "yaw": angle(self.left[1])},
            "ear": [round(e, 3) for e in self.ear],
            "blink": self.blink,
        }


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """(|p1 - p5| + |p2 - p4|) / (2 |p0 - p3|) for one eye's six contour points."""
    eye = np.asarray(eye, dtype=np.float64)
    vertical = np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])
    return float(vertical / max(2.0 * np.linalg.norm(eye[0] - eye[3]), 1e-9))


def find_pupil(grey: np.ndarray, eye: np.ndarray) -> np.ndarray | None:
    """Pupil centre (x, y) in image pixels inside the six-point eye contour, or None if not seen."""
    width = np.linalg.norm(eye[3] - eye[0])
    margin = max(2, int(math.ceil(0.2 * width)))
    x0, y0 = np.floor(eye.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(eye.max(axis=0)).astype(int) + margin
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, grey.shape[1]), min(y1, grey.shape[0])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    patch = cv2.GaussianBlur(grey[y0:y1, x0:x1].astype(np.float32), (0, 0),
                             max(BLUR_SIGMA * width, 0.5))
    inside = np.zeros(patch.shape, dtype=np.uint8)
    cv2.fillPoly(inside, [np.round((eye - [x0, y0]) * 16).astype(np.int32)], 1, shift=4)
    lid = int(round(LID_MARGIN * width))
    if lid > 0:
        inside = cv2.erode(inside, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * lid + 1,) * 2))
    values = patch[inside > 0]
    if values.size < 4 or values.max() - values.min() < 1.0:
        return None
    threshold = min(np.percentile(values, IRIS_PERCENTILE), (values.min() + values.max()) / 2)
    dark = ((patch <= threshold) & (inside > 0)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    if count < 2:
        return None
    blob = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    ys, xs = np.nonzero(blob)
    weights = threshold - patch[ys, xs] + 1.0  # darker pixels pull harder: the pupil, not the rim
    return np.array([x0 + np.average(xs, weights=weights), y0 + np.average(ys, weights=weights)])


def eye_angles(pupil: np.ndarray, eye: np.ndarray) -> tuple[float, float]:
    """(pitch, yaw) in degrees of a pupil relative to its eye contour, on model3d's eyeball."""
    axis = eye[3] - eye[0]
    width = np.linalg.norm(axis)
    right = axis / width  # along the eye toward image right
    up = np.array([right[1], -right[0]])  # perpendicular, toward the top of the head
    offset = np.asarray(pupil) - eye.mean(axis=0)
    radius = EYEBALL_RADIUS_TO_EYE_WIDTH * width
    pitch = math.asin(np.clip(offset @ up / radius, -1.0, 1.0))
    yaw = math.asin(np.clip(offset @ right / (radius * math.cos(pitch)), -1.0, 1.0))
    return math.degrees(pitch), math.degrees(yaw)


def estimate_gaze(
    image: np.ndarray, landmarks: np.ndarray, blink_threshold: float = BLINK_THRESHOLD
) -> Gaze:
    """Gaze and blink of the face with these (68, 2) landmarks in this RGB (or grey) image."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    landmarks = np.asarray(landmarks, dtype=np.float64)
    per_eye, ears = [], []
    for part in (RIGHT_EYE, LEFT_EYE):
        eye = landmarks[part]
        ear = eye_aspect_ratio(eye)
        ears.append(ear)
        pupil = find_pupil(grey, eye) if ear >= blink_threshold else None
        per_eye.append((math.nan, math.nan) if pupil is None else eye_angles(pupil, eye))
    seen = [angles for angles in per_eye if not math.isnan(angles[0])]
    pitch, yaw = np.mean(seen, axis=0) if seen else (math.nan, math.nan)
    return Gaze(pitch=float(pitch), yaw=float(yaw), right=per_eye[0], left=per_eye[1],
                ear=(ears[0], ears[1]), blink=all(ear < blink_threshold for ear in ears))
