"""Every detector by name (DeepfakeBench style): ``make_detector(name, config) -> Detector``.

A detector is an object with
    name: str
    fit(crops, labels, *, val=None, landmarks=None, seed=0, progress=None) -> self
        crops uint8 (N, S, S, 3), labels int (N,) 1 = fake; val = (crops, labels) of the validation
        split, used only for model selection; landmarks float32 (N, 68, 2) in crop pixels (SBI needs them)
    score(crops) -> float (N,) probability of fake
    save(directory) / classmethod load(directory) -> Detector
"""

from __future__ import annotations

from detect.cnn import CNN_DETECTORS
from detect.spectral import DCTDetector, SpectralDetector

DETECTORS = {"spectral": SpectralDetector, "dct": DCTDetector, **CNN_DETECTORS}
