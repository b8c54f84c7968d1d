"""Face detection: dlib's HOG frontal detector (default), its MMOD CNN, or HOG with the CNN where HOG
finds nothing ("hog,cnn"), on a downscaled copy.

Detecting on a copy whose long side is at most `max_side` pixels and mapping the boxes back is the
main reason extraction runs several times faster than full-resolution detection; faces smaller
than about 80 px in the downscaled copy are then found only with `upsample`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import dlib
import numpy as np

DETECTORS = ("hog", "cnn", "hog,cnn")  # "hog,cnn": the CNN only on images where HOG finds no face


@dataclass(frozen=True)
class Detection:
    box: np.ndarray  # float32 [x0, y0, x1, y1] in frame pixels
    score: float

    @property
    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))


class FaceDetector:
    """Finds face boxes in RGB images; boxes come back in the input image's coordinates."""

    def __init__(self, kind: str = "hog", max_side: int = 640, upsample: int = 0):
        if kind not in DETECTORS:
            raise ValueError(f"unknown detector {kind!r}; choose one of {DETECTORS}")
        self.kind, self.max_side, self.upsample = kind, max_side, upsample
        self._stages = kind.split(",")
        if "hog" in self._stages:
            self._hog = dlib.get_frontal_face_detector()
        if "cnn" in self._stages:
            import face_recognition_models  # the model files (100 MB); imported where a model is loaded
            self._cnn = dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())

    def _run(self, image: np.ndarray, upsample: int) -> list[Detection]:
        for stage in self._stages:  # the next stage only where the previous one found nothing
            if stage == "hog":
                rects, scores, _ = self._hog.run(image, upsample, 0.0)
                pairs = list(zip(rects, scores))
            else:
                pairs = [(d.rect, d.confidence) for d in self._cnn(image, upsample)]
            if pairs:
                break
        return [Detection(np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32), float(s))
                for r, s in pairs]

    def __call__(self, image: np.ndarray, max_side: int | None = None, upsample: int | None = None) -> list[Detection]:
        max_side = self.max_side if max_side is None else max_side
        upsample = self.upsample if upsample is None else upsample
        scale = min(1.0, max_side / max(image.shape[:2])) if max_side else 1.0
        small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        found = self._run(small, upsample)
        return [Detection(d.box / scale, d.score) for d in found]

    def in_region(self, image: np.ndarray, box: np.ndarray, margin: float = 0.6, face_px: int = 100) -> list[Detection]:
        """Detect only near `box`: crop it with a margin, scale so the face is about `face_px` wide.

        A cheap check that a tracked face is still there (about 2 ms instead of 35 ms at 720p).
        """
        h, w = image.shape[:2]
        bw, bh = box[2] - box[0], box[3] - box[1]
        x0, y0 = int(max(0, box[0] - margin * bw)), int(max(0, box[1] - margin * bh))
        x1, y1 = int(min(w, box[2] + margin * bw)), int(min(h, box[3] + margin * bh))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return []
        scale = min(1.0, face_px / max(bw, 1.0))
        crop = image[y0:y1, x0:x1]
        if scale < 1.0:
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        offset = np.array([x0, y0, x0, y0], np.float32)
        return [Detection(d.box / scale + offset, d.score) for d in self._run(np.ascontiguousarray(crop), 0)]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
