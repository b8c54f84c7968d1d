"""Per-face conversion steps of `swap`: choose a mask, recolour the generated face, paste it back.

The pipeline runs the model on a batch of aligned crops, then calls these host-side functions once
per face. Everything is numpy/cv2 on RGB uint8 images; masks are float32 in [0, 1]; a face's 2x3
`matrix` maps FRAME pixels to CROP pixels (cv2.warpAffine convention, see dfjax.faces.align).

The ground-truth masks that `swap` writes beside a fake come from `paste_back`: a pixel whose
returned frame mask is 0 is bit-identical to the input frame, so detectors are told exactly which
pixels were touched.
"""

from __future__ import annotations

import cv2
import numpy as np

from dfjax.faces.align import invert, transform_points
from dfjax.faces.masks import landmark_mask

MASK_SOURCES = ("model", "landmarks", "intersection")
COLOR_MODES = ("none", "reinhard", "histogram")
BLEND_MODES = ("alpha", "seamless")
WATERMARK_POSITIONS = ("bottom-right", "bottom-left", "top-right", "top-left")

_MIN_STAT_PIXELS = 16  # fewer masked pixels than this gives no usable colour statistics


def face_mask(model_mask: np.ndarray | None, landmarks_crop: np.ndarray, size: int,
              source: str, kind: str = "extended") -> np.ndarray:
    """The (size, size) float32 blend mask of one aligned face.

    "model" is the mask the decoder predicts (it follows hair and occlusions), "landmarks" the
    hull of the 68 points in crop coordinates (`kind` as in dfjax.faces.masks), "intersection" the
    pixel-wise minimum, which keeps a badly predicted mask from spilling past the face.
    """
    if source not in MASK_SOURCES:
        raise ValueError(f"Unknown mask source {source!r}; choose one of {MASK_SOURCES}.")
    if source != "landmarks":
        if model_mask is None:
            raise ValueError(f"Mask source {source!r} needs the model's mask, but it has none.")
        predicted = np.clip(np.asarray(model_mask, np.float32).reshape(model_mask.shape[:2]), 0, 1)
        if predicted.shape != (size, size):
            predicted = cv2.resize(predicted, (size, size), interpolation=cv2.INTER_LINEAR)
        if source == "model":
            return predicted
    hull = landmark_mask(landmarks_crop, size, size, kind).astype(np.float32) / 255.0
    return hull if source == "landmarks" else np.minimum(predicted, hull)


def refine_mask(mask: np.ndarray, erode: int = 0, feather: int = 0) -> np.ndarray:
    """Shrink (erode > 0) or grow (erode < 0) a mask by |erode| px, then soften its edge.

    As in faceswap, the erosion comes first and the Gaussian feather (kernel 2 * feather + 1) is
    centred on the eroded edge, so the soft ramp reaches about `feather` px to either side of it;
    erode by at least `feather` to keep the ramp inside the original mask. Pixels beyond the crop
    count as background, so a mask touching the crop edge also fades out there instead of leaving
    a hard seam when pasted back.
    """
    out = np.asarray(mask, np.float32)
    if erode:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(erode) + 1,) * 2)
        op = cv2.erode if erode > 0 else cv2.dilate
        out = op(out, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    if feather > 0:
        out = cv2.GaussianBlur(out, (2 * feather + 1,) * 2, 0, borderType=cv2.BORDER_CONSTANT)
    return np.clip(out, 0.0, 1.0)


def _masked_pixels(mask: np.ndarray) -> np.ndarray:
    return np.asarray(mask) > 0.5


def _to_lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def _from_lab(lab: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _reinhard(generated: np.ndarray, original: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Reinhard et al. 2001: match each L*a*b* channel's mean and std inside the mask."""
    src, ref = _to_lab(generated), _to_lab(original)
    src_mean, src_std = src[inside].mean(0), src[inside].std(0)
    ref_mean, ref_std = ref[inside].mean(0), ref[inside].std(0)
    return _from_lab((src - src_mean) * (ref_std / np.maximum(src_std, 1e-3)) + ref_mean)


def _histogram(generated: np.ndarray, original: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Per RGB channel, map the generated levels so their masked CDF follows the original's."""
    out = np.empty_like(generated)
    levels = np.arange(256, dtype=np.float64)
    for c in range(3):
        src_values, src_counts = np.unique(generated[..., c][inside], return_counts=True)
        ref_values, ref_counts = np.unique(original[..., c][inside], return_counts=True)
        # each level's CDF taken mid-step, so a large tie (a clipped highlight) lands on the
        # reference's matching middle quantile instead of its extreme
        src_cdf = (np.cumsum(src_counts) - 0.5 * src_counts) / src_counts.sum()
        ref_cdf = (np.cumsum(ref_counts) - 0.5 * ref_counts) / ref_counts.sum()
        mapped = np.interp(src_cdf, ref_cdf, ref_values)  # each present level -> reference level
        lut = np.interp(levels, src_values, mapped)  # levels absent inside the mask: in between
        out[..., c] = np.clip(np.rint(lut), 0, 255).astype(np.uint8)[generated[..., c]]
    return out


def match_color(generated: np.ndarray, original: np.ndarray, mask: np.ndarray,
                mode: str) -> np.ndarray:
    """Recolour the generated face so its skin tone and lighting match the face it replaces.

    Statistics come from the pixels where mask > 0.5 in both crops (the face, not the background
    the decoder never learnt); the mapping is applied to the whole crop so the feathered edge is
    recoloured too. With too few masked pixels the face is returned unchanged.
    """
    if mode not in COLOR_MODES:
        raise ValueError(f"Unknown colour mode {mode!r}; choose one of {COLOR_MODES}.")
    inside = _masked_pixels(mask)
    if mode == "none" or inside.sum() < _MIN_STAT_PIXELS:
        return generated.copy()
    transfer = _reinhard if mode == "reinhard" else _histogram
    return transfer(generated, original, inside)


def paste_back(frame: np.ndarray, face: np.ndarray, mask: np.ndarray, matrix: np.ndarray,
               blend: str = "alpha") -> tuple[np.ndarray, np.ndarray]:
    """Warp a (size, size) face and its mask into the frame and blend them in.

    Returns the new frame and a (H, W) uint8 frame mask: the blend weight * 255 that was actually
    used. Where it is 0 the pixel is bit-identical to `frame`; where it is 255 the pixel is the
    warped (or, for "seamless", Poisson-cloned) face. "seamless" runs cv2.seamlessClone
    (NORMAL_CLONE) on the mask binarised at 0.5, then alpha-blends that result with the soft mask,
    which also discards any change the Poisson solve makes outside the mask.
    """
    if blend not in BLEND_MODES:
        raise ValueError(f"Unknown blend mode {blend!r}; choose one of {BLEND_MODES}.")
    size = face.shape[0]
    if face.shape[:2] != (size, size) or np.shape(mask)[:2] != (size, size):
        raise ValueError(f"face {face.shape} and mask {np.shape(mask)} must be one square size.")
    height, width = frame.shape[:2]
    to_frame = invert(matrix)
    # work only in the frame region the crop covers (the mask is 0 elsewhere): ~20x less at 720p
    corners = transform_points(np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64), to_frame)
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, (width, height))
    frame_mask = np.zeros((height, width), np.uint8)
    if x1 <= x0 or y1 <= y0:
        return frame.copy(), frame_mask
    to_roi = to_frame.copy()
    to_roi[:, 2] -= (x0, y0)
    roi = frame[y0:y1, x0:x1]
    warped = cv2.warpAffine(face, to_roi, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(np.asarray(mask, np.float32), to_roi, (x1 - x0, y1 - y0),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    roi_mask = np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)
    if not roi_mask.any():
        return frame.copy(), frame_mask
    if blend == "seamless":
        warped = _seamless(warped, roi, roi_mask >= 128)
    weight = (roi_mask.astype(np.float32) / 255.0)[..., None]
    base = roi.astype(np.float32)
    blended = np.clip(np.rint(base + (warped.astype(np.float32) - base) * weight), 0, 255).astype(np.uint8)
    untouched = roi_mask == 0
    blended[untouched] = roi[untouched]  # exact by construction; kept as the sidecar's guarantee
    out = frame.copy()
    out[y0:y1, x0:x1] = blended
    frame_mask[y0:y1, x0:x1] = roi_mask
    return out, frame_mask


def _seamless(source: np.ndarray, target: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """cv2.seamlessClone of `source` into `target` over `inside`, in place (no offset).

    seamlessClone fails or clips the mask when its bounding box reaches the image edge, so all
    three images are padded first; the clone is centred on the mask's own bounding box, which
    makes OpenCV put it back exactly where it came from.
    """
    if not inside.any():
        return target.copy()
    pad = 2
    src = cv2.copyMakeBorder(source, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    dst = cv2.copyMakeBorder(target, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    binary = cv2.copyMakeBorder(inside.astype(np.uint8) * 255, pad, pad, pad, pad,
                                cv2.BORDER_CONSTANT, value=0)
    x, y, w, h = cv2.boundingRect(binary)
    cloned = cv2.seamlessClone(src, dst, binary, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    return cloned[pad:-pad, pad:-pad]


def watermark(frame: np.ndarray, text: str = "SYNTHETIC - dfjax",
              position: str = "bottom-right") -> np.ndarray:
    """A copy of the frame with a visible label in one corner, so a fake is never mistaken.

    White text on a semi-transparent dark box, sized to about 1/30 of the frame height (and
    shrunk to fit narrow frames); only pixels inside that box change.
    """
    if position not in WATERMARK_POSITIONS:
        raise ValueError(f"Unknown position {position!r}; choose one of {WATERMARK_POSITIONS}.")
    height, width = frame.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    (unit_w, unit_h), _ = cv2.getTextSize(text, font, 1.0, 2)
    scale = max(height / 30.0 / unit_h, 0.3)
    scale = min(scale, 0.8 * width / unit_w)
    thickness = max(1, round(2 * scale))
    (text_w, text_h), baseline = cv2.getTextSize(text, font, scale, thickness)
    margin = max(2, round(0.4 * text_h))
    box_w, box_h = min(text_w + 2 * margin, width), min(text_h + baseline + 2 * margin, height)
    x0 = width - box_w - margin if position.endswith("right") else margin
    y0 = height - box_h - margin if position.startswith("bottom") else margin
    x0, y0 = max(0, x0), max(0, y0)
    out = frame.copy()
    box = out[y0:y0 + box_h, x0:x0 + box_w]
    box[:] = np.rint(box.astype(np.float32) * 0.4).astype(np.uint8)  # 60 % black
    label = np.zeros_like(box)
    cv2.putText(label, text, (margin, margin + text_h), font, scale, (255, 255, 255),
                thickness, cv2.LINE_AA)
    ink = label[..., :1].astype(np.float32) / 255.0 * 0.85  # text at 85 % opacity
    box[:] = np.rint(box * (1.0 - ink) + 255.0 * ink).astype(np.uint8)
    return out
