"""Following one face through a video: detect every N frames, track in between, smooth.

Between full detections the box comes from the previous frame's landmarks, and a cheap detection
in that region only (`FaceDetector.in_region`) confirms the face is still there; when it is not
(a cut, the face turned away), the tracker detects on the whole frame at once. Landmarks are
smoothed with a One Euro filter (the default: the landmarks only) or a constant-velocity Kalman
filter (the landmarks and the box together), reset whenever the track starts again. Both filter
positions of a face scaled to about 100 px wide, so their parameters mean the same for any face size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfjax.faces.detect import Detection, FaceDetector, iou
from dfjax.faces.identity import SAME_PERSON_DISTANCE, FaceEncoder, distance
from dfjax.faces.landmarks import LandmarkPredictor, box_from_landmarks
from dfjax.faces.smooth import make_smoother

NO_FACE, TOO_SMALL, NOT_IDENTITY = "no face", "face smaller than --min-size", "not the --identity person"


@dataclass
class TrackedFace:
    box: np.ndarray            # float32 [x0, y0, x1, y1], frame pixels (smoothed by the Kalman filter)
    landmarks: np.ndarray      # float32 (68, 2), smoothed
    raw_landmarks: np.ndarray  # float32 (68, 2), as the predictor gave them
    score: float
    detected: bool             # True when this frame ran a full detection


class FaceTracker:
    """Call once per frame, in order; returns the tracked face or None with the reason.

    smoothing: "one-euro", "kalman" or "none" (True and False mean "one-euro" and "none");
    smoothing_params: the filter's parameters (dfjax.faces.smooth.make_smoother), else its defaults.
    """

    def __init__(self, detector: FaceDetector, predictor: LandmarkPredictor, *, every_n: int = 10,
                 min_size: float = 0.0, identity: np.ndarray | None = None, encoder: FaceEncoder | None = None,
                 fps: float = 25.0, smoothing: bool | str = True, smoothing_params: dict | None = None,
                 verify: bool = True):
        if identity is not None and encoder is None:
            raise ValueError("identity matching needs an encoder")
        self.detector, self.predictor, self.encoder = detector, predictor, encoder
        self.every_n, self.min_size, self.identity = max(1, every_n), min_size, identity
        kind = ("one-euro" if smoothing else "none") if isinstance(smoothing, bool) else smoothing
        self.fps, self.smoothing, self.verify = fps, kind, verify
        self._filter = make_smoother(kind, **(smoothing_params or {}))
        self._last: TrackedFace | None = None
        self._since_detect = 0
        self._scale = 1.0

    def reset(self) -> None:
        self._last = None
        if self._filter is not None:
            self._filter.reset()

    def state(self) -> dict:
        """All that the next frame's result depends on (picklable): another tracker given it by `resume`
        goes on exactly as this one would."""
        return {"last": self._last, "since_detect": self._since_detect, "scale": self._scale, "filter": self._filter}

    def resume(self, state: dict) -> None:
        self._last, self._since_detect, self._scale = state["last"], state["since_detect"], state["scale"]
        self._filter = state["filter"]

    def _choose(self, frame: np.ndarray, found: list[Detection]) -> tuple[Detection | None, str]:
        """The face to follow: the tracked one if still there, else the largest (or the --identity)."""
        if not found:
            return None, NO_FACE
        big = [d for d in found if d.box[2] - d.box[0] >= self.min_size]
        if not big:
            return None, TOO_SMALL
        if self._last is not None:  # periodic re-detection: stay with the face being tracked
            overlap = max(big, key=lambda d: iou(d.box, self._last.box))
            if iou(overlap.box, self._last.box) > 0.3:
                return overlap, ""
        if self.identity is None:
            return max(big, key=lambda d: d.area), ""
        dists = [distance(self.encoder(frame, self.predictor(frame, d.box), d.box), self.identity) for d in big]
        best = int(np.argmin(dists))
        if dists[best] > SAME_PERSON_DISTANCE:
            return None, NOT_IDENTITY
        return big[best], ""

    def _locate(self, frame: np.ndarray) -> tuple[Detection | None, bool, str]:
        """The face box for this frame, whether it came from a full detection, and a drop reason."""
        if self._last is not None and self._since_detect < self.every_n - 1:
            guess = box_from_landmarks(self._last.raw_landmarks)
            if not self.verify:
                return Detection(guess, self._last.score), False, ""
            near = self.detector.in_region(frame, guess)
            if near:
                best = max(near, key=lambda d: iou(d.box, guess))
                if iou(best.box, guess) > 0.3:
                    return best, False, ""
        found, reason = self._choose(frame, self.detector(frame))
        return found, True, reason

    def __call__(self, frame: np.ndarray, index: int) -> tuple[TrackedFace | None, str]:
        det, detected, reason = self._locate(frame)
        if det is None:
            self.reset()
            return None, reason
        self._since_detect = 0 if detected else self._since_detect + 1
        if self._last is None or iou(det.box, self._last.box) < 0.3:
            self.reset()  # a new track: do not smooth across it
            self._scale = max(1.0, float(det.box[2] - det.box[0]) / 100.0)
        raw = self.predictor(frame, det.box)
        smooth, box = raw, det.box
        if self.smoothing == "kalman":  # the landmarks and the box's corners, as 70 points
            points = np.concatenate([raw, np.asarray(det.box, np.float32).reshape(2, 2)])
            points = (self._filter(points / self._scale, index / self.fps) * self._scale).astype(np.float32)
            smooth, box = points[:68], points[68:].reshape(4)
        elif self._filter is not None:
            smooth = (self._filter(raw / self._scale, index / self.fps) * self._scale).astype(np.float32)
        self._last = TrackedFace(box, smooth, raw, det.score, detected)
        return self._last, ""
