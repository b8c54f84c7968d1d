"""Face alignment: the similarity transform from a frame to an aligned face crop.

Every face set, model and conversion in dfjax works on crops made here, so the geometry matches
what faceswap and DeepFaceLab users know: the 51 inner landmarks (dlib points 17..67) are fitted
by least squares (Umeyama) to the classic 2-D mean face, which is then placed in a square crop
with the padding of the chosen face type. Matrices are 2x3 float64, mapping FRAME pixel
coordinates to CROP pixel coordinates in the cv2.warpAffine convention.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
from skimage.transform import SimilarityTransform

# The mean face of dlib's get_face_chip_details (dlib/image_transforms/interpolation.h,
# mean_face_shape_x / mean_face_shape_y): average positions of landmarks 17..67 normalised to
# [0, 1]. The original deepfakes/faceswap code (lib/aligner.py: mean_face_x / mean_face_y) and
# DeepFaceLab (facelib/LandmarksProcessor.py: landmarks_2D) use the same numbers.
_MEAN_FACE_X = (
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689,
)
_MEAN_FACE_Y = (
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482,
    0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326, 0.609345,
    0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733, 0.245099,
    0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099, 0.780233,
    0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805, 0.902192,
    0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746, 0.784792,
    0.824182, 0.831803, 0.824182,
)
MEAN_FACE_51 = np.stack([_MEAN_FACE_X, _MEAN_FACE_Y], axis=1)
"""(51, 2) float64 mean face for dlib landmarks 17..67, in template units ([0, 1] box)."""


class FaceType(NamedTuple):
    """How much of the head an aligned crop shows.

    padding: DeepFaceLab's padding. DFL measures it along the crop diagonal, so the crop side is
        (1 + 2 * sqrt(2) * padding) template widths, i.e. sqrt(2) * padding template widths are
        added on every side of the [0, 1] template box.
    shift_up: how far the crop centre moves up from the template centre, in template widths,
        to take in the forehead (whole_face) or the whole head (head), as DFL does.
    """

    padding: float
    shift_up: float


FACE_TYPES: dict[str, FaceType] = {
    # DFL "full face" (f): brows to chin, about 1.6 template widths (= faceswap's legacy crop).
    "face": FaceType(padding=0.2109375, shift_up=0.0),
    # DFL "whole face" (wf): adds the forehead; about 2.13 template widths.
    "whole_face": FaceType(padding=0.40, shift_up=0.07),
    # DFL "head": the whole head with hair; about 2.98 template widths. DFL also slides the
    # crop sideways with yaw; dfjax keeps it centred so the crop depends on the fit alone.
    "head": FaceType(padding=0.70, shift_up=0.50),
}


def template_points(size: int, face_type: str = "face", coverage: float = 1.0) -> np.ndarray:
    """Where MEAN_FACE_51 lands in a `size` x `size` crop of this face type and coverage."""
    if face_type not in FACE_TYPES:
        raise ValueError(f"Unknown face type {face_type!r}; choose one of {sorted(FACE_TYPES)}.")
    if not coverage > 0:
        raise ValueError(f"coverage must be > 0, got {coverage}.")
    padding, shift_up = FACE_TYPES[face_type]
    side = (1.0 + 2.0 * np.sqrt(2.0) * padding) * coverage  # template widths across the crop
    centre = np.array([0.5, 0.5 - shift_up])
    return (MEAN_FACE_51 - centre) * (size / side) + size / 2.0


def alignment_matrix(
    landmarks: np.ndarray, size: int, face_type: str = "face", coverage: float = 1.0
) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, translation) from the frame to the crop.

    landmarks: (68, 2) dlib points in frame pixels. coverage: the fraction of the face type's
    crop that is kept, as in faceswap (< 1 zooms in, > 1 zooms out).
    """
    dst = template_points(size, face_type, coverage)
    src = np.asarray(landmarks, dtype=np.float64)[17:]
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        transform = SimilarityTransform.from_estimate(src, dst)
        if not transform:
            raise ValueError("Could not fit the alignment: the landmarks are degenerate.")
        return transform.params[:2].copy()
    transform = SimilarityTransform()
    if not transform.estimate(src, dst):
        raise ValueError("Could not fit the alignment: the landmarks are degenerate.")
    return transform.params[:2].copy()


def warp_face(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Cut the aligned `size` x `size` crop out of `image` with the frame->crop `matrix`.

    A face that is shrunk is first reduced with cv2.resize(INTER_AREA), because warpAffine
    quietly treats INTER_AREA as bilinear and would alias; an enlarged face uses INTER_CUBIC.
    The border is reflected so crops at the frame edge have no black wedges for a model to learn.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    scale = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if scale >= 1.0:
        return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_REFLECT101)
    reduced = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    # cv2.resize maps frame pixel p to (p + 0.5) * scale - 0.5; undo that inside the matrix.
    on_reduced = np.hstack([matrix[:, :2] / scale,
                            matrix[:, 2:] + matrix[:, :2].sum(axis=1, keepdims=True)
                            * (0.5 / scale - 0.5)])
    return cv2.warpAffine(reduced, on_reduced, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT101)


def resize_points(points: np.ndarray, scale: float) -> np.ndarray:
    """Crop pixel coordinates after cv2.resize by `scale` (pixel centres: p -> (p + 0.5) * scale - 0.5)."""
    return (np.asarray(points, np.float64) + 0.5) * scale - 0.5


def resize_matrix(matrix: np.ndarray, scale: float) -> np.ndarray:
    """A frame->crop matrix for the crop resized by `scale` (as `resize_points`)."""
    out = np.asarray(matrix, np.float64) * scale
    out[:, 2] += 0.5 * scale - 0.5
    return out


def invert(matrix: np.ndarray) -> np.ndarray:
    """The crop->frame matrix of a frame->crop matrix (and vice versa)."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points; returns float64 (N, 2)."""
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]
