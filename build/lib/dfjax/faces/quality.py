"""Simple per-face quality measures for sorting and filtering face sets.

Blurry faces (motion, defocus, heavy compression) teach a generator to blur, so extraction
records a sharpness score; the inter-ocular distance is the 300-W normaliser for landmark errors
and a quick measure of how many pixels a face really has.
"""

from __future__ import annotations

import cv2
import numpy as np


def blur_score(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Variance of the Laplacian of the grey image (higher is sharper), inside `mask` if given.

    Scores depend on resolution and content, so compare faces of one size (aligned crops).
    """
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    laplacian = cv2.Laplacian(grey, cv2.CV_64F)
    if mask is None:
        return float(laplacian.var())
    inside = np.asarray(mask) > 0
    return float(laplacian[inside].var()) if inside.any() else 0.0


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2) centres of the right (36-41, image left) and left (42-47) eye contours."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    return np.stack([landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)])


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners (36 and 45), the 300-W normalisation."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    return float(np.linalg.norm(landmarks[45] - landmarks[36]))
