"""Face detectors by name, and `FaceDetector`, which runs one or a chain of them on a downscaled copy.

`FACE_DETECTORS` holds the detectors, each registered where it is defined: dlib's HOG frontal
detector ("hog", the default: fast on a CPU) and dlib's MMOD CNN ("cnn": several times slower, but it
finds dark, low-contrast and turned faces HOG misses). A spec names one detector or a chain such as
"hog,cnn", in which each detector runs only where the ones before it found no face. A new detector is
one registered function returning a `Stage`.

Detecting on a copy whose long side is at most `max_side` pixels and mapping the boxes back is the
main reason extraction runs several times faster than full-resolution detection; faces smaller
than about 80 px in the downscaled copy are then found only with `upsample`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Collection

import cv2
import dlib
import numpy as np

from dfjax.errors import UserError
from dfjax.registry import Registry

FACE_DETECTORS = Registry("face detector", discover="dfjax.faces")  # a new one: a module in dfjax/faces
DEFAULT_FACE_DETECTOR = "hog"

# A loaded detector: (RGB uint8 image, dlib upsampling steps) -> [(box [x0, y0, x1, y1] float32, score)]
Stage = Callable[[np.ndarray, int], list[tuple[np.ndarray, float]]]


def _box(rect) -> np.ndarray:
    return np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], np.float32)


@FACE_DETECTORS.register("hog")
def hog() -> Stage:
    """dlib's HOG frontal face detector (DeepfakeBench's too)."""
    detector = dlib.get_frontal_face_detector()

    def run(image: np.ndarray, upsample: int) -> list[tuple[np.ndarray, float]]:
        rects, scores, _ = detector.run(image, upsample, 0.0)
        return [(_box(r), float(s)) for r, s in zip(rects, scores)]

    return run


@FACE_DETECTORS.register("cnn")
def cnn() -> Stage:
    """dlib's MMOD CNN face detector (its model file comes with face_recognition_models)."""
    import face_recognition_models  # the model files (100 MB); imported where a model is loaded

    detector = dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())

    def run(image: np.ndarray, upsample: int) -> list[tuple[np.ndarray, float]]:
        return [(_box(d.rect), float(d.confidence)) for d in detector(image, upsample)]

    return run


def face_detector_choices() -> list[str]:
    """The specs offered to users: each detector (the default first), then the chain of all of them."""
    names = [DEFAULT_FACE_DETECTOR] + [n for n in FACE_DETECTORS.names() if n != DEFAULT_FACE_DETECTOR]
    return names + ([",".join(names)] if len(names) > 1 else [])


def _choose() -> str:
    *first, last = face_detector_choices()
    listed = f"{', '.join(first)} or {last}" if first else last
    return f"choose {listed} (in a chain each detector runs only where the ones before it found no face)"


def parse_face_detector(spec: str, option: str = "--detector") -> tuple[str, ...]:
    """The detector names of a spec such as "hog" or "hog,cnn", in the order they run.

    An unknown or repeated name is a UserError naming `option` (the setting the spec came from) and
    the choices.
    """
    names = tuple(str(spec).split(","))
    unknown = [name for name in names if name not in FACE_DETECTORS]
    if unknown:
        raise UserError(f"{option} {spec!r} names an unknown face detector {unknown[0]!r}; {_choose()}.")
    repeated = [name for i, name in enumerate(names) if name in names[:i]]
    if repeated:
        raise UserError(f"{option} {spec!r} names the face detector {repeated[0]!r} twice; {_choose()}.")
    return names


@functools.cache
def _stage(name: str) -> Stage:
    """The detector registered as `name`, loaded once per process (a HOG detector takes 0.2 CPU s to load;
    the face workers' server loads it once and every worker forks with it)."""
    return FACE_DETECTORS.get(name)()


@dataclass(frozen=True)
class Detection:
    box: np.ndarray  # float32 [x0, y0, x1, y1] in frame pixels
    score: float

    @property
    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))


class FaceDetector:
    """Finds face boxes in RGB images; boxes come back in the input image's coordinates.

    kind: a spec of FACE_DETECTORS names ("hog", "cnn", "hog,cnn"). retry_upsampled: detectors that,
    finding nothing, try once more with one more step of upsampling before the next one runs
    (DeepfakeBench retries HOG this way; the CNN is not worth four times its cost).
    """

    def __init__(self, kind: str = DEFAULT_FACE_DETECTOR, max_side: int = 640, upsample: int = 0,
                 retry_upsampled: Collection[str] = ()):
        self.kind, self.max_side, self.upsample = kind, max_side, upsample
        self._stages = [(_stage(name), name in retry_upsampled) for name in parse_face_detector(kind, "kind")]

    def _run(self, image: np.ndarray, upsample: int) -> list[Detection]:
        for stage, retry in self._stages:  # the next stage only where the previous one found nothing
            pairs = stage(image, upsample) or (stage(image, upsample + 1) if retry else [])
            if pairs:
                break
        return [Detection(box, score) for box, score in pairs]

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
