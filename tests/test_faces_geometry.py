"""Face geometry: alignment, masks, head pose, gaze, smoothing and blur, on synthetic and real faces."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from dfjax.faces import align, masks, quality, smooth
from dfjax.faces.gaze import estimate_gaze
from dfjax.faces.model3d import (EYEBALL_RADIUS_TO_EYE_WIDTH, MODEL_68, project,
                                 rotation_from_euler)
from dfjax.faces.pose import estimate_pose
from dfjax.errors import UserError


def similarity(scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = scale * math.cos(math.radians(degrees)), scale * math.sin(math.radians(degrees))
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


@pytest.fixture(scope="module")
def astronaut_face(astronaut, astronaut_landmarks) -> tuple[np.ndarray, np.ndarray]:
    """skimage's astronaut photo and its dlib 68 landmarks."""
    return astronaut, astronaut_landmarks


# ---------------------------------------------------------------- alignment

@pytest.mark.parametrize("face_type", sorted(align.FACE_TYPES))
def test_landmarks_from_a_known_similarity_land_on_the_template(face_type):
    frame_from_template = similarity(2.7, 23.0, (412.0, 137.0))
    landmarks = np.zeros((68, 2), dtype=np.float32)
    landmarks[17:] = align.transform_points(align.MEAN_FACE_51 * 100.0, frame_from_template)
    matrix = align.alignment_matrix(landmarks, 128, face_type)
    assert matrix.shape == (2, 3) and matrix.dtype == np.float64
    landed = align.transform_points(landmarks[17:], matrix)
    assert np.abs(landed - align.template_points(128, face_type)).max() < 0.5


def test_crop_sizes_follow_face_type_and_coverage():
    width = {ft: np.ptp(align.template_points(256, ft)[:, 0]) for ft in align.FACE_TYPES}
    assert width["face"] > width["whole_face"] > width["head"]
    # DFL full face: the 51-point template spans 1 / (1 + 2 sqrt(2) 0.2109375) of the crop.
    assert abs(width["face"] / 256 / np.ptp(align.MEAN_FACE_51[:, 0]) - 0.6264) < 1e-3
    zoomed = np.ptp(align.template_points(256, "face", coverage=0.5)[:, 0])
    assert abs(zoomed / width["face"] - 2.0) < 1e-9
    with pytest.raises(ValueError):
        align.alignment_matrix(np.zeros((68, 2)) + np.arange(68)[:, None], 64, "half_face")
    with pytest.raises(ValueError):
        align.template_points(64, "face", coverage=0.0)


def test_invert_round_trips_points():
    matrix = similarity(0.37, -61.0, (-20.0, 75.0))
    points = np.random.default_rng(0).uniform(0, 1000, (50, 2))
    back = align.transform_points(align.transform_points(points, matrix), align.invert(matrix))
    assert np.abs(back - points).max() < 1e-9


@pytest.mark.parametrize("scale", [0.3, 2.5])
def test_warp_face_puts_a_frame_point_where_the_matrix_says(scale):
    frame = np.zeros((600, 800, 3), dtype=np.uint8)
    spot = np.array([523.0, 311.0])
    cv2.circle(frame, (523, 311), int(6 / scale), (255, 255, 255), -1)
    matrix = similarity(scale, 30.0, (0.0, 0.0))
    matrix[:, 2] = 64.0 - align.transform_points(spot[None], matrix)[0] + [7.0, -5.0]
    crop = align.warp_face(frame, matrix, 128)
    assert crop.shape == (128, 128, 3)
    moments = cv2.moments(crop[..., 0].astype(np.float32))
    centre = np.array([moments["m10"], moments["m01"]]) / moments["m00"]
    assert np.abs(centre - [71.0, 59.0]).max() < 0.1  # half-pixel conventions kept when shrinking


def test_real_face_aligns_with_level_eyes_on_the_template(astronaut_face):
    image, landmarks = astronaut_face
    matrix = align.alignment_matrix(landmarks, 128)
    eyes = quality.eye_centres(align.transform_points(landmarks, matrix))
    template = align.template_points(128)
    expected = np.stack([template[19:25].mean(axis=0), template[25:31].mean(axis=0)])
    assert np.abs(eyes - expected).max() < 3.0
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1.5
    assert eyes[0, 0] < 64 < eyes[1, 0]  # the subject's right eye on the image left
    crop = align.warp_face(image, matrix, 128)
    assert crop.shape == (128, 128, 3) and crop.std() > 20


# ---------------------------------------------------------------- masks

def test_extended_mask_contains_hull_and_adds_the_forehead(astronaut_face):
    image, landmarks = astronaut_face
    for degrees in (0.0, 35.0):  # the forehead follows a rolled head
        turn = cv2.getRotationMatrix2D((256.0, 256.0), degrees, 1.0)
        points = align.transform_points(landmarks, turn)
        hull = masks.landmark_mask(points, *image.shape[:2], kind="hull")
        extended = masks.landmark_mask(points, *image.shape[:2], kind="extended")
        assert set(np.unique(hull)) == {0, 255} and hull.dtype == np.uint8
        assert not np.any((hull > 0) & (extended == 0))
        polygon = cv2.contourArea(cv2.convexHull(points.astype(np.float32)))
        assert abs((hull > 0).sum() / polygon - 1.0) < 0.05
        assert 1.1 < (extended > 0).sum() / (hull > 0).sum() < 1.6
        brows, nose_tip = points[17:27].mean(axis=0), points[30]
        forehead = np.round(brows + 0.25 * (brows - nose_tip)).astype(int)
        assert hull[forehead[1], forehead[0]] == 0 and extended[forehead[1], forehead[0]] == 255


def test_unknown_mask_kind_is_refused():
    with pytest.raises(ValueError):
        masks.landmark_mask(np.zeros((68, 2)), 10, 10, kind="components")


# ---------------------------------------------------------------- head pose

def render_landmarks(yaw: float, pitch: float, roll: float, width: int = 1280,
                     height: int = 720, distance: float = 1100.0) -> np.ndarray:
    """MODEL_68 seen by the default camera (focal = width): a face about 170 px wide."""
    return project(MODEL_68, rotation_from_euler(yaw, pitch, roll),
                   np.array([60.0, -40.0, distance]), width, width / 2, height / 2)


ANGLES = [(0, 0, 0), (40, 0, 0), (-40, 0, 0), (0, 20, 0), (0, -20, 0), (0, 0, 15),
          (25, -20, -15), (-40, 20, 15), (-30, -10, 10)]


@pytest.mark.parametrize("yaw,pitch,roll", ANGLES)
def test_pose_recovers_known_angles(yaw, pitch, roll):
    pose = estimate_pose(render_landmarks(yaw, pitch, roll), 1280, 720)
    assert np.abs(np.array([pose.yaw, pose.pitch, pose.roll]) - [yaw, pitch, roll]).max() < 1.0
    assert abs(pose.translation[2] - 1100.0) < 20.0
    assert np.allclose(pose.rotation, rotation_from_euler(yaw, pitch, roll), atol=0.02)


def test_pose_with_noisy_landmarks_is_within_a_few_degrees():
    rng = np.random.default_rng(1)
    errors = []
    for yaw, pitch, roll in ANGLES:
        for _ in range(5):
            noisy = render_landmarks(yaw, pitch, roll) + rng.normal(0.0, 1.0, (68, 2))
            pose = estimate_pose(noisy, 1280, 720)
            errors.append(np.abs(np.array([pose.yaw, pose.pitch, pose.roll]) - [yaw, pitch, roll]))
    assert np.max(errors) < 2.0 and np.mean(errors) < 0.5
    as_dict = pose.as_dict(rotation=True)
    assert set(as_dict) == {"yaw", "pitch", "roll", "rotation"}
    assert as_dict["yaw"] == round(pose.yaw, 2)


def test_real_face_pose_is_near_frontal(astronaut_face):
    image, landmarks = astronaut_face
    pose = estimate_pose(landmarks, image.shape[1], image.shape[0])
    assert abs(pose.yaw) < 15 and abs(pose.roll) < 10 and abs(pose.pitch) < 30


# ---------------------------------------------------------------- gaze

EYE = np.array([[0, 0], [18, -12], [42, -12], [60, 0], [42, 12], [18, 12]], dtype=np.float64)


def draw_eyes(offset: tuple[float, float], roll: float = 0.0, open_eye: bool = True):
    """A skin-coloured image with two almond eyes 60 px wide whose pupils sit at `offset` px
    (along the eye, toward image right; across it, toward the top of the head), and its landmarks."""
    image = np.full((240, 320, 3), (170, 130, 110), dtype=np.uint8)
    landmarks = np.zeros((68, 2))
    turn = cv2.getRotationMatrix2D((0.0, 0.0), -roll, 1.0)[:, :2]  # clockwise in the image
    shape = EYE if open_eye else EYE * [1.0, 0.05]
    along, up = turn @ [1.0, 0.0], turn @ [0.0, -1.0]
    for first, origin in ((36, np.array([70.0, 120.0])), (42, np.array([190.0, 120.0]))):
        eye = origin + shape @ turn.T
        landmarks[first:first + 6] = eye
        inside = np.zeros(image.shape[:2], dtype=np.uint8)
        cv2.fillPoly(inside, [np.round(eye * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
        pupil = eye.mean(axis=0) + offset[0] * along + offset[1] * up
        iris = np.zeros_like(inside)
        cv2.circle(iris, tuple(np.round(pupil * 16).astype(int)), 9 * 16, 255, -1, cv2.LINE_AA, 4)
        colour = np.where(iris[..., None] > 0, (60, 40, 30), (235, 235, 230)).astype(np.float32)
        alpha = inside[..., None] / 255.0
        image = (image * (1 - alpha) + colour * alpha).astype(np.uint8)
        cv2.polylines(image, [np.round(eye[:4] * 16).astype(np.int32)], False, (50, 30, 30),
                      1, cv2.LINE_AA, 4)  # the lash line
    return cv2.GaussianBlur(image, (0, 0), 0.8), landmarks


def expected_angles(offset: tuple[float, float]) -> tuple[float, float]:
    radius = EYEBALL_RADIUS_TO_EYE_WIDTH * 60.0
    pitch = math.asin(offset[1] / radius)
    return math.degrees(pitch), math.degrees(math.asin(offset[0] / (radius * math.cos(pitch))))


@pytest.mark.parametrize("offset,roll", [((0, 0), 0), ((8, 3), 0), ((-8, -3), 0),
                                         ((-6, 3), 0), ((7, 2), 20)])
def test_gaze_follows_the_pupil(offset, roll):
    image, landmarks = draw_eyes(offset, roll)
    gaze = estimate_gaze(image, landmarks)
    pitch, yaw = expected_angles(offset)
    assert not gaze.blink and min(gaze.ear) > 0.3
    for eye_pitch, eye_yaw in (gaze.right, gaze.left, (gaze.pitch, gaze.yaw)):
        assert abs(eye_pitch - pitch) < 3.0 and abs(eye_yaw - yaw) < 3.0
    if offset != (0, 0):  # the direction, not just the size, comes out right
        assert np.sign(gaze.yaw) == np.sign(offset[0]) and np.sign(gaze.pitch) == np.sign(offset[1])


def test_closed_eyes_are_a_blink_without_gaze():
    image, landmarks = draw_eyes((0, 0), open_eye=False)
    gaze = estimate_gaze(image, landmarks)
    assert gaze.blink and max(gaze.ear) < 0.2
    assert math.isnan(gaze.pitch) and math.isnan(gaze.yaw)
    as_dict = gaze.as_dict()
    assert as_dict["pitch"] is None and as_dict["yaw"] is None and as_dict["blink"] is True
    open_image, open_landmarks = draw_eyes((8, 3))
    winking_landmarks = np.concatenate([landmarks[:42], open_landmarks[42:]])
    winking = estimate_gaze(open_image, winking_landmarks)
    assert not winking.blink and math.isnan(winking.right[0])
    assert abs(winking.yaw - expected_angles((8, 3))[1]) < 3.0


def test_real_face_gaze_is_plausible(astronaut_face):
    image, landmarks = astronaut_face
    gaze = estimate_gaze(image, landmarks)
    assert not gaze.blink
    assert abs(gaze.yaw) < 15 and abs(gaze.pitch) < 25
    assert abs(gaze.right[1] - gaze.left[1]) < 10  # both eyes look the same way


# ---------------------------------------------------------------- smoothing

def test_one_euro_removes_jitter_on_a_still_face():
    rng = np.random.default_rng(2)
    still = 300.0 + rng.normal(0.0, 1.0, (120, 68, 2)).astype(np.float32)
    smoothed = smooth.smooth_sequence(still, fps=30.0)
    assert smoothed.shape == still.shape and smoothed.dtype == np.float32
    jitter = lambda seq: np.abs(np.diff(seq[15:], axis=0)).mean()  # noqa: E731
    assert jitter(smoothed) < jitter(still) / 4
    assert np.abs(smoothed[15:] - 300.0).mean() < 0.5


def test_one_euro_keeps_up_with_fast_motion():
    fps, speed = 30.0, 300.0  # px/s: a quick head turn on 720p
    truth = np.arange(90)[:, None, None] * speed / fps + np.zeros((90, 68, 2))
    noisy = truth + np.random.default_rng(3).normal(0.0, 1.0, truth.shape)
    lag = (truth - smooth.smooth_sequence(noisy, fps))[15:].mean()
    assert 0 < lag < 0.5 * speed / fps  # under half a frame's motion behind


def test_one_euro_streaming_and_reset():
    one_euro = smooth.OneEuroFilter()
    assert np.array_equal(one_euro(np.ones((68, 2)), 0.0), np.ones((68, 2)))
    assert one_euro(np.full((68, 2), 5.0), 1 / 30)[0, 0] < 5.0
    with pytest.raises(ValueError):
        one_euro(np.ones((68, 2)), 0.0)
    one_euro.reset()
    assert one_euro(np.full((3,), 7.0), 0.0)[0] == 7.0


def test_kalman_follows_constant_motion_without_lag_and_halves_jitter():
    fps, speed = 30.0, 300.0
    truth = np.arange(90)[:, None, None] * speed / fps + np.zeros((90, 68, 2))
    noisy = truth + np.random.default_rng(3).normal(0.0, 1.0, truth.shape)
    kalman, one_euro = (smooth.smooth_sequence(noisy, fps, kind) for kind in ("kalman", "one-euro"))
    assert abs((truth - kalman)[15:].mean()) < 0.05  # a constant velocity is followed with no lag at all
    assert (truth - one_euro)[15:].mean() > 1.0  # where One Euro trails by a fraction of a frame's motion
    assert np.abs(truth - kalman)[15:].mean() < 0.8 * np.abs(truth - noisy)[15:].mean()  # and less noise
    still = 300.0 + np.random.default_rng(2).normal(0.0, 1.0, (120, 68, 2))
    jitter = lambda seq: np.abs(np.diff(seq[15:], axis=0)).mean()  # noqa: E731
    assert jitter(smooth.smooth_sequence(still, fps, "kalman")) < jitter(still) / 1.5
    assert np.array_equal(smooth.smooth_sequence(still, fps, "none"), still)


def test_kalman_streaming_reset_and_bad_settings():
    kalman = smooth.KalmanFilter(process_noise=100.0, measurement_noise=2.0)
    assert np.array_equal(kalman(np.ones((70, 2)), 0.0), np.ones((70, 2)))
    assert 1.0 < kalman(np.full((70, 2), 5.0), 1 / 30)[0, 0] < 5.0
    with pytest.raises(ValueError):
        kalman(np.ones((70, 2)), 0.0)  # time must move on
    kalman.reset()
    assert kalman(np.full((3,), 7.0), 0.0)[0] == 7.0
    with pytest.raises(ValueError):
        smooth.KalmanFilter(measurement_noise=0.0)
    with pytest.raises(UserError, match="--smoothing 'foo' is unknown"):
        smooth.check_smoothing("foo")


# ---------------------------------------------------------------- quality

def test_blur_scores_lower_for_a_blurred_image(astronaut_face):
    image, landmarks = astronaut_face
    blurred = cv2.GaussianBlur(image, (0, 0), 2.0)
    assert quality.blur_score(blurred) < 0.5 * quality.blur_score(image)
    face = masks.landmark_mask(landmarks, *image.shape[:2])
    assert quality.blur_score(blurred, face) < 0.5 * quality.blur_score(image, face)
    assert quality.inter_ocular_distance(landmarks) == pytest.approx(
        np.linalg.norm(landmarks[45] - landmarks[36]))
