"""Classic frequency-domain deepfake detectors: a fixed feature map, then a linear classifier.

* `SpectralDetector` ("spectral"): Durall et al. 2020, "Watch your up-convolution: CNN based
  generative deep neural networks are failing to reproduce spectral distributions": grey image ->
  2-D FFT -> log power spectrum -> azimuthal average (1-D radial profile) -> logistic regression.
* `DCTDetector` ("dct"): Frank et al. 2020, "Leveraging frequency analysis for deep fake image
  recognition": grey image -> 2-D DCT-II -> log |coefficients| -> (area-downsampled) map ->
  standardised -> logistic regression, C chosen by cross-validation.

scikit-learn fits them on the CPU; what a fit leaves is four arrays (the scaler's mean and scale, the
classifier's weights and bias), so a detector is saved as weights.npz + settings.json and scored
from those arrays: no pickle, and the same scores before and after a save.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.fft
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from detect.registry import DETECTORS, Detector
from dfjax.errors import UserError
from dfjax.io import atomic_write, read_json, write_json

EPS = 1e-8
_GREY = np.array([0.299, 0.587, 0.114], np.float64)  # ITU-R BT.601 luma weights


def to_grey(crops: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S, 3) or (N, S, S) -> float64 (N, S, S) in [0, 1]."""
    crops = np.asarray(crops)
    if crops.ndim == 3:
        return crops.astype(np.float64) / 255.0
    if crops.ndim != 4 or crops.shape[-1] != 3:
        raise ValueError(f"expected crops of shape (N, H, W, 3) or (N, H, W), got {crops.shape}")
    return (crops.astype(np.float64) @ _GREY) / 255.0


def _radial_index(h: int, w: int) -> tuple[np.ndarray, int]:
    """Integer radius of each pixel of a centred (fftshifted) h x w spectrum, and the bin count."""
    yy, xx = np.indices((h, w))
    r = np.hypot(yy - h // 2, xx - w // 2)
    idx = np.floor(r).astype(np.int64)
    n_bins = min(h, w) // 2  # keep the full circles only; corners are partial rings
    return idx, n_bins


def azimuthal_profile(grey: np.ndarray) -> np.ndarray:
    """(N, H, W) grey images -> (N, min(H, W)//2) radial profile of the log power spectrum.

    Each profile is min-max normalised per image (as in Durall et al.), so overall brightness and
    contrast do not matter, only the spectrum's shape.
    """
    n, h, w = grey.shape
    spec = np.fft.fftshift(np.fft.fft2(grey - grey.mean(axis=(1, 2), keepdims=True)), axes=(1, 2))
    logp = np.log(np.abs(spec) ** 2 + EPS)
    idx, n_bins = _radial_index(h, w)
    flat_idx = idx.ravel()
    keep = flat_idx < n_bins
    counts = np.bincount(flat_idx[keep], minlength=n_bins).astype(np.float64)
    out = np.empty((n, n_bins))
    for i in range(n):
        out[i] = np.bincount(flat_idx[keep], weights=logp[i].ravel()[keep], minlength=n_bins) / counts
    lo, hi = out.min(axis=1, keepdims=True), out.max(axis=1, keepdims=True)
    return (out - lo) / np.maximum(hi - lo, EPS)


def _area_resize(maps: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) -> (N, size, size) by block averaging (H, W multiples of size) or cv2 INTER_AREA."""
    n, h, w = maps.shape
    if h <= size and w <= size:
        return maps
    if h % size == 0 and w % size == 0:
        return maps.reshape(n, size, h // size, size, w // size).mean(axis=(2, 4))
    import cv2

    return np.stack([cv2.resize(m.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
                     for m in maps]).astype(np.float64)


def dct_features(grey: np.ndarray, size: int = 32) -> np.ndarray:
    """(N, H, W) grey -> (N, size*size) log |DCT-II| coefficients, area-downsampled when H > size."""
    coef = scipy.fft.dctn(grey, type=2, axes=(1, 2), norm="ortho")
    logc = np.log(np.abs(coef) + 1e-4)
    return _area_resize(logc, size).reshape(len(grey), -1)


def _check_fit_inputs(crops, labels) -> np.ndarray:
    labels = np.asarray(labels).astype(np.int64).ravel()
    if len(labels) != len(crops):
        raise ValueError(f"{len(crops)} crops but {len(labels)} labels")
    if len(np.unique(labels)) < 2:
        raise ValueError("fit needs both real (0) and fake (1) examples; got one class only")
    if not set(np.unique(labels).tolist()) <= {0, 1}:
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    return labels


def _setting(config, key: str, default):
    """`config[key]` of a ConfigDict or dict, `default` when there is no config or no such key."""
    return default if config is None else config.get(key, default)


WEIGHTS = ("mean", "scale", "coef", "intercept")  # standardise, then one logistic unit


class _FeatureDetector(Detector):
    """Features -> standardisation -> logistic regression; subclasses define `features` and `settings`."""

    name = "base"

    def __init__(self):
        self.weights: dict[str, np.ndarray] | None = None  # WEIGHTS, float64, once fitted

    def features(self, crops: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def settings(self) -> dict:
        """The constructor's settings, as saved in settings.json and passed back on load."""
        return {}

    def _model(self, labels: np.ndarray):
        """The scikit-learn estimator to fit: a scale + clf Pipeline, or a search over them."""
        return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=2000))])

    def fit(self, crops: np.ndarray, labels: np.ndarray, *, val=None, landmarks=None, seed: int = 0,
            progress=None) -> "_FeatureDetector":
        """Fit on the train crops; val, landmarks, seed and progress are part of the common interface and
        unused here: the fit is deterministic and has nothing to select."""
        labels = _check_fit_inputs(crops, labels)
        model = self._model(labels).fit(self.features(crops), labels)
        pipe = getattr(model, "best_estimator_", model)
        scaler, clf = pipe.named_steps["scale"], pipe.named_steps["clf"]
        self.weights = {"mean": scaler.mean_, "scale": scaler.scale_, "coef": clf.coef_[0],
                        "intercept": clf.intercept_[:1]}
        self.weights = {k: np.asarray(v, np.float64).copy() for k, v in self.weights.items()}
        return self

    def score(self, crops: np.ndarray) -> np.ndarray:
        if self.weights is None:
            raise RuntimeError(f"{self.name} detector is not fitted; call fit() first")
        w = self.weights
        standardised = (self.features(crops) - w["mean"]) / w["scale"]
        return expit(standardised @ w["coef"] + w["intercept"][0])

    def save(self, directory) -> Path:
        """Write weights.npz (the four fitted arrays) and settings.json to `directory`."""
        if self.weights is None:
            raise RuntimeError(f"{self.name} detector is not fitted; nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write(directory / "weights.npz", lambda f: np.savez(f, **self.weights))
        write_json(directory / "settings.json", {"detector": self.name, "settings": self.settings()})
        return directory

    @classmethod
    def load(cls, directory) -> "_FeatureDetector":
        directory = Path(directory)
        refused = UserError(f"{directory} holds no saved {cls.name} detector (weights.npz and settings.json); "
                            "pass the folder its save() wrote.")
        try:
            saved = read_json(directory / "settings.json")
            with np.load(directory / "weights.npz", allow_pickle=False) as arrays:
                weights = {k: np.asarray(arrays[k], np.float64) for k in WEIGHTS}
        except (OSError, ValueError, KeyError):
            raise refused from None
        n = weights["mean"].shape
        if not isinstance(saved, dict) or saved.get("detector") != cls.name or len(n) != 1 \
                or weights["scale"].shape != n or weights["coef"].shape != n or weights["intercept"].shape != (1,):
            raise refused
        detector = cls(saved.get("settings") or {})
        detector.weights = weights
        return detector


@DETECTORS.register("spectral")
class SpectralDetector(_FeatureDetector):
    """Durall et al. 2020: azimuthally averaged log power spectrum + logistic regression.

    Settings: C, the inverse regularisation strength (1.0).
    """

    name = "spectral"

    def __init__(self, config=None):
        super().__init__()
        self.C = float(_setting(config, "C", 1.0))

    def settings(self) -> dict:
        return {"C": self.C}

    def features(self, crops: np.ndarray) -> np.ndarray:
        return azimuthal_profile(to_grey(crops))

    def _model(self, labels: np.ndarray):
        return Pipeline([("scale", StandardScaler()),
                         ("clf", LogisticRegression(C=self.C, max_iter=2000))])


@DETECTORS.register("dct")
class DCTDetector(_FeatureDetector):
    """Frank et al. 2020: log |DCT-II| coefficients (downsampled to size x size) + logistic regression.

    Settings: size (32), Cs (1e-3 .. 1): C is chosen among Cs by 3-fold cross-validation when each
    class has at least 3 samples, else the middle one is used.
    """

    name = "dct"

    def __init__(self, config=None):
        super().__init__()
        self.size = int(_setting(config, "size", 32))
        self.Cs = tuple(float(c) for c in _setting(config, "Cs", (1e-3, 1e-2, 1e-1, 1.0)))

    def settings(self) -> dict:
        return {"size": self.size, "Cs": list(self.Cs)}

    def features(self, crops: np.ndarray) -> np.ndarray:
        return dct_features(to_grey(crops), self.size)

    def _model(self, labels: np.ndarray):
        pipe = Pipeline([("scale", StandardScaler()),
                         ("clf", LogisticRegression(C=self.Cs[len(self.Cs) // 2], max_iter=2000))])
        if len(self.Cs) < 2 or np.bincount(labels, minlength=2).min() < 3:
            return pipe  # too few samples per class to cross-validate
        return GridSearchCV(pipe, {"clf__C": list(self.Cs)}, cv=3, scoring="roc_auc", refit=True)
