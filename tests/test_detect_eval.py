"""Detection metrics, the two frequency detectors on a synthetic up-convolution task, and reports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from detect.evaluate import (equal_error_rate, frame_metrics, per_method, roc_points, summarize,
                             video_metrics, video_scores)
from detect.report import write_report
from detect.spectral import DETECTORS, DCTDetector, SpectralDetector, azimuthal_profile, dct_features

# ---------------------------------------------------------------- metrics on hand-made cases


def test_perfect_separation():
    m = frame_metrics([0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.8, 0.9])
    assert m["auc"] == 1.0 and m["ap"] == 1.0 and m["eer"] == 0.0 and m["acc_at_0_5"] == 1.0
    assert (m["n_real"], m["n_fake"]) == (3, 2)


def test_reversed_scores():
    m = frame_metrics([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1])
    assert m["auc"] == 0.0 and m["eer"] == 1.0 and m["acc_at_0_5"] == 0.0


def test_random_scores_near_chance():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 4000)
    m = frame_metrics(labels, rng.random(4000))
    assert abs(m["auc"] - 0.5) < 0.05 and abs(m["eer"] - 0.5) < 0.05
    assert abs(m["ap"] - labels.mean()) < 0.05


def test_eer_interpolates_between_roc_points():
    # FPR steps 0 -> 0.5 while FNR steps 0.5 -> 0 ... crossing exactly half-way: EER 0.25
    assert equal_error_rate([0.0, 0.0, 0.5, 1.0], [0.0, 0.5, 1.0, 1.0]) == pytest.approx(0.25)
    m = frame_metrics([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4])  # one swapped pair
    assert m["auc"] == pytest.approx(0.75) and m["eer"] == pytest.approx(0.5)  # at threshold 0.3


def test_single_class_raises():
    with pytest.raises(ValueError, match="both real and fake"):
        frame_metrics([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(ValueError, match="both real and fake"):
        video_metrics(["a", "a"], [0, 0], [0.1, 0.2])


def test_video_averaging_groups_by_full_path():
    ids = ["/x/real/001.mp4", "/x/real/001.mp4", "/y/real/001.mp4", "/x/fake/001.mp4",
           "/x/fake/001.mp4", "/x/fake/001.mp4"]
    labels = [0, 0, 0, 1, 1, 1]
    scores = [0.1, 0.7, 0.2, 0.9, 0.3, 0.6]  # frame-level not separable: AUC < 1
    vids, vl, vs = video_scores(ids, labels, scores)
    assert vids == ["/x/real/001.mp4", "/y/real/001.mp4", "/x/fake/001.mp4"]  # same name, two paths
    np.testing.assert_allclose(vs, [0.4, 0.2, 0.6])
    np.testing.assert_array_equal(vl, [0, 0, 1])
    assert frame_metrics(labels, scores)["auc"] < 1.0
    vm = video_metrics(ids, labels, scores)
    assert vm["auc"] == 1.0 and vm["n_videos"] == 3 and (vm["n_real"], vm["n_fake"]) == (2, 1)
    with pytest.raises(ValueError, match="mixed labels"):
        video_metrics(["a", "a", "b"], [0, 1, 1], [0.1, 0.2, 0.3])


def test_per_method_and_roc_points():
    methods = ["real", "real", "A", "A", "B", "B"]
    labels = [0, 0, 1, 1, 1, 1]
    scores = [0.2, 0.3, 0.9, 0.8, 0.1, 0.25]
    pm = per_method(methods, labels, scores)
    assert set(pm) == {"A", "B"}
    assert pm["A"]["auc"] == 1.0 and pm["B"]["auc"] == pytest.approx(0.25)
    assert pm["A"]["n_real"] == 2 and pm["A"]["n_fake"] == 2
    roc = roc_points(labels, scores)
    assert roc["fpr"][0] == 0 and roc["fpr"][-1] == 1 and roc["tpr"][-1] == 1
    assert all(np.isfinite(roc["thresholds"]))
    json.dumps(roc)


# ---------------------------------------------------------------- synthetic up-convolution task


def _smooth_images(rng, n, size=64):
    """Real: low-pass filtered colour noise with a random blur width and a random brightness."""
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        sigma = rng.uniform(1.5, 3.0)
        img = ndimage.gaussian_filter(rng.normal(size=(size, size, 3)), (sigma, sigma, 0))
        img = (img - img.mean()) / (img.std() + 1e-8) * rng.uniform(30, 50) + rng.uniform(90, 160)
        out[i] = np.clip(img, 0, 255).round().astype(np.uint8)
    return out


def _upconv_fakes(rng, n, size=64):
    """Fake: the same kind of image, downsampled 2x then upsampled by nearest neighbour or by
    transposed-conv-like zero insertion + a small blur (both leave periodic spectral peaks)."""
    base = _smooth_images(rng, n, size).astype(np.float64)
    out = np.empty_like(base, dtype=np.uint8)
    for i in range(n):
        small = base[i].reshape(size // 2, 2, size // 2, 2, 3).mean(axis=(1, 3))
        if i % 2 == 0:
            up = small.repeat(2, axis=0).repeat(2, axis=1)
        else:
            up = np.zeros_like(base[i])
            up[::2, ::2] = 4 * small
            up = ndimage.convolve(up, np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]])[..., None] / 16.0,
                                  mode="wrap")
        out[i] = np.clip(up, 0, 255).round().astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def upconv_task():
    rng = np.random.default_rng(1234)
    n_train, n_test = 200, 100
    x = np.concatenate([_smooth_images(rng, (n_train + n_test) // 2),
                        _upconv_fakes(rng, (n_train + n_test) // 2)])
    y = np.repeat([0, 1], (n_train + n_test) // 2)
    perm = rng.permutation(len(y))
    x, y = x[perm], y[perm]
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def test_feature_shapes():
    grey = np.random.default_rng(0).random((3, 64, 64))
    assert azimuthal_profile(grey).shape == (3, 32)
    assert dct_features(grey, 32).shape == (3, 32 * 32)
    assert dct_features(grey[:, :16, :16], 32).shape == (3, 16 * 16)  # small S: all coefficients


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detectors_find_upconvolution(name, upconv_task):
    xtr, ytr, xte, yte = upconv_task
    det = DETECTORS[name]().fit(xtr, ytr)
    assert det.name == name
    s = det.score(xte)
    assert s.shape == (len(yte),) and np.all((s >= 0) & (s <= 1))
    m = frame_metrics(yte, s)
    assert m["auc"] > 0.9, (name, m)
    assert m["acc_at_0_5"] > 0.8, (name, m)


def test_detector_errors():
    x = np.zeros((4, 16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="one class"):
        SpectralDetector().fit(x, [0, 0, 0, 0])
    with pytest.raises(RuntimeError, match="not fitted"):
        DCTDetector().score(x)


# ---------------------------------------------------------------- report


def test_write_report(tmp_path):
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1], 60)
    vids = [f"/data/{'fake' if l else 'real'}/{i // 6:03d}.mp4" for i, l in enumerate(labels)]
    methods = ["real"] * 60 + ["Deepfakes"] * 30 + ["FaceSwap"] * 30
    results = {
        "spectral": summarize(labels, np.clip(labels * 0.5 + rng.normal(0.25, 0.2, 120), 0, 1),
                              vids, methods),
        "dct": summarize(labels, rng.random(120), vids),
    }
    paths = write_report(results, tmp_path / "rep")
    out = tmp_path / "rep"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["report.json", "report.md", "roc_dct.png", "roc_spectral.png"]  # no temp left
    data = json.loads((out / "report.json").read_text())
    assert data["spectral"]["frame"]["auc"] == pytest.approx(results["spectral"]["frame"]["auc"])
    assert set(data["spectral"]["per_method"]) == {"Deepfakes", "FaceSwap"}
    md = (out / "report.md").read_text()
    assert "| detector |" in md and "frame AUC" in md and "video AUC" in md and "| dct |" in md
    assert "FaceSwap" in md
    png = (out / "roc_spectral.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert paths["json"] == out / "report.json"
