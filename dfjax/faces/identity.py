"""Who a face is: dlib's 128-d face descriptor (ResNet, from `face_recognition_models`).

Used to pick the face nearest a reference photo in multi-face frames (`--identity`) and, later, to
score swaps by identity distance. Distances under about 0.6 mean the same person for dlib's model.
"""

from __future__ import annotations

import dlib
import numpy as np

from dfjax.faces.landmarks import to_shape

SAME_PERSON_DISTANCE = 0.6


class FaceEncoder:
    def __init__(self):
        import face_recognition_models  # the model files (100 MB); imported where a model is loaded
        self._net = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())

    def __call__(self, image: np.ndarray, landmarks: np.ndarray, box) -> np.ndarray:
        """The descriptor (128,) float32 of the face with these 68 landmarks."""
        return np.asarray(self._net.compute_face_descriptor(image, to_shape(landmarks, box)), np.float32)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
