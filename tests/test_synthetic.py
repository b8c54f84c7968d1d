"""The procedural face renderer: determinism, smooth motion, exact ground truth, and `synthesize`."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest

from dfjax.data.synthetic import (IDENTITIES, make_identity, neutral_state, render_frame, render_swap,
                                  sample_states, synthesize)
from dfjax.faces import model3d

A, B = IDENTITIES["a"], IDENTITIES["b"]


def _ear(eye: np.ndarray) -> float:
    return (np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])) / (2 * np.linalg.norm(eye[0] - eye[3]))


@pytest.fixture(scope="module")
def clip():
    """Ten seconds of motion."""
    return sample_states(250, seed=7, fps=25)


# ------------------------------------------------------------------------------------- model3d

def test_head_model_is_symmetric_with_the_nose_nearest_the_camera():
    model = model3d.MODEL_68
    assert model.shape == (68, 3)
    np.testing.assert_allclose(model[model3d.MIRROR_68] * [-1, 1, 1], model, atol=1e-9)
    assert np.argmin(model[:, 2]) == 30  # nose tip
    assert model[8, 1] > model[27, 1] > model[19, 1]  # chin below nose bridge below brows (y down)


def test_euler_angles_round_trip_and_turn_the_face_the_documented_way():
    rng = np.random.default_rng(0)
    for yaw, pitch, roll in zip(rng.uniform(-60, 60, 50), rng.uniform(-40, 40, 50), rng.uniform(-40, 40, 50)):
        np.testing.assert_allclose(model3d.euler_from_rotation(model3d.rotation_from_euler(yaw, pitch, roll)),
                                   (yaw, pitch, roll), atol=1e-9)

    def image(yaw=0.0, pitch=0.0, roll=0.0):
        return model3d.project(model3d.MODEL_68, model3d.rotation_from_euler(yaw, pitch, roll), [0, 0, 600], 600, 0, 0)

    front = image()
    assert image(yaw=20)[30, 0] > front[30, 0] + 20    # nose toward image right
    assert image(pitch=20)[30, 1] < front[30, 1] - 20  # nose up
    assert image(roll=20)[27, 0] > front[27, 0] + 5    # top of the face swings right: clockwise
    np.testing.assert_allclose(model3d.gaze_angles(model3d.gaze_vector(12.0, -25.0)), (12.0, -25.0), atol=1e-9)


# ----------------------------------------------------------------------------------- rendering

def test_rendering_is_deterministic_for_a_seed(clip):
    again = sample_states(250, seed=7, fps=25)
    assert all(a.yaw == b.yaw and a.eye_closure == b.eye_closure and np.array_equal(a.blobs, b.blobs)
               for a, b in zip(clip, again))
    assert sample_states(5, seed=8)[0].yaw != clip[0].yaw
    first, truth = render_frame(A, clip[40], 128)
    second, truth2 = render_frame(A, again[40], 128)
    assert first.shape == (128, 128, 3) and first.dtype == np.uint8
    assert np.array_equal(first, second) and np.array_equal(truth.landmarks, truth2.landmarks)
    assert np.array_equal(render_frame(make_identity(3), clip[0], 64)[0], render_frame(make_identity(3), clip[0], 64)[0])


def test_identities_a_and_b_look_clearly_different(clip):
    for state in (neutral_state(), clip[10], clip[120]):
        img_a, truth_a = render_frame(A, state, 128)
        img_b, truth_b = render_frame(B, state, 128)
        face = (truth_a.mask > 0) & (truth_b.mask > 0)
        diff = np.abs(img_a.astype(int) - img_b.astype(int)).sum(axis=2)[face].mean()
        assert diff > 120, diff  # summed over RGB: skin, eyes, brows, lips all change


def test_states_vary_smoothly_and_cover_the_pose_ranges(clip):
    pose = np.array([[s.yaw, s.pitch, s.roll] for s in clip])
    gaze = np.array([[s.gaze_pitch, s.gaze_yaw] for s in clip])
    assert np.all(np.abs(pose) <= [40, 20, 15])
    assert np.all(np.abs(np.diff(pose, axis=0)).max(axis=0) < [4.0, 3.0, 2.0])
    assert np.all(np.ptp(pose, axis=0) > [40, 20, 15])  # at least half of each +-range in 10 s
    assert np.abs(np.diff(gaze, axis=0)).max() < 5.0 and np.ptp(gaze[:, 1]) > 15
    closure = np.array([s.eye_closure for s in clip])
    blinking = closure > 0.5
    starts = np.flatnonzero(np.diff(blinking.astype(int)) == 1)
    ends = np.flatnonzero(np.diff(blinking.astype(int)) == -1)
    assert 2 <= len(starts) <= 6  # a blink every 2-5 s
    assert np.all(ends[: len(starts)] - starts[: len(ends)] <= 8)  # short events (< 1/3 s)
    translation = np.array([[s.tx, s.ty] for s in clip])
    assert np.abs(np.diff(translation, axis=0)).max() < 0.005


@pytest.mark.parametrize("identity", [A, B])
def test_pupils_are_dark_and_inside_the_eyes(identity, clip):
    checked = 0
    for state in [neutral_state()] + [s for s in clip[::10] if s.eye_closure < 0.05]:
        img, truth = render_frame(identity, state, 256)
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        for (x, y), eye in zip(truth.pupils, (truth.landmarks[36:42], truth.landmarks[42:48])):
            col, row = int(round(x)), int(round(y))
            assert grey[row - 1:row + 2, col - 1:col + 2].min() < 60
            assert cv2.pointPolygonTest(eye.reshape(-1, 1, 2), (float(x), float(y)), False) >= 0
        checked += 1
    assert checked >= 10
    # Looking straight ahead, the pupil sits at the eye contour's centre.
    _, truth = render_frame(identity, neutral_state(), 256)
    np.testing.assert_allclose(truth.pupils, [truth.landmarks[36:42].mean(0), truth.landmarks[42:48].mean(0)], atol=0.5)


def test_mask_covers_the_jaw_and_eyes_close_in_blinks(clip):
    for state in clip[::25]:
        _, truth = render_frame(B, state, 128)
        hull = np.zeros_like(truth.mask)
        cv2.fillConvexPoly(hull, np.round(truth.landmarks[:17]).astype(np.int32), 255)
        hull = cv2.erode(hull, np.ones((3, 3), np.uint8))
        assert np.all(truth.mask[hull > 0] == 255)
        assert truth.mask.mean() > 0.1 * 255  # the face is a good part of the frame
    closed = [s for s in clip if s.eye_closure > 0.95]
    assert closed
    for state in closed:
        _, truth = render_frame(A, state, 128)
        assert truth.blink and max(_ear(truth.landmarks[36:42]), _ear(truth.landmarks[42:48])) < 0.08
    _, truth = render_frame(A, neutral_state(), 128)
    assert not truth.blink and min(_ear(truth.landmarks[36:42]), _ear(truth.landmarks[42:48])) > 0.2
    shut, _ = render_frame(A, neutral_state(eye_closure=1.0), 128)
    assert not np.array_equal(shut, render_frame(A, neutral_state(), 128)[0])


def test_mouth_landmarks_follow_the_opening():
    _, closed = render_frame(A, neutral_state(mouth_open=0.0), 128)
    _, opened = render_frame(A, neutral_state(mouth_open=1.0), 128)
    gap = lambda t: t.landmarks[66, 1] - t.landmarks[62, 1]  # noqa: E731
    assert gap(closed) < 1.0 < 5.0 < gap(opened)


def test_ground_truth_swap_keeps_the_frame_and_replaces_the_face(clip):
    for state in clip[5::60]:
        frame_a, truth_a = render_frame(A, state, 128)
        frame_b, truth_b = render_frame(B, state, 128)
        swap, truth_s = render_swap(A, B, state, 128)
        outside = (truth_a.mask == 0) & (truth_s.mask == 0)
        assert np.array_equal(swap[outside], frame_a[outside])
        inside = cv2.erode(truth_s.mask, np.ones((5, 5), np.uint8)) > 0
        inside &= truth_b.mask > 0
        to_b = np.abs(swap[inside].astype(int) - frame_b[inside]).mean()
        to_a = np.abs(swap[inside].astype(int) - frame_a[inside]).mean()
        assert to_b < 2.0 and to_a > 25.0, (to_b, to_a)
        np.testing.assert_array_equal(truth_s.landmarks, truth_b.landmarks)  # B's face geometry, A's motion


@pytest.mark.parametrize("size", [(256, 256), (512, 512), (160, 120)])
def test_larger_and_non_square_frames(size):
    img, truth = render_frame(B, neutral_state(yaw=20.0), size)
    assert img.shape == (size[1], size[0], 3) and truth.mask.shape == (size[1], size[0])
    assert 0 < truth.landmarks[:, 0].min() and truth.landmarks[:, 0].max() < size[0]


# ---------------------------------------------------------------------------------- synthesize

def _decoded_frames(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_synthesize_writes_videos_truth_and_face_sets(tmp_path):
    out = tmp_path / "synth"
    summary = synthesize(out, frames=12, size=96, face_size=64, seed=1)
    assert summary["faces"] == {"a": 12, "b": 12} and summary["videos"] == 4
    for name in ("a", "b", "a_as_b_truth", "b_as_a_truth"):
        assert _decoded_frames(out / "videos" / f"{name}.mp4") == 12
        with np.load(out / "truth" / f"{name}.npz") as truth:
            assert truth["landmarks"].shape == (12, 68, 2) and truth["masks"].shape == (12, 96, 96)
            assert truth["pose"].shape == (12, 3) and truth["gaze"].shape == (12, 2)
            assert truth["blink"].dtype == bool and truth["masks"].max() == 255
    for name in ("a", "b"):
        faces = np.load(out / "facesets" / name / "faces.npy", mmap_mode="r")
        masks = np.load(out / "facesets" / name / "masks.npy", mmap_mode="r")
        assert faces.shape == (12, 64, 64, 3) and masks.shape == (12, 64, 64)
        assert masks.mean() > 60  # the aligned crop is mostly face
        metas = [json.loads(line) for line in (out / "facesets" / name / "meta.jsonl").read_text().splitlines()]
        with np.load(out / "truth" / f"{name}.npz") as truth:
            np.testing.assert_allclose([[m["pose"][k] for k in ("yaw", "pitch", "roll")] for m in metas],
                                       truth["pose"], atol=0.01)
            np.testing.assert_allclose(metas[3]["landmarks"], truth["landmarks"][3], atol=0.01)
        assert (out / "facesets" / name / "alignments" / f"{name}.json").exists()
    with np.load(out / "truth" / "a_as_b_truth.npz") as swap, np.load(out / "truth" / "a.npz") as own:
        np.testing.assert_array_equal(swap["pose"], own["pose"])  # A's motion ...
        assert str(swap["face"]) == "b" and str(swap["context"]) == "a"  # ... with B's face


def test_synthesize_refuses_a_used_folder_and_odd_sizes(tmp_path):
    from dfjax.errors import UserError

    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        synthesize(used, frames=2, size=64, face_size=32)
    with pytest.raises(UserError, match="even"):
        synthesize(tmp_path / "odd", frames=2, size=65, face_size=32)
    assert (used / "keep.txt").read_text() == "mine"


def test_synth_identities_n_renders_n_distinct_people_and_every_pair(tmp_path):
    from typer.testing import CliRunner

    from dfjax.cli import app
    from dfjax.data.synthetic import identity_names

    out = tmp_path / "four"
    result = CliRunner().invoke(app, ["synth", "-o", str(out), "--identities", "4", "--frames", "4", "--size", "96",
                                      "--face-size", "64", "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "facesets").iterdir()) == ["a", "b", "c", "d"]
    assert len(list((out / "videos").glob("*_as_*_truth.mp4"))) == 4 * 3  # every ordered pair
    faces = {n: np.load(out / "facesets" / n / "faces.npy").astype(int) for n in "abcd"}
    for x, y in [(x, y) for x in "abcd" for y in "abcd" if x < y]:  # four different people, same framing
        assert np.abs(faces[x][0] - faces[y][0]).sum(axis=2).mean() > 60, (x, y)
    assert identity_names(3) == ("a", "b", "c")
    bad = CliRunner().invoke(app, ["synth", "-o", str(tmp_path / "one"), "--identities", "1", "--quiet"])
    assert bad.exit_code == 2 and "--identities 1 is out of range" in bad.output
    assert not (tmp_path / "one").exists()
