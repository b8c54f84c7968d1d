"""Self-blended images (Shiohara & Yamasaki, CVPR 2022): fakes made from real faces alone.

For each real crop and its 68 landmarks, as in the authors' code (mapooon/SelfBlendedImages):

1. source and target are the same image; one of them (chosen at random) gets a colour jitter (RGB
   shift, hue/saturation/value, brightness/contrast) and a frequency change (down- and up-sampling
   by 2 or 4, or sharpening);
2. the source is misaligned by a small random affine (shift up to 3 % across / 1.5 % down, scale
   0.95 to 1/0.95), and so is the face mask;
3. the mask is a random variant of the landmark hull (whole hull, with forehead, inner face, lower
   face), elastically deformed, resized, eroded by blur-and-threshold, then blurred soft;
4. fake = alpha * mask * source + (1 - alpha * mask) * target, alpha from {0.25, 0.5, 0.75, 1, 1, 1}.

A detector trained on (target, fake) pairs must find blending boundaries and statistical
mismatches rather than one generator's fingerprints, which is why SBI generalises across methods.
Sizes in the paper's recipe are for 256 px crops and are scaled to the crop size here.
Each image draws from its own generator seeded by (seed, index): the output depends on the seed
only, not on how the work is split over threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import cv2
import numpy as np
from dfjax.faces.masks import landmark_mask

HULLS = ("hull", "extended", "inner", "lower")
_INNER = np.arange(17, 68)                                         # brows, nose, eyes, mouth
_LOWER = np.concatenate([np.arange(2, 15), np.arange(29, 36), np.arange(48, 68)])  # cheeks, nose, mouth
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


class SelfBlended(NamedTuple):
    targets: np.ndarray  # uint8 (N, S, S, 3): the real images as the detector should see them (label 0)
    fakes: np.ndarray    # uint8 (N, S, S, 3): the self-blended images (label 1); equal to targets outside masks
    masks: np.ndarray    # float32 (N, S, S): the blend weight of the source at each pixel


def hull_mask(landmarks: np.ndarray, size: int, kind: str = "hull") -> np.ndarray:
    """(size, size) float32 in {0, 1}: the landmark-hull region of `kind` (one of HULLS)."""
    if kind in ("hull", "extended"):
        return landmark_mask(landmarks, size, size, kind).astype(np.float32) / 255
    if kind not in HULLS:
        raise ValueError(f"unknown hull {kind!r}; choose one of {HULLS}")
    points = landmarks[_INNER if kind == "inner" else _LOWER]
    return landmark_mask(points, size, size, "hull").astype(np.float32) / 255


def _odd(value: float) -> int:
    return max(1, int(value) // 2 * 2 + 1)


def _colour_and_frequency(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """The paper's source transform on one uint8 image: colour jitter, then downscale or sharpen."""
    x = image.astype(np.float32)
    if rng.random() < 0.3:  # RGB shift
        x += rng.uniform(-20, 20, 3).astype(np.float32)
    hsv = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-0.3, 0.3) * 180 / 10) % 180  # hue, in OpenCV's 0..180
    hsv[..., 1:] *= 1 + rng.uniform(-0.3, 0.3, 2).astype(np.float32) / 3  # saturation, value
    x = cv2.cvtColor(np.clip(hsv, [0, 0, 0], [179, 255, 255]).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    x = (x - x.mean()) * (1 + rng.uniform(-0.1, 0.1)) + x.mean() + 255 * rng.uniform(-0.1, 0.1)  # contrast, brightness
    x = np.clip(x, 0, 255)
    h, w = image.shape[:2]
    if rng.random() < 0.5:  # downscale by 2 or 4 (nearest), back up (bilinear)
        r = int(rng.choice([2, 4]))
        small = cv2.resize(x, (max(1, w // r), max(1, h // r)), interpolation=cv2.INTER_NEAREST)
        x = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    else:  # sharpen: blend towards the image + its Laplacian detail
        alpha, lightness = rng.uniform(0.2, 0.5), rng.uniform(0.5, 1.0)
        kernel = np.array([[-1, -1, -1], [-1, 8 + lightness, -1], [-1, -1, -1]], np.float32)
        sharp = cv2.filter2D(x, -1, kernel / lightness, borderType=cv2.BORDER_REFLECT)
        x = (1 - alpha) * x + alpha * sharp
    return np.clip(x, 0, 255).round().astype(np.uint8)


def _random_affine(rng: np.random.Generator, size: int) -> np.ndarray:
    """2x3 matrix: scale 0.95..1/0.95 about the centre, shift up to 3 % (x) and 1.5 % (y)."""
    scale = rng.uniform(0.95, 1 / 0.95)
    shift = rng.uniform([-0.03, -0.015], [0.03, 0.015]) * size
    c = (size - 1) / 2
    return np.array([[scale, 0, c - scale * c + shift[0]], [0, scale, c - scale * c + shift[1]]], np.float64)


def _elastic(rng: np.random.Generator, mask: np.ndarray, alpha: float, sigma: float) -> np.ndarray:
    """Albumentations-style elastic deformation: a smooth random displacement field of scale alpha."""
    h, w = mask.shape
    noise = rng.uniform(-1, 1, (h, w, 2)).astype(np.float32)
    shift = cv2.GaussianBlur(noise, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) * np.float32(alpha)
    yy, xx = np.indices((h, w), dtype=np.float32)
    return cv2.remap(mask, xx + shift[..., 0], yy + shift[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _blend_mask(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """The paper's soft blend mask: resize, blur + threshold (erode), blur again, resize back."""
    size = mask.shape[0]
    k = size / 256
    rh, rw = (int(rng.integers(int(192 * k), int(256 * k) + 1)) for _ in range(2))
    m = cv2.resize(mask, (max(rw, 4), max(rh, 4)), interpolation=cv2.INTER_LINEAR)
    k1, k2 = (_odd(rng.integers(5, 26) * k) for _ in range(2))
    m = cv2.GaussianBlur(m, (k1, k1), 0)
    if m.max() <= 0:
        return np.zeros_like(mask)
    m = m / m.max()
    m[m < 1] = 0
    m = cv2.GaussianBlur(m, (k2, k2), rng.integers(5, 46) * k)
    if m.max() <= 0:
        return np.zeros_like(mask)
    return cv2.resize(m / m.max(), (size, size), interpolation=cv2.INTER_LINEAR)


def blend_one(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target, fake, mask) for one uint8 (S, S, 3) image and its (68, 2) landmarks."""
    size = image.shape[0]
    source, target = image, image
    if rng.random() < 0.5:
        source = _colour_and_frequency(rng, image)
    else:
        target = _colour_and_frequency(rng, image)
    mask = hull_mask(landmarks, size, HULLS[rng.integers(len(HULLS))])
    affine = _random_affine(rng, size)
    source = cv2.warpAffine(source, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mask = cv2.warpAffine(mask, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = _elastic(rng, mask, alpha=50 * (size / 256) ** 2, sigma=7 * size / 256)  # displacement ~ alpha / sigma
    mask = (_blend_mask(rng, mask) * BLEND_RATIOS[rng.integers(len(BLEND_RATIOS))]).astype(np.float32)
    blended = mask[..., None] * source.astype(np.float32) + (1 - mask[..., None]) * target.astype(np.float32)
    return target, np.clip(blended, 0, 255).round().astype(np.uint8), mask


def self_blend(images: np.ndarray, landmarks: np.ndarray, seed: int = 0, workers: int = 4) -> SelfBlended:
    """Self-blended fakes of uint8 (N, S, S, 3) real crops with float (N, 68, 2) landmarks in crop pixels.

    Deterministic for a seed (int or tuple of ints, e.g. (seed, epoch)); `workers` threads share the
    work (OpenCV releases the GIL).
    """
    images = np.asarray(images)
    landmarks = np.asarray(landmarks, np.float64)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2] or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 square crops (N, S, S, 3), got {images.dtype} {images.shape}")
    if landmarks.shape != (len(images), 68, 2):
        raise ValueError(f"expected landmarks of shape ({len(images)}, 68, 2), got {landmarks.shape}")
    base = list(np.atleast_1d(seed).astype(np.int64).tolist())
    targets, fakes = np.empty_like(images), np.empty_like(images)
    masks = np.empty(images.shape[:3], np.float32)

    def work(i: int) -> None:
        targets[i], fakes[i], masks[i] = blend_one(images[i], landmarks[i], np.random.default_rng(base + [i]))

    if workers > 1 and len(images) > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, range(len(images))))
    else:
        for i in range(len(images)):
            work(i)
    return SelfBlended(targets, fakes, masks)
