"""First Order Motion Model: warping, keypoints, a tiny model that learns and resumes exactly on
synthetic videos, and `dfjax animate`'s output contract and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from dfjax import media
from dfjax.cli import app
from dfjax.config import apply_overrides, load_config
from dfjax.data.synthetic import synthesize
from dfjax.models import fomm
from dfjax.training.core import train

runner = CliRunner()
STEPS = 12


def _map_coordinates(image, grid, mode):
    """Reference bilinear sampling with scipy's semantics, at align_corners pixel positions."""
    h, w = image.shape[1:3]
    x, y = (grid[..., 0] + 1) / 2 * (w - 1), (grid[..., 1] + 1) / 2 * (h - 1)
    return jnp.stack([jnp.stack([jax.scipy.ndimage.map_coordinates(image[b, ..., c], [y[b], x[b]], order=1,
                                                                    mode=mode, cval=0.0)
                                 for c in range(image.shape[-1])], -1) for b in range(image.shape[0])])


def test_warp_matches_map_coordinates_and_identity_reproduces_the_input():
    rng = np.random.default_rng(0)
    image = jnp.asarray(rng.random((2, 9, 11, 3)), jnp.float32)
    grid = jnp.asarray(rng.uniform(-1.3, 1.3, (2, 5, 7, 2)), jnp.float32)  # some points outside the image
    np.testing.assert_allclose(fomm.warp(image, grid), _map_coordinates(image, grid, "constant"), atol=1e-6)
    np.testing.assert_allclose(fomm.warp(image, grid, "reflection"), _map_coordinates(image, grid, "mirror"),
                               atol=1e-6)
    identity = jnp.broadcast_to(fomm.identity_grid(9, 11), (2, 9, 11, 2))
    np.testing.assert_allclose(fomm.warp(image, identity), image, atol=1e-6)


def test_tps_jacobian_matches_finite_differences():
    with jax.enable_x64(True):  # central differences in float64: the warp has kinks (L1 distances to control points)
        tps = jax.tree.map(lambda a: a.astype(jnp.float64), fomm.random_tps(jax.random.key(1), 2, 0.05, 0.005, 5))
        points = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (2, 10, 2)), jnp.float64)
        jacobian, eps = fomm.tps_jacobian(tps, points), 1e-6
        for i in range(2):
            step = jnp.zeros(2, jnp.float64).at[i].set(eps)
            numeric = (fomm.tps_points(tps, points + step) - fomm.tps_points(tps, points - step)) / (2 * eps)
            np.testing.assert_allclose(jacobian[..., i], numeric, atol=1e-5)


def test_keypoints_shapes_and_equal_keypoints_give_the_identity_flow():
    detector = fomm.KeypointDetector(num_kp=5, block_expansion=8, max_features=16, num_blocks=2, scale=0.5)
    images = jnp.asarray(np.random.default_rng(2).random((2, 32, 32, 3)), jnp.float32)
    kp, _ = jax.jit(detector.init_with_output)(jax.random.key(0, impl="rbg"), images)
    assert kp["value"].shape == (2, 5, 2) and kp["jacobian"].shape == (2, 5, 2, 2)
    assert float(jnp.abs(kp["value"]).max()) <= 1.0
    np.testing.assert_allclose(kp["jacobian"], jnp.broadcast_to(jnp.eye(2), (2, 5, 2, 2)), atol=1e-6)  # init
    motion = fomm.DenseMotion(block_expansion=8, max_features=16, num_blocks=2, scale=0.25)
    out, _ = jax.jit(motion.init_with_output)(jax.random.key(1, impl="rbg"), images, kp, kp)
    assert out["deformation"].shape == (2, 8, 8, 2) and out["occlusion"].shape == (2, 8, 8, 1)
    np.testing.assert_allclose(out["mask"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out["deformation"], jnp.broadcast_to(fomm.identity_grid(8, 8), (2, 8, 8, 2)),
                               atol=1e-5)


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_animate")
    synthesize(out, frames=24, size=64, face_size=32)
    return out


def tiny_config(synth: Path, steps: int, **extra):
    overrides = [f"data.a='{synth / 'facesets' / 'a'}'", f"data.b='{synth / 'facesets' / 'b'}'", "model.res=32",
                 "model.keypoints.scale=0.5", "model.keypoints.block_expansion=8", "model.generator.block_expansion=8",
                 "model.dense_motion.block_expansion=8", "model.keypoints.num_blocks=2",
                 "model.dense_motion.num_blocks=2", "model.generator.num_bottleneck_blocks=1", "train.batch=4", "train.lr=1e-3", f"train.steps={steps}",
                 "log.every=1", "log.preview_every=100", "log.checkpoint_every=100"]
    return apply_overrides(load_config("configs/animate.py:tiny"), overrides + [f"{k}={v}" for k, v in extra.items()])


def _losses(workdir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (workdir / "metrics.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth) -> Path:
    workdir = tmp_path_factory.mktemp("fomm")
    summary = train(tiny_config(synth, STEPS), workdir)
    assert summary["step"] == STEPS and summary["videos"] == 2 and summary["perceptual"] == "l1 pyramid"
    return workdir


def test_training_reduces_the_loss(trained):
    losses = _losses(trained)
    assert sorted(losses) == list(range(1, STEPS + 1))
    first, last = np.mean([losses[s] for s in (1, 2, 3)]), np.mean([losses[s] for s in range(STEPS - 2, STEPS + 1)])
    assert last < 0.8 * first, losses
    record = json.loads((trained / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"l1_pyramid", "equivariance_value", "equivariance_jacobian"} <= set(record)
    assert (trained / "previews" / "latest.png").exists()


def test_resume_continues_the_same_loss_curve(tmp_path, synth, trained):
    half = STEPS // 2
    train(tiny_config(synth, half), tmp_path / "resumed")
    summary = train(tiny_config(synth, STEPS), tmp_path / "resumed")
    assert summary["steps_run"] == STEPS - half
    straight, resumed = _losses(trained), _losses(tmp_path / "resumed")
    assert sorted(resumed) == list(range(1, STEPS + 1))
    for step in range(1, STEPS + 1):
        assert resumed[step] == pytest.approx(straight[step], rel=1e-6, abs=1e-7), step


def test_vgg19_perceptual_loss_from_a_small_weights_file(tmp_path):
    from dfjax.training.animate import AnimateTrainer

    rng, widths, cin, arrays = np.random.default_rng(3), [4, 4, 6, 6, 8, 8, 8, 8, 8, 8, 8, 8, 8], 3, {}
    for (name, _, _), cout in zip(fomm.VGG19_CONVS, widths):
        arrays[f"{name}/kernel"] = rng.normal(0, 0.3, (3, 3, cin, cout)).astype(np.float32)
        arrays[f"{name}/bias"] = np.zeros(cout, np.float32)
        cin = cout
    path = tmp_path / "vgg19_small.npz"
    np.savez(path, **arrays)
    module, params = fomm.load_vgg19(path)
    assert module.widths == tuple(widths)
    trainer = AnimateTrainer(load_config("configs/animate.py:tiny", ["model.res=32", "model.keypoints.scale=0.5"]))
    trainer.vgg = (module, params)
    a = jnp.asarray(rng.random((2, 32, 32, 3)), jnp.float32)
    b = jnp.asarray(rng.random((2, 32, 32, 3)), jnp.float32)
    perceptual = jax.jit(trainer.perceptual)
    assert float(perceptual(a, a, params)) == 0.0 and float(perceptual(a, b, params)) > 0.0
    del arrays["conv3_2/kernel"]
    np.savez(tmp_path / "broken.npz", **arrays)
    with pytest.raises(ValueError, match="conv3_2"):
        fomm.load_vgg19(tmp_path / "broken.npz")


# ----------------------------------------------------------------------------- dfjax animate


def test_animate_cli_writes_video_masks_and_sidecar(tmp_path, trained, astronaut_png, panned_video):
    out = tmp_path / "out" / "animated.mp4"
    args = ["animate", "--model", str(trained), "--source", str(astronaut_png), "--driver", str(panned_video),
            "-o", str(out), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    masks, sidecar = out.with_suffix(".masks.mkv"), out.with_suffix(".json")
    driver_frames = media.probe(panned_video).frames
    assert media.probe(out).frames == driver_frames == media.probe(masks).frames
    assert (media.probe(out).width, media.probe(out).height) == (512, 512)
    tag = media.container_metadata(out)
    assert tag["dfjax_method"] == "fomm" and tag["dfjax_synthetic"] == "true" and "SYNTHETIC" in tag["comment"]
    assert tag["DigitalSourceType"] == "trainedAlgorithmicMedia"
    records = json.loads(sidecar.read_text())
    assert records["method"] == "fomm" and len(records["frames"]) == driver_frames
    assert all(r["manipulated"] and len(r["faces"][0]["keypoints"]) == 10 for r in records["frames"])
    mask = next(media.iter_frames(masks, gray=True))[1]
    x0, y0, x1, y1 = records["frames"][0]["faces"][0]["box"]
    assert mask[(y0 + y1) // 2, (x0 + x1) // 2] == 255 and mask[0, 0] == 0
    assert not list(out.parent.glob(".*partial*"))
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_bad_inputs_exit_2(tmp_path, trained, astronaut_png, panned_video, frameless_video):
    swap_like = tmp_path / "swap_run"
    swap_like.mkdir()
    (swap_like / "config.json").write_text(json.dumps({"model": {"arch": "tiny"}}))
    blank = tmp_path / "blank.png"
    media.write_image(blank, np.full((200, 200, 3), 128, np.uint8))
    empty = frameless_video
    out = tmp_path / "o.mp4"
    cases = {
        "no face in the source": ["--model", str(trained), "--source", str(blank), "--driver", str(panned_video)],
        "driver without frames": ["--model", str(trained), "--source", str(astronaut_png), "--driver", str(empty)],
        "wrong kind of model": ["--model", str(swap_like), "--source", str(astronaut_png), "--driver",
                                str(panned_video)],
        "no model": ["--model", str(tmp_path / "missing"), "--source", str(astronaut_png), "--driver",
                     str(panned_video)],
        "unknown mode": ["--model", str(trained), "--source", str(astronaut_png), "--driver", str(panned_video),
                         "--mode", "sideways"],
        "unknown preset": ["--model", str(trained), "--source", str(astronaut_png), "--driver", str(panned_video),
                           "--preset", "placebo"],
    }
    for name, args in cases.items():
        result = runner.invoke(app, ["animate", *args, "-o", str(out), "--quiet"])
        assert result.exit_code == 2, (name, result.output)
        assert "error:" in result.output and "Traceback" not in result.output, name
        assert not list(tmp_path.glob("o.*")) and not list(tmp_path.glob(".o*")), name
    swapped = runner.invoke(app, ["swap", str(panned_video), "-o", str(tmp_path / "s.mp4"), "--model", str(trained),
                                  "--quiet"])
    assert swapped.exit_code == 2 and "dfjax animate" in swapped.output, swapped.output
