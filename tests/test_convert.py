"""Conversion steps on a real aligned face: masks, colour transfer, paste-back and the watermark."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dfjax import convert
from dfjax.faces import align

SIZE = 128


@pytest.fixture(scope="module")
def aligned(astronaut, astronaut_landmarks) -> dict:
    """skimage's astronaut, her dlib landmarks, and her 128 px aligned face with its mask."""
    frame, landmarks = astronaut, astronaut_landmarks
    matrix = align.alignment_matrix(landmarks, SIZE)
    crop_landmarks = align.transform_points(landmarks, matrix)
    return dict(frame=frame, matrix=matrix, face=align.warp_face(frame, matrix, SIZE),
                landmarks=crop_landmarks,
                mask=convert.face_mask(None, crop_landmarks, SIZE, "landmarks"))


def recast(face: np.ndarray) -> np.ndarray:
    """The face with another white balance and gamma: a stand-in for a decoder's output."""
    tinted = (face / 255.0) ** 1.5 * np.array([0.75, 0.95, 1.15])
    return np.clip(np.rint(tinted * 255), 0, 255).astype(np.uint8)


def lab_stats(image: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[inside]
    return lab.mean(0), lab.std(0)


# ---------------------------------------------------------------- masks

def test_mask_sources(aligned):
    hull = convert.face_mask(None, aligned["landmarks"], SIZE, "landmarks")
    assert hull.shape == (SIZE, SIZE) and hull.dtype == np.float32
    assert set(np.unique(hull)) == {0.0, 1.0} and 0.2 < hull.mean() < 0.8
    plain = convert.face_mask(None, aligned["landmarks"], SIZE, "landmarks", kind="hull")
    assert hull.sum() > plain.sum()  # "extended" adds the forehead

    predicted = np.zeros((SIZE, SIZE), np.float32)
    predicted[:, : SIZE // 2] = 0.8  # a "model" mask covering the left half
    model = convert.face_mask(predicted, aligned["landmarks"], SIZE, "model")
    np.testing.assert_array_equal(model, predicted)
    both = convert.face_mask(predicted, aligned["landmarks"], SIZE, "intersection")
    np.testing.assert_array_equal(both, np.minimum(predicted, hull))
    assert both[:, SIZE // 2:].max() == 0 and both.max() == pytest.approx(0.8)
    # a model mask at another resolution (or with a channel axis) is resized to the crop
    small = convert.face_mask(predicted[::2, ::2, None], aligned["landmarks"], SIZE, "model")
    assert small.shape == (SIZE, SIZE)
    with pytest.raises(ValueError):
        convert.face_mask(None, aligned["landmarks"], SIZE, "model")
    with pytest.raises(ValueError):
        convert.face_mask(predicted, aligned["landmarks"], SIZE, "union")


def test_refine_mask_erodes_dilates_and_feathers(aligned):
    mask = aligned["mask"]
    eroded = convert.refine_mask(mask, erode=5)
    dilated = convert.refine_mask(mask, erode=-5)
    assert eroded.sum() < mask.sum() < dilated.sum()
    assert np.all(eroded <= mask) and np.all(dilated >= mask)
    feathered = convert.refine_mask(mask, erode=6, feather=6)
    edge = (feathered > 0.05) & (feathered < 0.95)
    assert edge.sum() > 100  # a soft ramp all round the face
    assert feathered.min() >= 0 and feathered.max() <= 1
    assert np.all(feathered[mask == 0] < 0.05)  # eroded by the feather: the ramp stays inside
    np.testing.assert_array_equal(convert.refine_mask(mask), mask)
    # a mask touching the crop edge fades there too instead of ending in a hard seam
    full = convert.refine_mask(np.ones((32, 32), np.float32), feather=4)
    assert full[0, 16] < 0.7 and full[16, 16] == pytest.approx(1.0)


# ---------------------------------------------------------------- colour transfer

def test_reinhard_matches_lab_mean_and_std_inside_the_mask(aligned):
    face, inside = aligned["face"], aligned["mask"] > 0.5
    generated = recast(face)
    result = convert.match_color(generated, face, aligned["mask"], "reinhard")
    assert result.dtype == np.uint8 and result.shape == face.shape
    (mean_ref, std_ref), (mean_gen, _) = lab_stats(face, inside), lab_stats(generated, inside)
    mean_res, std_res = lab_stats(result, inside)
    assert np.all(np.abs(mean_res - mean_ref) < 1.0)
    assert np.all(np.abs(mean_res - mean_ref) < 0.2 * np.abs(mean_gen - mean_ref) + 0.5)
    np.testing.assert_allclose(std_res, std_ref, rtol=0.08)


def test_histogram_matches_masked_quantiles(aligned):
    face, inside = aligned["face"], aligned["mask"] > 0.5
    generated = recast(face)
    result = convert.match_color(generated, face, aligned["mask"], "histogram")
    q = np.linspace(0.02, 0.98, 25)
    for c in range(3):
        want = np.quantile(face[..., c][inside], q)
        assert np.abs(np.quantile(generated[..., c][inside], q) - want).max() > 10
        assert np.abs(np.quantile(result[..., c][inside], q) - want).max() <= 3


def test_match_color_none_and_empty_mask(aligned):
    face, generated = aligned["face"], recast(aligned["face"])
    for mode, mask in (("none", aligned["mask"]), ("reinhard", np.zeros((SIZE, SIZE)))):
        np.testing.assert_array_equal(convert.match_color(generated, face, mask, mode), generated)
    with pytest.raises(ValueError):
        convert.match_color(generated, face, aligned["mask"], "lut")


# ---------------------------------------------------------------- paste-back

@pytest.mark.parametrize("blend", convert.BLEND_MODES)
def test_pasting_the_crop_back_reproduces_the_frame(aligned, blend):
    frame = aligned["frame"]
    out, frame_mask = convert.paste_back(frame, aligned["face"], aligned["mask"],
                                         aligned["matrix"], blend)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert frame_mask.shape == frame.shape[:2] and frame_mask.dtype == np.uint8
    inside = frame_mask == 255
    assert inside.sum() > 5000
    error = np.abs(out.astype(np.float64) - frame)[inside]
    assert error.mean() < 3.0  # resampling twice (crop, then back) blurs a little
    assert 10 * np.log10(255**2 / np.mean(error**2)) > 32
    np.testing.assert_array_equal(out[frame_mask == 0], frame[frame_mask == 0])


@pytest.mark.parametrize("blend", convert.BLEND_MODES)
def test_only_masked_pixels_change(aligned, blend):
    frame = aligned["frame"]
    generated = convert.match_color(recast(aligned["face"]), aligned["face"], aligned["mask"],
                                    "reinhard")
    mask = convert.refine_mask(aligned["mask"], erode=3, feather=5)
    out, frame_mask = convert.paste_back(frame, generated, mask, aligned["matrix"], blend)
    changed = np.any(out != frame, axis=-1)
    assert changed.sum() > 3000
    assert not np.any(changed & (frame_mask == 0))
    np.testing.assert_array_equal(out[frame_mask == 0], frame[frame_mask == 0])
    assert 0 < np.count_nonzero((frame_mask > 0) & (frame_mask < 255))  # the feather survives


@pytest.mark.parametrize("blend", convert.BLEND_MODES)
def test_mask_reaching_the_frame_edge(blend):
    """A face crop larger than the frame: the mask covers whole frame borders."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    face = np.full((SIZE, SIZE, 3), 200, np.uint8)
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[16:100, 16:90] = 1.0  # in the frame: rows -16..67 (all), columns -16..57
    matrix = np.array([[1.0, 0.0, 32.0], [0.0, 1.0, 32.0]])  # frame (x, y) -> crop (x+32, y+32)
    out, frame_mask = convert.paste_back(frame, face, mask, matrix, blend)
    assert np.all(frame_mask[:, :58] == 255) and np.all(frame_mask[:, 58:] == 0)
    np.testing.assert_array_equal(out[:, 58:], frame[:, 58:])
    if blend == "alpha":
        assert np.all(out[:, :58] == 200)
    else:
        assert np.any(out[:, :58] != frame[:, :58])


def test_paste_back_rejects_bad_inputs(aligned):
    with pytest.raises(ValueError):
        convert.paste_back(aligned["frame"], aligned["face"], aligned["mask"], aligned["matrix"],
                           "poisson")
    with pytest.raises(ValueError):
        convert.paste_back(aligned["frame"], aligned["face"], aligned["mask"][:64],
                           aligned["matrix"])


# ---------------------------------------------------------------- watermark

@pytest.mark.parametrize("position", convert.WATERMARK_POSITIONS)
@pytest.mark.parametrize("shape", [(512, 512), (720, 1280), (90, 120)])
def test_watermark_marks_only_a_corner_box(shape, position):
    frame = np.full(shape + (3,), 128, np.uint8)
    out = convert.watermark(frame, position=position)
    assert frame.min() == 128  # the input is not modified
    ys, xs = np.nonzero(np.any(out != frame, axis=-1))
    height, width = shape
    assert len(ys) > 0.005 * height * width
    box_h, box_w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    assert box_h < 0.2 * height and box_w < 0.85 * width
    assert (ys.min() > height / 2) == position.startswith("bottom")
    assert (xs.min() > width / 3) == position.endswith("right") or box_w > 0.6 * width
    assert out[ys, xs].max() > 200 and out[ys, xs].min() < 60  # white text on a dark box
