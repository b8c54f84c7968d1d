"""Classic frequency-domain deepfake detectors (scikit-learn, CPU).

* :class:`SpectralDetector` -- Durall et al. 2020, "Watch your up-convolution: CNN based generative
  deep neural networks are failing to reproduce spectral distributions": grey image -> 2-D FFT ->
  log power spectrum -> azimuthal average (1-D radial profile) -> logistic regression.
* :class:`DCTDetector` -- Frank et al. 2020, "Leveraging frequency analysis for deep fake image
  recognition": grey image -> 2-D DCT-II -> log |coefficients| -> (area-downsampled) map ->
  standardised -> linear classifier.

Both follow the interface of detect/registry.py: ``fit(crops, labels, ...) -> self`` with uint8 crops
``(N, S, S, 3)`` and labels ``(N,)`` (1 = fake, 0 = real), ``score(crops) -> (N,)`` probability of
fake, ``save(directory)`` / ``load(directory)`` (joblib), and a ``name``.
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import scipy.fft
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from dfjax.errors import UserError

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
    return labels


class _FeatureDetector:
    """Features -> StandardScaler -> logistic regression; subclasses define ``features``."""

    name = "base"

    def __init__(self):
        self.model: Pipeline | None = None

    def features(self, crops: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _model(self, labels: np.ndarray):
        """The estimator to fit on features (anything with predict_proba)."""
        return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=2000))])

    def fit(self, crops: np.ndarray, labels: np.ndarray, *, val=None, landmarks=None, seed: int = 0,
            progress=None) -> "_FeatureDetector":
        """Fit on the train crops; val, landmarks, seed and progress are accepted for the common
        interface (detect/registry.py) and unused: the fit is deterministic and has nothing to select."""
        labels = _check_fit_inputs(crops, labels)
        self.model = self._model(labels).fit(self.features(crops), labels)
        return self

    def score(self, crops: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"{self.name} detector is not fitted; call fit() first")
        return self.model.predict_proba(self.features(crops))[:, 1]

    def save(self, directory) -> Path:
        """Pickle the fitted detector to directory/model.joblib."""
        if self.model is None:
            raise RuntimeError(f"{self.name} detector is not fitted; nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, directory / "model.joblib")
        return directory

    @classmethod
    def load(cls, directory) -> "_FeatureDetector":
        path = Path(directory) / "model.joblib"
        detector = joblib.load(path) if path.is_file() else None
        if not isinstance(detector, cls):
            raise UserError(f"{directory} holds no saved {cls.name} detector (model.joblib); pass the folder "
                            "given to save().")
        return detector


class SpectralDetector(_FeatureDetector):
    """Durall et al. 2020: azimuthally averaged log power spectrum + logistic regression."""

    name = "spectral"

    def __init__(self, C: float = 1.0):
        super().__init__()
        self.C = C

    def features(self, crops: np.ndarray) -> np.ndarray:
        return azimuthal_profile(to_grey(crops))

    def _model(self, labels: np.ndarray):
        return Pipeline([("scale", StandardScaler()),
                         ("clf", LogisticRegression(C=self.C, max_iter=2000))])


class DCTDetector(_FeatureDetector):
    """Frank et al. 2020: log |DCT-II| coefficients (downsampled to size x size) + linear classifier.

    C is tuned lightly by 3-fold cross-validation over a small grid when there are enough samples.
    """

    name = "dct"

    def __init__(self, size: int = 32, Cs: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)):
        super().__init__()
        self.size = size
        self.Cs = tuple(Cs)

    def features(self, crops: np.ndarray) -> np.ndarray:
        return dct_features(to_grey(crops), self.size)

    def _model(self, labels: np.ndarray):
        pipe = Pipeline([("scale", StandardScaler()),
                         ("clf", LogisticRegression(C=self.Cs[len(self.Cs) // 2], max_iter=2000))])
        if len(self.Cs) < 2 or np.bincount(labels, minlength=2).min() < 3:
            return pipe  # too few samples per class to cross-validate
        return GridSearchCV(pipe, {"clf__C": list(self.Cs)}, cv=3, scoring="roc_auc", refit=True)

