"""The deep-video-portrait conditioning branch of the swap model: wiring, parameters, data
windows, augmentation of the maps, training with exact resume, and swapping with retargeted maps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dfjax.config import apply_overrides, load_config
from dfjax.data.augment import AugmentConfig, augment_batch, target_geometry
from dfjax.data.controls import causal_windows, face_controls, move_controls, render_window
from dfjax.data.faceset import FaceSet
from dfjax.models.autoencoder import FaceSwapAE, count_params, param_count
from dfjax.training.core import abstract_state, load_trained
from dfjax.training.core import train
from tests.test_train import final_params, losses_of

STEPS = 6


def dvp_config(sets, steps: int, **extra):
    config = load_config("configs/swap_dvp.py:tiny")
    overrides = [f"data.a='{sets[0]}'", f"data.b='{sets[1]}'", "model.tiny_res=32", "train.batch_per_side=4",
                 f"train.steps={steps}", "train.lr=1e-3", "log.every=1", "log.preview_every=100000",
                 "log.checkpoint_every=3"]
    return apply_overrides(config, overrides + [f"{k}={v}" for k, v in extra.items()])


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    from dfjax.data.synthetic import synthesize

    out = tmp_path_factory.mktemp("dvp_synth")
    synthesize(out, frames=12, size=160, face_size=64)
    return out


@pytest.fixture(scope="module")
def sets(synth) -> tuple[Path, Path]:
    return synth / "facesets" / "a", synth / "facesets" / "b"


@pytest.fixture(scope="module")
def dvp_run(tmp_path_factory, sets) -> Path:
    """A conditioned tiny model trained STEPS steps (checkpoints every 3)."""
    workdir = tmp_path_factory.mktemp("dvp_run")
    train(dvp_config(sets, STEPS), workdir)
    return workdir


# ----------------------------------------------------------------------------- the model


def test_branch_off_is_exactly_the_plain_model(sets):
    plain = abstract_state(apply_overrides(load_config("configs/swap.py:tiny"), ["model.tiny_res=32"]))
    off = abstract_state(dvp_config(sets, 1, **{"model.cond_window": 0}))
    on = abstract_state(dvp_config(sets, 1))
    assert count_params(off.params) == count_params(plain.params)
    assert jax.tree.structure(off.params) == jax.tree.structure(plain.params)
    assert param_count("tiny", cond_channels=0) == param_count("tiny") == 1_481_448
    assert count_params(on.params) > count_params(plain.params) + 100_000
    assert "cond_encoder" in on.params and "face_cond2" in on.params["decoder_b"]


@pytest.fixture(scope="module")
def trained(dvp_run, sets):
    """The run's raw (not EMA) parameters, a jitted conditioned swap, and maps of face-set windows."""
    model = load_trained(dvp_run, use_ema=False)
    faceset = FaceSet(sets[0])
    controls = face_controls(faceset, 3)
    scale = model.resolution / faceset.size

    def window(i):
        picked = {k: jnp.asarray(v[controls["windows"][[i]]]) for k, v in controls.items() if k != "windows"}
        picked["landmarks"] = picked["landmarks"] * scale
        return render_window(picked, model.resolution)

    @jax.jit
    def swap(params, x, maps):
        return model.generator.apply({"params": params}, x, "b", maps, method=model.generator.swap)[0]

    x = jnp.asarray(faceset.faces[:1, ::2, ::2], jnp.float32) / 255.0
    return model, swap, window, x


@pytest.mark.slow  # needs the trained run: the zero-initialised branch is a no-op before training
def test_output_follows_only_the_maps(trained):
    model, swap, window, x = trained
    first, again, other = swap(model.params, x, window(2)), swap(model.params, x, window(2)), swap(model.params, x, window(9))
    np.testing.assert_array_equal(first, again)
    assert float(jnp.abs(first - other).mean()) > 1e-4  # same face, other maps: another output
    # ...and through the modulation alone: with gamma and beta at zero (their initial value) it is the plain model
    zeroed = jax.tree_util.tree_map_with_path(
        lambda path, v: jnp.zeros_like(v) if any(getattr(k, "key", None) in ("gamma", "beta") for k in path) else v,
        model.params)
    plain = FaceSwapAE("tiny", tiny_res=32)
    kept = {k: v for k, v in model.params.items() if k != "cond_encoder"}
    kept = {k: {n: p for n, p in v.items() if "cond" not in n} if k.startswith("decoder") else v for k, v in kept.items()}
    expected = jax.jit(lambda params, x: plain.apply({"params": params}, x, "b", method=plain.swap)[0])(kept, x)
    np.testing.assert_allclose(swap(zeroed, x, window(2)), expected, atol=1e-6)
    np.testing.assert_allclose(swap(zeroed, x, window(9)), expected, atol=1e-6)
    with pytest.raises(ValueError, match="conditioned"):  # a conditioned model refuses to run without maps
        jax.eval_shape(lambda: model.generator.apply({"params": model.params}, x, "b", method=model.generator.swap))


# ----------------------------------------------------------------------------- data


def test_windows_never_cross_videos_or_gaps():
    sources = ["v1", "v2", "v1", "v1", "v2", "v1", "v2"]
    frames = [0, 5, 1, 2, 6, 4, 7]  # v1: 0 1 2 _ 4 (a gap), v2: 5 6 7; faces interleaved
    windows = causal_windows(sources, frames, 3)
    assert windows.shape == (7, 3) and windows.dtype == np.int32
    for i, row in enumerate(windows):
        assert row[-1] == i
        assert {sources[j] for j in row} == {sources[i]}  # never another video
        assert all(frames[j] <= frames[i] for j in row)  # causal
    assert windows[3].tolist() == [0, 2, 3]  # v1 frames 0, 1, 2
    assert windows[5].tolist() == [5, 5, 5]  # v1 frame 4 follows a gap: it starts again
    assert windows[6].tolist() == [1, 4, 6] and windows[1].tolist() == [1, 1, 1]


def test_face_controls_of_a_synthetic_set(sets):
    faceset = FaceSet(sets[0])
    controls = face_controls(faceset, 3)
    n = len(faceset)
    assert controls["landmarks"].shape == (n, 68, 2) and controls["windows"].shape == (n, 3)
    assert controls["windows"][5].tolist() == [3, 4, 5] and controls["windows"][0].tolist() == [0, 0, 0]
    inside = (controls["landmarks"] > -2) & (controls["landmarks"] < faceset.size + 2)
    assert inside.mean() > 0.95  # crop coordinates, not frame coordinates
    truth = np.load(sets[0].parents[1] / "truth" / "a.npz")
    np.testing.assert_allclose(controls["pose"], truth["pose"], atol=0.01)
    np.testing.assert_allclose(controls["gaze"], truth["gaze"], atol=0.01)


def test_maps_follow_the_augmented_targets():
    """A ramp image encodes each pixel's source position: the target geometry must map it back."""
    s, r = 48, 32
    ramp = np.arange(s) / (s - 1)
    face = np.stack([np.broadcast_to(ramp[None], (s, s)), np.broadcast_to(ramp[:, None], (s, s)), np.zeros((s, s))], -1)
    faces = jnp.asarray(np.repeat((face * 255).round().astype(np.uint8)[None], 6, 0))
    config, key = AugmentConfig(color_lightness=0.0, color_ab=0.0, rotation_range=20.0), jax.random.PRNGKey(3)
    both = jax.jit(lambda key, faces: (augment_batch(key, faces, jnp.zeros((6, s, s), jnp.uint8), config, r)["targets"],
                                       target_geometry(key, 6, s, config, r)))
    targets, geometry = (np.asarray(v) for v in both(key, faces))
    source = targets[..., :2] * (s - 1)
    moved = np.einsum("bij,byxj->byxi", geometry[:, :, :2], source) + geometry[:, None, None, :, 2]
    grid = np.stack(np.meshgrid(np.arange(r), np.arange(r), indexing="xy"), -1)
    inner = ((source > 2) & (source < s - 3)).all(-1)
    assert np.abs(moved - grid)[inner].max() < 0.3  # uint8 rounding of the ramp
    dets = np.linalg.det(geometry[:, :, :2])
    assert (dets < 0).any() and (dets > 0).any()  # flips are in the map


def test_a_flip_mirrors_the_controls():
    from dfjax.data.synthetic import get_identity, neutral_state, render_frame

    w = 128
    _, a = render_frame(get_identity("a"), neutral_state(yaw=20.0, roll=10.0, gaze_yaw=15.0, gaze_pitch=5.0), (w, w))
    _, b = render_frame(get_identity("a"), neutral_state(yaw=-20.0, roll=-10.0, gaze_yaw=-15.0, gaze_pitch=5.0), (w, w))
    flip = jnp.asarray([[[-1.0, 0.0, w], [0.0, 1.0, 0.0]]])  # the renderer's pixel centres sit at +0.5
    moved = move_controls({"landmarks": jnp.asarray(a.landmarks[None]), "pose": jnp.asarray(a.pose[None]),
                           "gaze": jnp.asarray(a.gaze[None]), "eyes_open": jnp.asarray([[1.0, 0.25]])}, flip)
    np.testing.assert_allclose(moved["landmarks"][0], b.landmarks, atol=0.5)  # relabelled: a real mirrored face
    np.testing.assert_allclose(moved["pose"][0], b.pose, atol=1e-4)
    np.testing.assert_allclose(moved["gaze"][0], b.gaze, atol=1e-4)
    np.testing.assert_array_equal(moved["eyes_open"][0], [0.25, 1.0])


# ----------------------------------------------------------------------------- train and swap


@pytest.mark.slow  # compiles the conditioned train step twice: minutes on 2 cores
def test_training_with_the_branch_learns_and_resumes_exactly(tmp_path, dvp_run, sets):
    losses = losses_of(dvp_run)
    assert len(losses) == STEPS and min(losses[-2:]) < 0.9 * losses[0]
    # Resume from the step-3 checkpoint of the same run, as if it had been stopped there.
    split = tmp_path / "split"
    shutil.copytree(dvp_run, split)
    shutil.rmtree(split / "checkpoints" / str(STEPS))
    lines = (split / "metrics.jsonl").read_text().splitlines()
    (split / "metrics.jsonl").write_text("\n".join(lines[:3]) + "\n")
    summary = train(dvp_config(sets, STEPS), split)
    assert summary["steps_run"] == STEPS - 3
    np.testing.assert_allclose(losses_of(split), losses, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(final_params(dvp_run)), jax.tree.leaves(final_params(split))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_swap_with_a_dvp_model_writes_the_usual_outputs(tmp_path, synth, sets, dvp_run):
    from dfjax import media
    from dfjax.swap import SwapOptions, swap

    source, out = synth / "videos" / "a.mp4", tmp_path / "a_as_b.mp4"
    summary = swap(source, out, dvp_run, SwapOptions(lossless=True, workers=1), alignments=sets[0])
    info = media.probe(source)
    assert summary["frames_swapped"] == info.frames == media.probe(out).frames
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["model"]["cond_window"] == 3 and all(f["manipulated"] for f in sidecar["frames"])
    assert media.container_metadata(out)["dfjax_synthetic"] == "true"
    masks = dict(media.iter_frames(out.with_suffix(".masks.mkv"), gray=True))
    frames_in = dict(media.iter_frames(source))
    for index, frame in media.iter_frames(out):
        outside = masks[index] == 0
        assert masks[index].any() and np.array_equal(frame[outside], frames_in[index][outside])
