"""Face masks from 68 landmarks: where a swapped face is blended and what a detector is told is fake.

`MASKS` holds the kinds by name, each a function giving the points whose convex hull is the mask.
"hull" is the convex hull of the landmarks (jaw, brows, nose, eyes, mouth): it stops at the
brows. "extended" also covers the forehead, like faceswap's "extended" mask: the brow points are
raised along the face's own up direction before taking the hull, so the mask follows head roll.
Landmarks may be in any coordinates (a frame, or an aligned crop after transform_points). A new
kind is one registered function.
"""

from __future__ import annotations

import cv2
import numpy as np

from dfjax.registry import Registry

MASKS = Registry("mask", discover="dfjax.faces")  # a new mask: a registered function in dfjax/faces

# How far the brows are raised for "extended", as a fraction of their height above the nose tip
# along the face's up axis. Half of it adds a forehead band about as tall as the nose is long.
FOREHEAD_RAISE = 0.5

_SUBPIXEL_BITS = 4  # cv2 fixed-point fill: landmarks keep 1/16 px precision


@MASKS.register("hull")
def hull_points(landmarks: np.ndarray) -> np.ndarray:
    """The landmarks as they are: the hull stops at the brows."""
    return landmarks


@MASKS.register("extended")
def forehead_points(landmarks: np.ndarray) -> np.ndarray:
    """The landmarks with the brows (17..26) lifted to cover the forehead."""
    points = landmarks.copy()
    up = points[27] - points[8]  # chin -> nose bridge: the face's up axis, rotation-aware
    up /= max(np.linalg.norm(up), 1e-9)
    height = (points[17:27] - points[30]) @ up  # each brow point's height above the nose tip
    points[17:27] += FOREHEAD_RAISE * np.maximum(height, 0.0)[:, None] * up
    return points


def landmark_mask(landmarks: np.ndarray, height: int, width: int, kind: str = "hull") -> np.ndarray:
    """A (height, width) uint8 mask, 255 inside the face region of `kind`, 0 elsewhere."""
    if kind not in MASKS:  # a caller's mistake: options are checked where they are read
        raise ValueError(f"Unknown mask kind {kind!r}; choose one of {', '.join(MASKS.names())}.")
    points = MASKS.get(kind)(np.asarray(landmarks, dtype=np.float64))
    hull = cv2.convexHull(np.round(points * (1 << _SUBPIXEL_BITS)).astype(np.int32))
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return mask
