"""dlib's 68-point landmark predictor, and the index ranges of the 68-point (iBUG 300-W) scheme.

The model file ships in the `face_recognition_models` package, so nothing is downloaded.
"""

from __future__ import annotations

import functools

import dlib
import numpy as np

JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)   # the subject's right, on the image's left
LEFT_BROW = slice(22, 27)
NOSE = slice(27, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
MOUTH = slice(48, 68)


def to_rectangle(box) -> dlib.rectangle:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return dlib.rectangle(x0, y0, x1, y1)


def to_shape(landmarks: np.ndarray, box) -> dlib.full_object_detection:
    """A dlib shape from our (68, 2) array, for dlib routines such as the face descriptor."""
    points = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in landmarks])
    return dlib.full_object_detection(to_rectangle(box), points)


@functools.cache
def _shape_predictor() -> dlib.shape_predictor:
    """dlib's 68-point model, loaded once per process (0.4 CPU s; the face workers' server loads it and
    every worker forks with it)."""
    import face_recognition_models  # the model files (100 MB); imported where a model is loaded
    return dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


class LandmarkPredictor:
    """68 landmarks (float32 (68, 2), frame pixels) for a face box in an RGB image."""

    def __init__(self):
        self._predictor = _shape_predictor()

    def __call__(self, image: np.ndarray, box) -> np.ndarray:
        shape = self._predictor(image, to_rectangle(box))
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


def box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The box dlib's HOG detector would give for these landmarks (used to track between detections).

    dlib's detector boxes start a little left of and above the landmark extent and end above the
    chin; the offsets were measured on FaceForensics++ presenter videos.
    """
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    w, h = x1 - x0, y1 - y0
    return np.array([x0 - 0.05 * w, y0 - 0.15 * h, x1, y1 - 0.09 * h], np.float32)
