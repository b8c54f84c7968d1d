"""On-device augmentation (geometry, warp, L*a*b* colour), index sampling and the host loader."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dfjax.data.augment import (AugmentConfig, augment_batch, gather, lab_to_rgb, rgb_to_lab,
                                sample_indices)
from dfjax.data.faceset import FaceSetWriter
from dfjax.data.loader import HostLoader

S = 32  # small faces: XLA:CPU compiles each (config, size) once, in a few seconds

# Ranges large enough that every test sees real motion.
# Each distinct (config, size) is one compilation, so the tests share as few as they can.
BIG = dict(rotation_range=30.0, zoom_range=0.2, shift_range=0.15, flip_prob=0.5)
NO_WARP = AugmentConfig(**BIG, warp=False)
FULL = AugmentConfig(**BIG)
FLIP_ONLY = AugmentConfig(rotation_range=0.0, zoom_range=0.0, shift_range=0.0, flip_prob=0.5, warp=False,
                          color_lightness=0.0, color_ab=0.0)

BACKGROUND = np.array([30, 60, 200], np.uint8)
FACE = np.array([220, 40, 40], np.uint8)


@pytest.fixture(scope="module")
def augment():
    """One jitted augment_batch shared by every test (config and out_size static)."""
    return jax.jit(augment_batch, static_argnames=("config", "out_size"))


@pytest.fixture(scope="module")
def squares():
    """Eight faces: a red square (the mask's first channel) at a different place on a blue ground;
    the second mask channel is a horizontal ramp (a region-weight map)."""
    rng = np.random.default_rng(0)
    faces = np.broadcast_to(BACKGROUND, (8, S, S, 3)).copy()
    masks = np.zeros((8, S, S, 2), np.uint8)
    masks[..., 1] = np.linspace(0, 255, S).astype(np.uint8)
    for i in range(8):
        y, x = rng.integers(4, S - 16, 2)
        faces[i, y:y + 12, x:x + 10] = FACE
        masks[i, y:y + 12, x:x + 10, 0] = 255
    return jnp.asarray(faces), jnp.asarray(masks)


@pytest.fixture(scope="module")
def noise():
    rng = np.random.default_rng(1)
    return (jnp.asarray(rng.integers(0, 256, (4, S, S, 3), dtype=np.uint8)),
            jnp.asarray(rng.integers(0, 256, (4, S, S, 2), dtype=np.uint8)))


@pytest.fixture(scope="module")
def full_out(augment, squares):
    return augment(jax.random.key(7), *squares, FULL)


@pytest.fixture(scope="module")
def no_warp_out(augment, squares):
    return augment(jax.random.key(7), *squares, NO_WARP)


# ----------------------------------------------------------------------------- config

def test_config_is_hashable_and_builds_from_a_dict():
    assert hash(AugmentConfig()) == hash(AugmentConfig())
    assert AugmentConfig.from_dict({"rotation_range": 5, "warp": False}) == AugmentConfig(rotation_range=5, warp=False)
    with pytest.raises(ValueError, match="rotaton_range"):
        AugmentConfig.from_dict({"rotaton_range": 5})


# ----------------------------------------------------------------------------- geometry

def test_zero_ranges_give_the_input_back_or_its_mirror(augment, noise):
    faces, masks = noise
    out = augment(jax.random.key(0), faces, masks, FLIP_ONLY)
    faces, masks = np.asarray(faces) / 255, np.asarray(masks) / 255
    flipped = []
    for i in range(len(faces)):
        mirror = np.abs(out["targets"][i] - faces[i, :, ::-1]).max() < 1e-5
        assert mirror or np.abs(out["targets"][i] - faces[i]).max() < 1e-5
        np.testing.assert_allclose(out["target_masks"][i], masks[i, :, ::-1] if mirror else masks[i], atol=1e-5)
        flipped.append(mirror)
    assert any(flipped) and not all(flipped)  # this key flips some of the four
    np.testing.assert_array_equal(out["inputs"], out["targets"])


def test_masks_move_with_the_face(no_warp_out, squares):
    targets, masks = np.asarray(no_warp_out["targets"]), np.asarray(no_warp_out["target_masks"])
    for target, mask, before in zip(targets, masks, np.asarray(squares[1])):
        inside, outside = mask[..., 0] > 0.9999, mask[..., 0] < 1e-4
        assert inside.sum() > 40 and outside.sum() > 400
        assert np.abs(mask[..., 0] - before[..., 0] / 255).mean() > 0.02  # the square went elsewhere
        face, ground = target[inside], target[outside]
        # one (colour-jittered) red inside the moved mask, one blue outside it
        assert np.ptp(face, axis=0).max() < 1e-3 and np.ptp(ground, axis=0).max() < 1e-3
        assert face[0, 0] > face[0, 1] + 0.2 and ground[0, 2] > ground[0, 0] + 0.2
    # the ramp channel moved too, and stayed in [0, 1]
    assert 0 <= masks[..., 1].min() and masks[..., 1].max() <= 1
    assert not np.allclose(masks[..., 1], np.asarray(squares[1][..., 1]) / 255, atol=0.05)


def test_warp_changes_inputs_only(full_out, no_warp_out):
    np.testing.assert_array_equal(full_out["targets"], no_warp_out["targets"])
    np.testing.assert_array_equal(full_out["target_masks"], no_warp_out["target_masks"])
    change = np.abs(np.asarray(full_out["inputs"]) - np.asarray(full_out["targets"])).mean((1, 2, 3))
    assert (change > 1e-3).all()
    assert (change < 0.15).all()  # mild: the face is still mostly where the target has it


def test_colour_jitter_is_shared_by_input_and_target(no_warp_out):
    np.testing.assert_array_equal(no_warp_out["inputs"], no_warp_out["targets"])
    targets, masks = np.asarray(no_warp_out["targets"]), np.asarray(no_warp_out["target_masks"])
    faces = np.stack([t[m[..., 0] > 0.9999][0] for t, m in zip(targets, masks)])
    change = np.abs(faces - FACE / 255).mean(-1)
    assert (change > 1e-3).all() and (change < 0.3).all()  # every face recoloured, plausibly
    assert len(np.unique(faces.round(3), axis=0)) == len(faces)  # each its own way


def test_same_key_same_batch_other_key_other_batch(augment, squares, full_out):
    again = augment(jax.random.key(7), *squares, FULL)
    other = augment(jax.random.key(8), *squares, FULL)
    for name in full_out:
        np.testing.assert_array_equal(again[name], full_out[name])
    assert not np.allclose(other["inputs"], full_out["inputs"])


def test_out_size(augment, squares):
    out = augment(jax.random.key(1), *squares, FULL, 16)
    assert out["inputs"].shape == out["targets"].shape == (8, 16, 16, 3)
    assert out["target_masks"].shape == (8, 16, 16, 2)
    for value in out.values():
        assert value.dtype == jnp.float32 and 0 <= float(value.min()) and float(value.max()) <= 1


def test_disabled_only_resizes_with_area_averaging(augment, noise):
    faces, masks = noise
    out = augment(jax.random.key(1), faces, masks, AugmentConfig(enabled=False), 16)
    area = np.asarray(faces, np.float64).reshape(4, 16, 2, 16, 2, 3).mean((2, 4)) / 255
    np.testing.assert_allclose(out["inputs"], area, atol=1e-5)
    np.testing.assert_array_equal(out["inputs"], out["targets"])
    assert out["target_masks"].shape == (4, 16, 16, 2)


# ----------------------------------------------------------------------------- colour space

def test_lab_round_trip_and_reference_values():
    levels = np.arange(0, 256, 5, dtype=np.float32) / 255
    rgb = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    rgb = np.concatenate([[[1.0, 1, 1], [0, 0, 0], [1, 0, 0]], rgb]).astype(np.float32)
    lab, back = jax.jit(lambda x: (rgb_to_lab(x), lab_to_rgb(rgb_to_lab(x))))(rgb)
    assert float(np.abs(back - rgb).max()) < 1 / 255
    # D65 references: white, black, pure sRGB red
    np.testing.assert_allclose(lab[:3], [[100, 0, 0], [0, 0, 0], [53.24, 80.09, 67.20]], atol=0.02)


# ----------------------------------------------------------------------------- sampling and loading

def test_sample_indices_and_gather():
    faces = np.arange(10 * 4 * 4 * 3).astype(np.uint8).reshape(10, 4, 4, 3)
    masks = np.arange(10 * 4 * 4).astype(np.uint8).reshape(10, 4, 4)
    idx, (f, m) = jax.jit(lambda key, f, m: (sample_indices(key, 10, 64), gather(f, m, jnp.asarray([3, 3, 7]))))(
        jax.random.key(0), faces, masks)
    assert idx.shape == (64,) and idx.dtype == jnp.int32
    assert 0 <= int(idx.min()) and int(idx.max()) < 10 and len(np.unique(idx)) > 5
    assert f.shape == (3, 4, 4, 3) and m.shape == (3, 4, 4, 1)
    np.testing.assert_array_equal(f[2], faces[7])
    np.testing.assert_array_equal(m[0, ..., 0], masks[3])


@pytest.fixture(scope="module")
def small_faceset(tmp_path_factory):
    path = tmp_path_factory.mktemp("fs") / "faces"
    with FaceSetWriter(path, 8) as writer:
        for i in range(20):
            writer.add(np.full((8, 8, 3), i, np.uint8), np.full((8, 8), 10 * i, np.uint8), {})
    return path


def test_host_loader_yields_deterministic_varied_batches(small_faceset):
    with HostLoader(small_faceset, batch=6, seed=3, prefetch=2) as loader:
        batches = [next(loader) for _ in range(4)]
    faces, masks = batches[0]
    assert faces.shape == (6, 8, 8, 3) and masks.shape == (6, 8, 8, 1)
    assert faces.dtype == masks.dtype == np.uint8
    np.testing.assert_array_equal(masks[:, 0, 0, 0], 10 * faces[:, 0, 0, 0])  # faces and masks paired
    assert len({b[0][:, 0, 0, 0].tobytes() for b in batches}) == 4  # every batch differs
    # same seed, same stream, also when resumed part-way; arrays work as a source
    arrays = (np.arange(20, dtype=np.uint8)[:, None, None, None] * np.ones((1, 8, 8, 3), np.uint8),
              np.arange(0, 200, 10, dtype=np.uint8)[:, None, None] * np.ones((1, 8, 8), np.uint8))
    with HostLoader(arrays, batch=6, seed=3, start_step=2, device_put=lambda b: (b[0] + 1, b[1])) as resumed:
        f2, m2 = next(resumed)
    np.testing.assert_array_equal(f2, batches[2][0] + 1)
    np.testing.assert_array_equal(m2, batches[2][1])


def test_host_loader_reports_read_errors():
    def broken(batch):
        raise OSError("disk gone")

    loader = HostLoader((np.zeros((3, 4, 4, 3), np.uint8), np.zeros((3, 4, 4), np.uint8)), 2, 0,
                        device_put=broken)
    with pytest.raises(OSError, match="disk gone"):
        next(loader)
    loader.close()


_SHARDED = """
import numpy as np, jax
from jax.sharding import NamedSharding, PartitionSpec as P
from dfjax.data.augment import AugmentConfig, augment_batch
faces = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
masks = faces[..., :2]
augment = jax.jit(augment_batch, static_argnames=("config", "out_size"))
ref = augment(jax.random.key(0), faces, masks, AugmentConfig(), 16)
for kind in (jax.sharding.AxisType.Auto, jax.sharding.AxisType.Explicit):
    mesh = jax.make_mesh((2,), ("data",), axis_types=(kind,))
    data = NamedSharding(mesh, P("data"))
    compiled = augment.lower(jax.random.key(0), jax.device_put(faces, data), jax.device_put(masks, data),
                             AugmentConfig(), 16).compile()
    assert not any(c in compiled.as_text() for c in ("all-gather", "all-reduce", "all-to-all"))
    out = compiled(jax.random.key(0), jax.device_put(faces, data), jax.device_put(masks, data))
    for name, value in out.items():
        assert value.sharding.spec[0] == "data", (kind, name, value.sharding)
        np.testing.assert_array_equal(np.asarray(value), np.asarray(ref[name]))
print("ok")
"""


@pytest.mark.slow
@pytest.mark.ci
def test_sharded_batch_gives_the_same_result_without_communication():
    """Two host devices (a fresh process), meshes with Auto and Explicit axes."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", _SHARDED], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
