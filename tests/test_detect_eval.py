"""Detection metrics, the frequency detectors and the evaluation protocol on a synthetic up-convolution
task (seeds, cross-method matrix, robustness, checkpoints), and the report files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from detect import protocol, registry, variants
from detect.datasets import Dataset, VideoItem
from detect.evaluate import (aggregate, equal_error_rate, frame_metrics, mean_std, per_method, roc_points,
                             summarize, video_metrics, video_scores)
from detect.report import write_report
from detect.registry import DETECTORS
from detect.detectors.spectral import DCTDetector, SpectralDetector, azimuthal_profile, dct_features
from dfjax.errors import UserError

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


def _upconv_fakes(rng, n, size=64, mode="alternate"):
    """Fake: the same kind of image, downsampled 2x then upsampled by nearest neighbour ("nearest") or by
    transposed-conv-like zero insertion + a small blur ("zeros"); both leave periodic spectral peaks.
    "alternate" mixes the two."""
    base = _smooth_images(rng, n, size).astype(np.float64)
    out = np.empty_like(base, dtype=np.uint8)
    for i in range(n):
        small = base[i].reshape(size // 2, 2, size // 2, 2, 3).mean(axis=(1, 3))
        if mode == "nearest" or (mode == "alternate" and i % 2 == 0):
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


@pytest.mark.parametrize("name", ["spectral", "dct"])
def test_detectors_find_upconvolution(name, upconv_task):
    xtr, ytr, xte, yte = upconv_task
    det = DETECTORS.get(name)().fit(xtr, ytr)
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



# ---------------------------------------------------------------- the protocol on in-memory datasets


def _dataset(blocks, per_video: int = 5, tag: str = "") -> Dataset:
    """A Dataset from (images, label, method) blocks, cut into 'videos' of `per_video` images."""
    crops, labels, methods, video_ids, videos = [], [], [], [], []
    for images, label, method in blocks:
        for start in range(0, len(images), per_video):
            chunk = images[start:start + per_video]
            videos.append(VideoItem(Path(f"/synthetic/{tag}{method}/{start // per_video:03d}.mp4"), label, method,
                                    f"{tag}{method}{start}"))
            crops.append(chunk)
            labels += [label] * len(chunk)
            methods += [method] * len(chunk)
            video_ids += [len(videos) - 1] * len(chunk)
    crops = np.concatenate(crops)
    return Dataset(crops=crops, landmarks=np.zeros((len(crops), 68, 2), np.float32),
                   labels=np.asarray(labels, np.int32), video_ids=np.asarray(video_ids, np.int32),
                   methods=np.asarray(methods), frames=np.arange(len(crops)), videos=videos)


@pytest.fixture(scope="module")
def two_method_splits():
    """Real smooth images; fakes made by two up-sampling methods ("nearest", "zeros"); train/val/test."""
    rng = np.random.default_rng(7)

    def split(n_real, n_fake, tag):
        return _dataset([(_smooth_images(rng, n_real), 0, "real"),
                         (_upconv_fakes(rng, n_fake, mode="nearest"), 1, "nearest"),
                         (_upconv_fakes(rng, n_fake, mode="zeros"), 1, "zeros")], tag=tag)

    return {"train": split(80, 40, "tr"), "val": split(20, 10, "va"), "test": split(40, 20, "te")}


class SubsampledSpectral(SpectralDetector):
    """The spectral detector fitted on 3 random images per class: different seeds, different models."""

    name = "subsampled"

    def fit(self, crops, labels, *, seed=0, **kwargs):
        rng, labels = np.random.default_rng(seed), np.asarray(labels)
        idx = np.concatenate([rng.choice(np.flatnonzero(labels == k), 3, replace=False) for k in (0, 1)])
        return super().fit(crops[idx], labels[idx])


def test_mean_std_and_aggregate():
    assert mean_std([0.5]) == {"mean": 0.5, "std": 0.0, "values": [0.5]}
    m = mean_std([0.8, 0.9, 1.0])
    assert m["mean"] == pytest.approx(0.9) and m["std"] == pytest.approx(0.1)  # sample std
    runs = [summarize([0, 0, 1, 1], s, ["a", "b", "c", "d"], ["real", "real", "A", "A"])
            for s in ([0.1, 0.2, 0.8, 0.9], [0.1, 0.9, 0.8, 0.2])]
    agg = aggregate(runs)
    assert agg["frame"]["auc"]["values"] == [1.0, 0.5] and agg["frame"]["auc"]["std"] > 0
    assert set(agg) == {"frame", "video", "per_method"} and set(agg["per_method"]) == {"A"}


def test_seeds_give_mean_and_std(two_method_splits, monkeypatch):
    monkeypatch.setitem(registry.DETECTORS._items, "subsampled", SubsampledSpectral)  # registered for this test only
    d = two_method_splits
    specs = {"subsampled": ("subsampled", None), "spectral": ("spectral", None)}
    trained = protocol.train_all(specs, d["train"], d["val"], [0, 1, 2])
    agg = {name: aggregate(protocol.score_runs(runs, d["test"])) for name, runs in trained.items()}
    sub = agg["subsampled"]["frame"]["auc"]
    assert len(sub["values"]) == 3 and len(set(sub["values"])) > 1 and sub["std"] > 0, sub
    assert sub["mean"] > 0.6 and agg["subsampled"]["video"]["auc"]["std"] >= 0
    assert agg["spectral"]["frame"]["auc"]["std"] == 0.0  # logistic regression ignores the seed


def test_cross_method_matrix(two_method_splits):
    d = two_method_splits
    cross = protocol.cross_method({"spectral": ("spectral", None)}, d["train"], d["val"], d["test"], [0])
    c = cross["spectral"]
    assert c["methods"] == ["nearest", "zeros"]
    auc = np.asarray(c["auc"])
    assert auc.shape == (2, 2) and np.all(np.diag(auc) > 0.9), auc
    assert np.asarray(c["auc_std"]).shape == (2, 2)
    one = protocol.subset(d["train"], d["train"].methods != "zeros")
    assert protocol.cross_method({"spectral": ("spectral", None)}, one, None, d["test"], [0]) == {}


def test_robustness_spectral_falls_with_jpeg_quality(two_method_splits):
    d = two_method_splits
    trained = protocol.train_all({"spectral": ("spectral", None)}, d["train"], d["val"], [0])
    rob = protocol.robustness(trained, d["test"], {"jpeg": [90, 50, 10]}, variants.apply)["spectral"]
    aucs = [rob["clean"]["mean"]] + [lv["frame_auc"]["mean"] for lv in rob["levels"]]
    assert aucs[0] > 0.95 and aucs[-1] < aucs[0] - 0.2, aucs  # strong JPEG hides the up-sampling peaks
    assert all(a >= b - 0.02 for a, b in zip(aucs, aucs[1:])), aucs  # lower quality, lower AUC
    assert [lv["level"] for lv in rob["levels"]] == [90, 50, 10]
    assert rob["levels"][-1]["drop"] == pytest.approx(aucs[0] - aucs[-1])


@pytest.fixture(scope="module")
def trained_pair(two_method_splits, tmp_path_factory):
    """spectral and dct trained for seeds 0 and 1, saved under a checkpoint root: (trained, root)."""
    d, root = two_method_splits, tmp_path_factory.mktemp("ckpt")
    specs = {"spectral": ("spectral", None), "dct": ("dct", None)}
    return protocol.train_all(specs, d["train"], d["val"], [0, 1], save_root=root), root


def test_checkpoints_reload_to_the_same_scores(two_method_splits, trained_pair, tmp_path):
    d, (trained, ckpt) = two_method_splits, trained_pair
    assert sorted(p.name for p in (ckpt / "dct").iterdir()) == ["seed_0", "seed_1"]
    for root in (ckpt, ckpt / "dct", ckpt / "dct" / "seed_1"):
        loaded = protocol.load_all(["dct"], root)["dct"]
        for t in loaded:
            np.testing.assert_array_equal(t.detector.score(d["test"].crops),
                                          trained["dct"][t.seed].detector.score(d["test"].crops))
    with pytest.raises(UserError, match="holds no saved detector"):
        protocol.load_all(["dct"], tmp_path)
    with pytest.raises(UserError, match="not meso4"):
        protocol.load_all(["meso4"], ckpt / "dct")


# ---------------------------------------------------------------- report


def test_write_report(tmp_path, two_method_splits, trained_pair):
    d, (trained, _) = two_method_splits, trained_pair
    summaries = {k: protocol.score_runs(runs, d["test"]) for k, runs in trained.items()}
    counts = {"real_videos": 8, "fake_videos": 8, "real_frames": 40, "fake_frames": 40, "frames_sampled": 90,
              "frames_without_face": 10, "videos_without_face": 1, "fake_methods": {"nearest": 20, "zeros": 20}}
    report = {"settings": {"frames": 8, "size": 64, "seeds": [0, 1]},
              "dataset": {"train": counts, "test": counts},
              "detectors": {k: {"mean": aggregate(s), "seeds": [{"seed": i, "train_seconds": 0.1, **r}
                                                                for i, r in enumerate(s)]}
                            for k, s in summaries.items()},
              "cross_method": protocol.cross_method({"spectral": ("spectral", None)}, d["train"], None, d["test"], [0]),
              "robustness": protocol.robustness(trained, d["test"], {"blur": [1.0]}, variants.apply),
              "compression": {k: {"raw": aggregate(s)} for k, s in summaries.items()},
              "notes": ["a note"]}
    paths = write_report(report, tmp_path / "rep")
    out = tmp_path / "rep"
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "roc_dct.png", "roc_spectral.png"]
    data = json.loads((out / "report.json").read_text())
    assert data["detectors"]["spectral"]["mean"]["frame"]["auc"]["mean"] == pytest.approx(
        report["detectors"]["spectral"]["mean"]["frame"]["auc"]["mean"])
    md = (out / "report.md").read_text()
    for heading in ("## Dataset", "## Main results", "## Per manipulation method", "## Cross-method matrix",
                    "## Robustness", "## Compression", "## Notes", "## ROC curves"):
        assert heading in md, heading
    assert "| train | 8 / 8 | 40 / 40 | 10 of 90 | 1 |" in md
    assert " ± " in md and "| nearest |" in md and "| blur | 1.0 |" in md
    png = (out / "roc_spectral.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert paths["json"] == out / "report.json"


# ---------------------------------------------------------------- saving without pickle


@pytest.mark.parametrize("name", ["spectral", "dct"])
def test_feature_detectors_save_arrays_and_json_and_score_the_same(name, upconv_task, tmp_path):
    xtr, ytr, xte, _ = upconv_task
    det = DETECTORS.get(name)().fit(xtr, ytr)
    det.save(tmp_path / name)
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["settings.json", "weights.npz"]
    loaded = DETECTORS.get(name).load(tmp_path / name)
    assert type(loaded) is type(det) and loaded.settings() == det.settings()
    np.testing.assert_array_equal(loaded.score(xte), det.score(xte))
    other = {"spectral": DCTDetector, "dct": SpectralDetector}[name]
    with pytest.raises(UserError, match=f"holds no saved {other.name} detector"):
        other.load(tmp_path / name)  # another detector's folder is refused


class _MakesMarker:
    """Unpickling this creates `marker`: what a crafted pickle in a checkpoint folder could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_crafted_pickles_in_a_checkpoint_are_never_unpickled(tmp_path):
    import pickle

    from detect import run

    marker = tmp_path / "code_ran"
    ckpt = tmp_path / "checkpoints" / "spectral" / "seed_0"
    ckpt.mkdir(parents=True)
    (ckpt / protocol.CHECKPOINT_META).write_text(json.dumps(
        {"detector": "spectral", "class": "detect.detectors.spectral:SpectralDetector", "seed": 0}))
    for name in ("model.joblib", "model.pkl"):
        (ckpt / name).write_bytes(pickle.dumps(_MakesMarker(marker)))
    (ckpt / "settings.json").write_text(json.dumps({"detector": "spectral", "settings": {}}))
    with open(ckpt / "weights.npz", "wb") as f:  # an object array: np.savez pickles it
        np.savez(f, mean=np.array([_MakesMarker(marker)], dtype=object), scale=np.ones(1), coef=np.ones(1),
                 intercept=np.zeros(1))

    def detect_eval(**kwargs):
        return run.detect_eval([tmp_path / "none.csv"], [tmp_path / "none.csv"], ["spectral"], tmp_path / "out",
                               checkpoint=tmp_path / "checkpoints", **kwargs)

    with pytest.raises(UserError, match="holds no saved spectral detector"):
        detect_eval()
    assert not marker.exists()
    # a record naming a detector the registry lacks (or code to import) is refused in one sentence
    (ckpt / protocol.CHECKPOINT_META).write_text(json.dumps({"detector": "os:system", "seed": 0, "label": "spectral"}))
    with pytest.raises(UserError, match="named 'os:system', which this dfjax does not have") as error:
        detect_eval()
    assert str(error.value).count(". ") == 0 and not marker.exists()
