"""The CNN detectors: every architecture in detect/models/ (`CNN_MODELS`) filed as a detector of the
same name, trained by `detect.cnn.CNNDetector`, so a new architecture needs no code here.

    det = DETECTORS.get("xception")(load_config("configs/detect_xception.py:tiny"))  # or () for defaults
"""

from __future__ import annotations

import ml_collections

from detect.cnn import CNNDetector, cnn_config
from detect.models import CNN_MODELS
from detect.registry import DETECTORS


def cnn_detector(arch: str) -> type[CNNDetector]:
    """The CNNDetector of `arch`: built with `cnn_config(arch)` when no config is given."""

    class ArchDetector(CNNDetector):
        def __init__(self, config: ml_collections.ConfigDict | None = None):
            super().__init__(config if config is not None else cnn_config(arch))

    ArchDetector.__name__ = ArchDetector.__qualname__ = f"CNNDetector_{arch}"
    ArchDetector.__doc__ = f"A {arch} CNNDetector from `config` (default: cnn_config({arch!r}))."
    return ArchDetector


CNN_DETECTORS = {arch: DETECTORS.register(arch)(cnn_detector(arch)) for arch in CNN_MODELS.names()}
