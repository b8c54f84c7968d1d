"""Imported by the face workers' server (`dfjax.faces.server`) alone: the face pipeline, and the models
every face worker uses, loaded once so that each worker forks with them in memory.

It lies outside `dfjax.faces` because the registries there import every module of that package.
"""

from dfjax.faces.detect import DEFAULT_FACE_DETECTOR, FaceDetector
from dfjax.faces.landmarks import LandmarkPredictor
from dfjax.faces import pipeline  # noqa: F401 - what the workers run

try:
    LandmarkPredictor()
    FaceDetector(DEFAULT_FACE_DETECTOR)
except Exception:  # noqa: BLE001 - a worker loading them itself raises it where it is reported
    pass
