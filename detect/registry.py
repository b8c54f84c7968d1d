"""What a deepfake detector is (`Detector`) and every detector by name (`DETECTORS`).

Each detector is a `Detector` subclass in a module of detect/detectors/, filed under its name with
`@DETECTORS.register("name")`; the registry imports every module there the first time it is read,
so a new detector is one new module (plus, when it has settings, configs/detect_NAME.py and its
test). A CNN architecture is even less: a Flax module in detect/models/ filed with
`@CNN_MODELS.register("name")` becomes a detector of that name trained by `detect.cnn.CNNDetector`
(detect/detectors/cnn.py). Saved detectors are loaded back by their registered name only, never by a recorded import
path or from a pickle, so a checkpoint folder cannot make dfjax run code.
"""

from __future__ import annotations

import abc
from pathlib import Path

import numpy as np

from dfjax.registry import Registry

DETECTORS = Registry("deepfake detector", discover="detect.detectors")


class Detector(abc.ABC):
    """A real/fake classifier of face crops; label 1 = fake, 0 = real.

    A registered class is built as `cls()` (its defaults) or `cls(config)`, with the ConfigDict of
    configs/detect_NAME.py; `name` is the name it is registered under.
    """

    name: str

    @abc.abstractmethod
    def fit(self, crops: np.ndarray, labels: np.ndarray, *, val: tuple | None = None,
            landmarks: np.ndarray | None = None, seed: int = 0, progress=None) -> "Detector":
        """Train on uint8 crops (N, S, S, 3) and int labels (N,).

        val: (crops, labels) of the validation split, for model selection only; landmarks: float32
        (N, 68, 2) in crop pixels, for detectors that need them (self-blended images); progress: a
        rich Progress or None.
        """

    @abc.abstractmethod
    def score(self, crops: np.ndarray) -> np.ndarray:
        """float (N,) probability that each uint8 (N, S, S, 3) crop is fake."""

    @abc.abstractmethod
    def save(self, directory: str | Path) -> Path:
        """Write the fitted detector into `directory` (arrays and JSON; never a pickle)."""

    @classmethod
    @abc.abstractmethod
    def load(cls, directory: str | Path) -> "Detector":
        """The detector `save` wrote into `directory`; a UserError when it holds none."""
