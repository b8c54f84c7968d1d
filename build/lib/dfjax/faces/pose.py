"""Head pose from 68 landmarks: the rotation and position of the 3-D mean head that best explain them.

Pose conditions the generator and scores a swap (does the fake keep the source's head pose?), so
it is solved the standard way: cv2.solvePnP of dfjax.faces.model3d.MODEL_68 against the landmarks,
with a pinhole camera whose focal length defaults to the image width (about a 53 degree field of
view, typical of phone and webcam video), principal point at the image centre and no distortion.
Angles follow model3d's conventions: positive yaw turns the face toward image right, positive
pitch tilts it up, positive roll tilts the head clockwise in the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from dfjax.faces.model3d import MODEL_68, camera_matrix, euler_from_rotation


@dataclass(frozen=True)
class HeadPose:
    """rotation maps model to camera coordinates; translation is the head centre in camera mm."""

    rotation: np.ndarray = field(repr=False)
    translation: np.ndarray = field(repr=False)
    yaw: float
    pitch: float
    roll: float

    def as_dict(self, rotation: bool = False) -> dict:
        """{"yaw", "pitch", "roll"} in degrees (0.01 precision), plus the 3x3 rotation if asked."""
        # + 0.0 turns a rounded -0.0 into 0.0
        out = {name: round(getattr(self, name), 2) + 0.0 for name in ("yaw", "pitch", "roll")}
        if rotation:
            out["rotation"] = np.round(self.rotation, 6).tolist()
        return out


def estimate_pose(
    landmarks: np.ndarray, image_width: int, image_height: int, focal: float | None = None
) -> HeadPose:
    """Fit the 3-D head to (68, 2) frame-pixel landmarks; focal length in pixels (default: width)."""
    points = np.ascontiguousarray(landmarks, dtype=np.float64).reshape(68, 1, 2)
    model = np.ascontiguousarray(MODEL_68, dtype=np.float64)
    camera = camera_matrix(float(focal or image_width), image_width / 2.0, image_height / 2.0)
    no_distortion = np.zeros(4)
    # EPnP gives a closed-form start; Levenberg-Marquardt (ITERATIVE) then refines the
    # reprojection error, which EPnP alone leaves a few degrees off on noisy landmarks.
    ok, rvec, tvec = cv2.solvePnP(model, points, camera, no_distortion, flags=cv2.SOLVEPNP_EPNP)
    if not ok:
        raise ValueError("Head pose could not be solved from these landmarks.")
    ok, rvec, tvec = cv2.solvePnP(model, points, camera, no_distortion, rvec, tvec,
                                  useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise ValueError("Head pose could not be solved from these landmarks.")
    rotation, _ = cv2.Rodrigues(rvec)
    yaw, pitch, roll = euler_from_rotation(rotation)
    return HeadPose(rotation=rotation, translation=tvec.ravel(), yaw=yaw, pitch=pitch, roll=roll)
