"""Landmark smoothing over time: the One Euro filter (Casiez, Roussel & Vogel, CHI 2012, the default)
or a constant-velocity Kalman filter.

Per-frame landmarks jitter by a pixel or two; aligned crops inherit that as shaking, which a
generator learns and a swap shows. The One Euro filter is a low-pass filter whose cutoff rises
with speed: still faces are smoothed hard, moving ones barely lag. The PyPI package
(`OneEuroFilter`) filters one float at a time, so this is a short numpy version that filters
arrays of any shape at once, each element with its own adaptive cutoff.

Defaults, for landmarks in pixels at 25-30 fps on 720p video:
- min_cutoff = 1.0 Hz: a still face's 1-2 px dlib jitter drops to a fraction of a pixel per
  frame, while slow drifts (well under 1 Hz) still pass.
- beta = 0.05 per px/s: a head sweeping at 200 px/s gets an 11 Hz cutoff, i.e. about 15 ms
  (under half a frame) of lag, and the jitter's own speed (~10 px/s after derivative
  filtering) only raises the cutoff by ~0.5 Hz.
- d_cutoff = 1.0 Hz: the paper's value for the speed estimate.
Measured at 30 fps with 1 px Gaussian jitter: frame-to-frame jitter falls about 6x (1.13 to
0.18 px), and a 300 px/s sweep trails by about 2.4 px, a quarter of one frame's motion.

The Kalman filter (`KalmanFilter`) models every coordinate as a position moving at a velocity that
changes by random accelerations (white noise of standard deviation `process_noise`, px/s^2), observed
with Gaussian noise of standard deviation `measurement_noise` (px). Constant motion passes with no
lag at all, where the One Euro filter always trails a little; the price is overshoot when a motion
stops or turns. benchmarks/smoothing.py compares the three on `dfjax synth` video against the exact
landmarks and on real clips: with these defaults the Kalman filter adds no lag where One Euro trails by
about one frame, and keeps about twice One Euro's jitter (both well under raw dlib's), so One Euro
stays the default.
"""

from __future__ import annotations

import math

import numpy as np

from dfjax.errors import UserError

# Kalman noise in the tracker's units (pixels of a face scaled to about 100 px wide; see FaceTracker):
# a random acceleration that lets a head turn through within a frame or two, and dlib's ~1 px noise
KALMAN_DEFAULTS = {"process_noise": 500.0, "measurement_noise": 1.0}
ONE_EURO_DEFAULTS = {"min_cutoff": 1.0, "beta": 0.05}  # see the module docstring


def _smoothing_factor(dt: float, cutoff: np.ndarray | float) -> np.ndarray | float:
    """Exponential smoothing weight of a first-order low-pass with this cutoff (Hz) and step (s)."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class StreamingFilter:
    """A filter fed one array per frame, with its timestamp in seconds: the first value is taken as it
    is; later ones must keep its shape and come strictly later. Subclasses give `_start` and `_step`."""

    def reset(self) -> None:
        """Forget the past: the next call starts a new sequence (e.g. after a cut or a lost face)."""
        self._x: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """The filtered value of `x` observed at time `t` (seconds, strictly increasing)."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None:
            self._x, self._t = x.copy(), t
            self._start(x)
            return x.copy()
        if x.shape != self._x.shape:
            raise ValueError(f"Filter was fed shape {self._x.shape}, now {x.shape}; call reset().")
        dt = t - self._t
        if dt <= 0:
            raise ValueError(f"Timestamps must increase: got {t} after {self._t}.")
        self._x, self._t = self._step(x, dt), t
        return self._x.copy()

    def _start(self, x: np.ndarray) -> None:
        raise NotImplementedError

    def _step(self, x: np.ndarray, dt: float) -> np.ndarray:
        raise NotImplementedError


class OneEuroFilter(StreamingFilter):
    """Streaming One Euro filter: call it with each new array and its timestamp in seconds."""

    def __init__(self, min_cutoff: float = ONE_EURO_DEFAULTS["min_cutoff"], beta: float = ONE_EURO_DEFAULTS["beta"],
                 d_cutoff: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("One Euro filter needs min_cutoff > 0, d_cutoff > 0 and beta >= 0.")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def _start(self, x: np.ndarray) -> None:
        self._dx = np.zeros_like(x)

    def _step(self, x: np.ndarray, dt: float) -> np.ndarray:
        a_d = _smoothing_factor(dt, self.d_cutoff)
        self._dx = a_d * (x - self._x) / dt + (1.0 - a_d) * self._dx
        a = _smoothing_factor(dt, self.min_cutoff + self.beta * np.abs(self._dx))
        return a * x + (1.0 - a) * self._x


class KalmanFilter(StreamingFilter):
    """Streaming constant-velocity Kalman filter: call it with each new array and its timestamp in
    seconds, like OneEuroFilter. Every element has its own position and velocity; they share the
    noise model, so one 2x2 covariance serves them all.

    process_noise: standard deviation of the random acceleration, px/s^2 (higher follows turns
    faster and smooths less). measurement_noise: standard deviation of the observation noise, px
    (higher smooths more). The first observation is taken as it is, at rest but with an uncertain
    velocity (`initial_speed`, px/s), so the filter settles within a few frames.
    """

    def __init__(self, process_noise: float | None = None, measurement_noise: float | None = None,
                 initial_speed: float = 100.0):
        process_noise = KALMAN_DEFAULTS["process_noise"] if process_noise is None else process_noise
        measurement_noise = KALMAN_DEFAULTS["measurement_noise"] if measurement_noise is None else measurement_noise
        if process_noise <= 0 or measurement_noise <= 0 or initial_speed <= 0:
            raise ValueError("Kalman filter needs process_noise > 0, measurement_noise > 0 and initial_speed > 0.")
        self.process_noise, self.measurement_noise, self.initial_speed = process_noise, measurement_noise, initial_speed
        self.reset()

    def _start(self, x: np.ndarray) -> None:
        self._v = np.zeros_like(x)
        self._p = np.diag([self.measurement_noise ** 2, self.initial_speed ** 2])  # of (position, velocity)

    def _step(self, x: np.ndarray, dt: float) -> np.ndarray:
        # predict: x += v dt, with a random acceleration between frames (discrete white noise)
        f = np.array([[1.0, dt], [0.0, 1.0]])
        g = np.array([[0.5 * dt * dt], [dt]])
        p = f @ self._p @ f.T + self.process_noise ** 2 * (g @ g.T)
        position = self._x + self._v * dt
        # update with the observed position
        gain = p[:, 0] / (p[0, 0] + self.measurement_noise ** 2)
        innovation = x - position
        self._v = self._v + gain[1] * innovation
        self._p = p - np.outer(gain, p[0])
        return position + gain[0] * innovation


SMOOTHERS = ("one-euro", "kalman", "none")


def check_smoothing(kind: str) -> None:
    """A UserError naming `--smoothing` when `kind` is not one of SMOOTHERS."""
    if kind not in SMOOTHERS:
        raise UserError(f"--smoothing {kind!r} is unknown; choose one of {', '.join(SMOOTHERS)}.")


def make_smoother(kind: str, **params: float) -> OneEuroFilter | KalmanFilter | None:
    """The streaming filter `kind` of SMOOTHERS with its parameters (None for "none").

    one-euro takes min_cutoff, beta, d_cutoff; kalman takes process_noise, measurement_noise.
    """
    if kind == "one-euro":
        return OneEuroFilter(**params)
    if kind == "kalman":
        return KalmanFilter(**params)
    if kind == "none":
        return None
    raise ValueError(f"unknown smoothing {kind!r}; choose one of {', '.join(SMOOTHERS)}")


def smooth_sequence(landmarks: np.ndarray, fps: float, kind: str = "one-euro", **params: float) -> np.ndarray:
    """Filter a (T, ...) sequence of frames sampled at `fps` with the filter `kind` (see make_smoother)."""
    landmarks = np.asarray(landmarks)
    dtype = landmarks.dtype if np.issubdtype(landmarks.dtype, np.floating) else np.float64
    smoother = make_smoother(kind, **params)
    if smoother is None:
        return landmarks.astype(dtype, copy=True)
    out = np.empty(landmarks.shape, dtype=dtype)
    for i, frame in enumerate(landmarks):
        out[i] = smoother(frame, i / fps)
    return out
