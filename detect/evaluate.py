"""Detector scoring: frame-level, video-level and per-manipulation-method metrics.

Convention everywhere: label 1 = fake, 0 = real; a score is the probability (or any monotone
confidence) that the input is fake, higher = more fake.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def _prepare(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.size} labels but {scores.size} scores")
    if labels.size == 0:
        raise ValueError("no samples to evaluate")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or inf")
    uniq = set(np.unique(labels).tolist())
    if not uniq <= {0, 1}:
        raise ValueError(f"labels must be 0 (real) or 1 (fake), got values {sorted(uniq)}")
    if len(uniq) < 2:
        which = "real (0)" if 0 in uniq else "fake (1)"
        raise ValueError(f"metrics need both real and fake samples, but all {labels.size} are {which}")
    return labels.astype(np.int64), scores


def equal_error_rate(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """The error rate where FPR equals FNR (= 1 - TPR), linearly interpolated along the ROC curve."""
    fpr, fnr = np.asarray(fpr, np.float64), 1.0 - np.asarray(tpr, np.float64)
    diff = fpr - fnr  # non-decreasing along the curve: from -1 (fpr 0, fnr 1) to +1
    i = int(np.argmax(diff >= 0))
    if diff[i] == 0 or i == 0:
        return float((fpr[i] + fnr[i]) / 2)
    t = -diff[i - 1] / (diff[i] - diff[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def roc_points(labels, scores) -> dict:
    """ROC curve as plain lists: {"fpr": [...], "tpr": [...], "thresholds": [...]} (first threshold
    is +inf in sklearn; it is clipped to max(score) + 1 so the dict stays JSON-serialisable)."""
    labels, scores = _prepare(labels, scores)
    fpr, tpr, thr = roc_curve(labels, scores)
    thr = np.where(np.isfinite(thr), thr, scores.max() + 1.0)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thr.tolist()}


def frame_metrics(labels, scores, threshold: float = 0.5) -> dict:
    """AUC, average precision (fake = positive), EER, accuracy at ``threshold`` and class counts."""
    labels, scores = _prepare(labels, scores)
    fpr, tpr, _ = roc_curve(labels, scores)
    return {
        "auc": float(roc_auc_score(labels, scores)),
        "ap": float(average_precision_score(labels, scores)),
        "eer": equal_error_rate(fpr, tpr),
        "acc_at_0_5": float(np.mean((scores >= threshold).astype(np.int64) == labels)),
        "n_real": int(np.sum(labels == 0)),
        "n_fake": int(np.sum(labels == 1)),
    }


def video_scores(video_ids, labels, scores) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Average frame scores per video (ids compared as full path strings, first-seen order).

    Returns (ids, video labels, mean scores). Frames of one video must share one label.
    """
    ids = [str(v) for v in video_ids]
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if not (len(ids) == labels.size == scores.size):
        raise ValueError(f"{len(ids)} video ids, {labels.size} labels, {scores.size} scores")
    groups: OrderedDict[str, list[int]] = OrderedDict()
    for i, vid in enumerate(ids):
        groups.setdefault(vid, []).append(i)
    out_labels, out_scores = [], []
    for vid, idx in groups.items():
        vl = np.unique(labels[idx])
        if vl.size != 1:
            raise ValueError(f"video {vid!r} has frames with mixed labels {vl.tolist()}")
        out_labels.append(int(vl[0]))
        out_scores.append(float(scores[idx].mean()))
    return list(groups), np.asarray(out_labels, np.int64), np.asarray(out_scores)


def video_metrics(video_ids, labels, scores, threshold: float = 0.5) -> dict:
    """Frame scores averaged per video, then :func:`frame_metrics` on the videos (+ ``n_videos``)."""
    ids, vlabels, vscores = video_scores(video_ids, labels, scores)
    out = frame_metrics(vlabels, vscores, threshold)
    out["n_videos"] = len(ids)
    return out


def per_method(methods, labels, scores, threshold: float = 0.5) -> dict:
    """Metrics for each fake manipulation method against all real frames.

    ``methods[i]`` names the method of frame i; it is ignored for real frames (label 0).
    Returns {method: frame_metrics} in sorted method order.
    """
    methods = np.asarray([str(m) for m in methods])
    labels, scores = _prepare(labels, scores)
    if methods.size != labels.size:
        raise ValueError(f"{methods.size} methods but {labels.size} labels")
    real = labels == 0
    out = {}
    for m in sorted(set(methods[~real].tolist())):
        sel = real | ((labels == 1) & (methods == m))
        out[m] = frame_metrics(labels[sel], scores[sel], threshold)
    return out


def summarize(labels, scores, video_ids=None, methods=None) -> dict:
    """Everything :func:`detect.report.write_report` wants for one detector:
    {"frame": metrics, "roc": {"frame": pts[, "video": pts]}[, "video": metrics][, "per_method": ...]}.
    """
    out = {"frame": frame_metrics(labels, scores), "roc": {"frame": roc_points(labels, scores)}}
    if video_ids is not None:
        out["video"] = video_metrics(video_ids, labels, scores)
        _, vl, vs = video_scores(video_ids, labels, scores)
        out["roc"]["video"] = roc_points(vl, vs)
    if methods is not None:
        out["per_method"] = per_method(methods, labels, scores)
    return out


METRICS = ("auc", "ap", "eer", "acc_at_0_5")


def mean_std(values) -> dict:
    """{"mean", "std", "values"} of per-seed numbers; std is the sample std (ddof=1), 0 for one seed."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values to average")
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)), "std": std, "values": values}


def aggregate(runs: list[dict]) -> dict:
    """Per-seed :func:`summarize` results -> mean ± std of every metric over the seeds:
    {"frame": {metric: mean_std}, "video": {...} (when present), "per_method": {method: {metric: ...}}}.
    """
    if not runs:
        raise ValueError("no runs to aggregate")
    out = {level: {k: mean_std([r[level][k] for r in runs]) for k in METRICS}
           for level in ("frame", "video") if all(level in r for r in runs)}
    if all(r.get("per_method") for r in runs):
        methods = sorted(set.intersection(*(set(r["per_method"]) for r in runs)))
        out["per_method"] = {m: {k: mean_std([r["per_method"][m][k] for r in runs]) for k in METRICS}
                             for m in methods}
    return out
