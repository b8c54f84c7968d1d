"""CNN detectors on a synthetic face-swap task: they learn it, save/load, select on validation, scale out.

The task mimics a face swap: a real image is a textured picture with camera grain and a face (68
landmarks) in it; its fake is the same picture with the face region replaced, through a soft
landmark-hull mask, by an autoencoder-like rendering of it (down- and up-sampled, so the grain is
gone, slightly recoloured). Train, validation and test images are all different pictures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage

from detect.cnn import CNNDetector, cnn_config
from detect.detectors.cnn import CNN_DETECTORS
from detect.evaluate import frame_metrics
from dfjax.faces.align import template_points

SIZE = 64


def face_landmarks(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """(68, 2) plausible landmarks: the mean face (17..67) plus a jaw arc, randomly placed and scaled."""
    inner = template_points(size, "face")
    centre, width = inner.mean(0), np.ptp(inner[:, 0])
    t = np.linspace(np.pi, 0, 17)
    jaw = np.stack([centre[0] - np.cos(t) * width * 0.55, inner[:, 1].min() + 0.3 * width + np.sin(t) * width * 0.75], 1)
    points = np.concatenate([jaw, inner])
    scale = rng.uniform(0.8, 1.0)
    shift = rng.uniform(-0.06, 0.06, 2) * size
    return ((points - size / 2) * scale + size / 2 + shift + rng.normal(0, 0.005 * size, points.shape)).astype(np.float32)


def real_images(rng: np.random.Generator, n: int, size: int = SIZE) -> np.ndarray:
    """Smooth, skin-like colour shading (random blur width, brightness, contrast) plus camera grain."""
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        sigma = rng.uniform(3, 6) * size / 64
        img = ndimage.gaussian_filter(rng.normal(size=(size, size, 3)), (sigma, sigma, 0))
        img = (img - img.mean()) / (img.std() + 1e-8) * rng.uniform(8, 15) + rng.uniform(80, 170)
        img += rng.normal(0, rng.uniform(6, 10), img.shape)
        out[i] = np.clip(img, 0, 255).round().astype(np.uint8)
    return out


def swap_fakes(rng: np.random.Generator, reals: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Each real image with its face hull replaced by a down/up-sampled, recoloured version, softly blended."""
    from detect.sbi import hull_mask

    out = np.empty_like(reals)
    size = reals.shape[1]
    for i, (img, lm) in enumerate(zip(reals, landmarks)):
        f = rng.choice([2, 3, 4])
        small = cv2.resize(img, (size // f, size // f), interpolation=cv2.INTER_AREA)
        face = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        face += rng.uniform(-8, 8, 3).astype(np.float32)
        mask = cv2.GaussianBlur(hull_mask(lm, size), (0, 0), rng.uniform(1, 2.5))[..., None]
        out[i] = np.clip(mask * face + (1 - mask) * img, 0, 255).round().astype(np.uint8)
    return out


def swap_task(seed: int, n: int, size: int = SIZE):
    """n real and n fake images (different pictures), their labels and landmarks, shuffled."""
    rng = np.random.default_rng(seed)
    landmarks = np.stack([face_landmarks(rng, size) for _ in range(2 * n)])
    pictures = real_images(rng, 2 * n, size)
    crops = np.concatenate([pictures[:n], swap_fakes(rng, pictures[n:], landmarks[n:])])
    labels = np.repeat([0, 1], n)
    order = rng.permutation(2 * n)
    return crops[order], labels[order], landmarks[order]


def tiny_config(arch: str, **changes):
    config = cnn_config(arch, tiny=True)
    for key, value in changes.items():
        section, leaf = key.split("__") if "__" in key else (None, key)
        (config[section] if section else config)[leaf] = value
    return config


@pytest.fixture(scope="module")
def task():
    train = swap_task(0, 128)
    val = swap_task(1, 32)
    test = swap_task(2, 64)
    return train, val, test


@pytest.mark.parametrize("arch", [pytest.param(a, marks=[] if a == "meso4" else [pytest.mark.slow])
                                  for a in sorted(CNN_DETECTORS)])  # meso4 by default; the others compile for a minute
def test_cnn_learns_selects_on_validation_and_reloads(arch, task, tmp_path):
    """One training run per architecture (one test each, so pytest -n spreads them over workers)."""
    (x, y, _), (xv, yv, _), (xt, yt, _) = task
    detector = CNN_DETECTORS[arch](tiny_config(arch)).fit(x, y, val=(xv, yv))
    scores = detector.score(xt)
    assert scores.shape == (len(yt),) and scores.dtype == np.float64 and np.all((scores >= 0) & (scores <= 1))
    metrics = frame_metrics(yt, scores)
    print(arch, "test AUC", metrics["auc"], "history", detector.history)
    assert metrics["auc"] >= 0.95, (arch, metrics, detector.history)  # on pictures it never saw
    # model selection: validation AUC every eval_every steps; the best one's parameters are kept
    aucs, steps = [r["val_auc"] for r in detector.history], [r["step"] for r in detector.history]
    every = detector.config.train.eval_every
    assert steps == list(range(every, detector.config.train.steps + 1, every))
    best = [r for r in detector.history if r["val_auc"] == max(aucs)]  # ties: the lower validation loss wins
    assert detector.best_val_auc == max(aucs) and detector.best_step == min(best, key=lambda r: r["val_loss"])["step"]
    assert frame_metrics(yv, detector.score(xv))["auc"] == pytest.approx(detector.best_val_auc, abs=1e-6)
    # save -> load: the same scores
    detector.save(tmp_path / arch)
    assert json.loads((tmp_path / arch / "config.json").read_text())["model"]["arch"] == arch
    loaded = CNNDetector.load(tmp_path / arch)
    assert loaded.name == arch and loaded.best_step == detector.best_step and loaded.history == detector.history
    np.testing.assert_array_equal(loaded.score(xt), scores)


def test_model_selection_can_keep_an_early_step(task):
    """With the validation labels inverted, training makes validation AUC worse: an early step is kept."""
    (x, y, _), (xv, yv, _), _ = task
    detector = CNNDetector(tiny_config("meso4", train__steps=20, train__eval_every=5)).fit(x, y, val=(xv, 1 - yv))
    aucs = [r["val_auc"] for r in detector.history]
    assert detector.best_step < 20 and aucs[-1] < detector.best_val_auc == max(aucs)
    assert frame_metrics(1 - yv, detector.score(xv))["auc"] == pytest.approx(detector.best_val_auc, abs=1e-6)


def test_training_is_deterministic_and_any_size_is_accepted(task):
    (x, y, _), _, _ = task
    config = tiny_config("meso4", train__steps=10, train__eval_every=5)
    a = CNNDetector(config).fit(x, y, seed=3)
    b = CNNDetector(config).fit(x, y, seed=3)
    c = CNNDetector(config).fit(x, y, seed=4)
    np.testing.assert_array_equal(a.train_losses, b.train_losses)
    assert len(a.train_losses) == 10 and not np.array_equal(a.train_losses, c.train_losses)
    assert a.best_step == 10 and a.best_val_auc is None  # no validation split: the last step is kept
    big = np.repeat(np.repeat(x[:5], 2, axis=1), 2, axis=2)  # 128 px crops are resized to the model's 64
    np.testing.assert_allclose(a.score(big), a.score(x[:5]), atol=1e-5)


def test_fit_refuses_bad_inputs(task):
    (x, y, _), _, _ = task
    detector = CNNDetector(tiny_config("meso4", train__steps=2))
    with pytest.raises(ValueError, match="both real"):
        detector.fit(x[:4], np.zeros(4))
    with pytest.raises(ValueError, match="landmarks"):
        CNNDetector(tiny_config("meso4", sbi=True)).fit(x, y)
    with pytest.raises(RuntimeError, match="not fitted"):
        detector.score(x[:2])


def test_registry_builds_every_detector():
    from detect.registry import DETECTORS

    assert set(DETECTORS) == {"spectral", "dct", "meso4", "mesoinception4", "xception"}
    for name, make in DETECTORS.items():
        assert make().name == name


@pytest.mark.slow
@pytest.mark.ci
def test_data_parallel_matches_one_device(tmp_path):
    """The same run on 1 and on 8 (forced host) devices gives the same loss curve: identical batches and
    random numbers, only the order of floating-point reductions differs. (Adam turns rounding-level
    gradient differences into lr-sized steps, so a small lr keeps the curves comparable for longer.)"""
    script = textwrap.dedent(f"""
        import json, sys
        import jax
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from tests.test_detect_cnn import swap_task, tiny_config
        from detect.cnn import CNNDetector
        (x, y, _), (xv, yv, _) = swap_task(0, 64), swap_task(1, 16)
        det = CNNDetector(tiny_config(sys.argv[1], train__steps=20, train__eval_every=10,
                                       train__lr=3e-4)).fit(x, y, val=(xv, yv))
        print(json.dumps({{"devices": jax.device_count(), "losses": det.train_losses.tolist(),
                          "aucs": [r["val_auc"] for r in det.history]}}))
    """)
    curves = {}
    for arch in ("meso4", "xception"):
        runs = []
        for devices in (1, 8):
            env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
            done = subprocess.run([sys.executable, "-c", script, arch], capture_output=True, text=True, env=env,
                                  timeout=600)
            assert done.returncode == 0, done.stderr
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        assert [r["devices"] for r in runs] == [1, 8]
        one, eight = np.array(runs[0]["losses"]), np.array(runs[1]["losses"])
        print(arch, "max loss difference over 20 steps, 1 vs 8 devices:", np.abs(one - eight).max())
        curves[arch] = (one, eight, [runs[0]["aucs"], runs[1]["aucs"]])
    for arch, (one, eight, aucs) in curves.items():
        np.testing.assert_allclose(eight, one, rtol=2e-3, atol=1e-4, err_msg=arch)
        np.testing.assert_allclose(aucs[1], aucs[0], atol=0.01, err_msg=arch)
