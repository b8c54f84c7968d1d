"""Conditioning maps and motion retargeting: where the maps are drawn and what moves them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dfjax.faces.align import alignment_matrix, resize_points, transform_points
from dfjax.faces.masks import landmark_mask
from dfjax.faces.retarget import Reference, pose_layout_of, reference_of, retarget, retarget_absolute
from dfjax.models.conditioning import C_MAPS, CHANNELS, TRIANGLES, render_maps, stack_window, window_indices

SIZE = 128
PUPILS, EYES, MASK = CHANNELS.index("pupils"), CHANNELS.index("eyes"), CHANNELS.index("mask")


@pytest.fixture(scope="module")
def render():
    return jax.jit(render_maps, static_argnums=4)


@pytest.fixture(scope="module")
def crop_landmarks(astronaut_landmarks) -> np.ndarray:
    """The astronaut's landmarks in a SIZE px aligned crop."""
    return transform_points(astronaut_landmarks, alignment_matrix(astronaut_landmarks, SIZE))


def _draw(render, landmarks, gaze, eyes_open, pose=(0.0, 0.0, 0.0)):
    n = len(gaze)
    return np.asarray(render(np.repeat(landmarks[None], n, 0), np.tile(pose, (n, 1)), np.asarray(gaze, np.float32),
                             np.asarray(eyes_open, np.float32), SIZE))


def test_maps_cover_the_face_hull(render, crop_landmarks):
    maps = _draw(render, crop_landmarks, [[0.0, 0.0]], [[1.0, 1.0]])
    assert maps.shape == (1, SIZE, SIZE, C_MAPS) and maps.dtype == np.float32
    assert 0.0 <= maps.min() and maps.max() <= 1.0
    hull = landmark_mask(crop_landmarks, SIZE, SIZE, "hull") > 0
    mask = maps[0, ..., MASK] > 0.5
    assert (hull & mask).sum() / (hull | mask).sum() > 0.9
    face = maps[0, ..., :3].max(-1) > 0  # the correspondence map is drawn on the face, nowhere else
    assert (face & hull).sum() / (face | hull).sum() > 0.9
    assert len(TRIANGLES) > 100


def _centroid(channel: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(channel > 0.5)
    return np.array([xs.mean(), ys.mean()])


def test_pupil_moves_with_gaze_and_closed_eyes_have_none(render, crop_landmarks):
    gazes = [[0.0, 0.0], [0.0, 25.0], [0.0, -25.0], [20.0, 0.0], [-20.0, 0.0], [0.0, 0.0]]
    maps = _draw(render, crop_landmarks, gazes, [[1.0, 1.0]] * 5 + [[0.0, 0.0]])
    centre, right, left, up, down = (_centroid(maps[i, ..., PUPILS]) for i in range(5))
    assert right[0] > centre[0] + 1 and left[0] < centre[0] - 1  # positive yaw looks toward image right
    assert up[1] < centre[1] - 0.5 and down[1] > centre[1] + 0.5  # positive pitch looks up (smaller y)
    assert maps[5, ..., PUPILS].sum() == 0 and maps[5, ..., EYES].sum() > 0  # closed: a lid line, no pupil
    assert maps[5, ..., EYES].sum() < maps[0, ..., EYES].sum()


def _weighted_centroid(channel: np.ndarray) -> np.ndarray:
    ys, xs = np.mgrid[:channel.shape[0], :channel.shape[1]]
    return np.array([(channel * xs).sum(), (channel * ys).sum()]) / channel.sum()


def test_pupils_follow_gaze_below_a_pixel_at_64px(render, crop_landmarks):
    """At 64 px the iris is about three pixels across and 2.5 degrees of gaze move it by a tenth of a
    pixel: the anti-aliased pupils still move steadily, where binary discs jumped back and forth."""
    landmarks = resize_points(crop_landmarks, 64 / SIZE)
    steps = np.arange(-20.0, 20.1, 2.5)
    zeros = np.zeros_like(steps)
    for axis, gaze in ((0, np.stack([zeros, steps], 1)), (1, np.stack([steps, zeros], 1))):
        maps = np.asarray(render(np.repeat(landmarks[None], len(steps), 0), np.zeros((len(steps), 3)),
                                 gaze.astype(np.float32), np.ones((len(steps), 2), np.float32), 64))
        assert ((0 < maps[..., PUPILS]) & (maps[..., PUPILS] < 1)).any()  # partial pixels: anti-aliased
        moved = np.array([_weighted_centroid(m[..., PUPILS])[axis] for m in maps])
        if axis == 1:
            moved = -moved  # looking up moves the pupils up the image
        assert (np.diff(moved) > 0).all(), moved  # every 2.5 degree step moves them the right way
        assert moved[-1] - moved[0] > 1.0


def test_window_repeats_the_first_frame_at_a_start():
    seq = jnp.arange(2 * 2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 2, 4, 4, 3)
    window = np.asarray(stack_window(seq, 3))
    assert window.shape == (2, 4, 4, 9)
    np.testing.assert_array_equal(window[..., 0:3], seq[:, 0])
    np.testing.assert_array_equal(window[..., 3:6], seq[:, 0])
    np.testing.assert_array_equal(window[..., 6:9], seq[:, 1])
    np.testing.assert_array_equal(np.asarray(stack_window(seq, 1)), seq[:, 1])
    idx = window_indices(np.array([0, 1, 2, 5, 6, 0, 1]), np.array([0, 0, 0, 0, 0, 1, 1]), 3)
    np.testing.assert_array_equal(idx, [[0, 0, 0], [0, 0, 1], [0, 1, 2], [3, 3, 3], [3, 3, 4], [5, 5, 5], [5, 5, 6]])


def test_retarget_with_identical_references_is_the_identity(crop_landmarks):
    rng = np.random.default_rng(0)
    landmarks = crop_landmarks[None] + rng.normal(0, 2, (5, 68, 2))
    poses = rng.normal(0, 10, (5, 3))
    gaze, eyes_open = rng.normal(0, 10, (5, 2)), rng.uniform(0, 1, (5, 2))
    ref = reference_of(landmarks, poses)
    out = retarget(landmarks, poses, gaze, eyes_open, ref, ref)
    for got, want in zip(out, (landmarks, poses, gaze, eyes_open)):
        np.testing.assert_allclose(got, want, atol=1e-9)
    # A target twice as large with another neutral pose: offsets double, pose is relative.
    big = Reference(ref.neutral * 2, ref.iod * 2, ref.pose + 5.0)
    moved = retarget(ref.neutral[None], ref.pose[None], gaze[:1], eyes_open[:1], ref, big)
    np.testing.assert_allclose(moved.landmarks[0], big.neutral)
    np.testing.assert_allclose(moved.pose[0], big.pose)


def test_absolute_retarget_puts_the_target_layout_at_the_source_pose(crop_landmarks):
    """Two identities whose landmarks move linearly with head pose, the target's differently from the
    source's: the swap-side retarget draws the target's own layout at the source's pose (plus the
    source's expression), where the median-based one misplaces it when their footage's poses differ."""
    rng = np.random.default_rng(1)
    slopes = {k: rng.normal(0, 0.3, (3, 68, 2)) for k in "st"}  # px per degree of yaw, pitch, roll
    base = {"s": crop_landmarks, "t": crop_landmarks * 1.1 + 3.0}

    def frames(k, poses):
        return base[k] + np.einsum("nk,kpc->npc", poses, slopes[k])

    poses_s, poses_t = rng.uniform(-20, 20, (40, 3)) + [10, 0, 0], rng.uniform(-20, 20, (40, 3)) + [-5, 6, 0]
    source, target = pose_layout_of(frames("s", poses_s), poses_s), pose_layout_of(frames("t", poses_t), poses_t)
    np.testing.assert_allclose(target.at(poses_t[:3]), frames("t", poses_t[:3]), atol=1e-6)
    smile = np.zeros((68, 2))
    smile[48:68, 1] = 2.0  # an expression: the mouth moves down
    driver_pose = np.array([[15.0, -4.0, 2.0]])
    moved = retarget_absolute(frames("s", driver_pose) + smile, driver_pose, np.zeros((1, 2)), np.ones((1, 2)),
                              source, target)
    want = frames("t", driver_pose) + smile * target.iod / source.iod
    np.testing.assert_allclose(moved.landmarks, want, atol=1e-6)
    np.testing.assert_allclose(moved.pose, driver_pose)
    relative = retarget(frames("s", driver_pose) + smile, driver_pose, np.zeros((1, 2)), np.ones((1, 2)),
                        reference_of(frames("s", poses_s), poses_s), reference_of(frames("t", poses_t), poses_t))
    assert np.abs(relative.landmarks - want).mean() > 10 * np.abs(moved.landmarks - want).mean() + 0.5
