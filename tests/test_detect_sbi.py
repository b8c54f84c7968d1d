"""Self-blended images: fakes only inside the face region, deterministic, and enough to train a detector."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detect.cnn import CNNDetector
from detect.evaluate import frame_metrics
from detect.sbi import HULLS, hull_mask, self_blend
from tests.test_detect_cnn import SIZE, face_landmarks, real_images, swap_task, tiny_config


@pytest.fixture(scope="module")
def reals():
    rng = np.random.default_rng(7)
    landmarks = np.stack([face_landmarks(rng) for _ in range(24)])
    return real_images(rng, 24), landmarks


def test_fakes_differ_only_inside_the_dilated_face_region(reals):
    images, landmarks = reals
    made = self_blend(images, landmarks, seed=5)
    assert made.fakes.shape == images.shape and made.fakes.dtype == np.uint8
    assert made.targets.shape == images.shape and made.targets.dtype == np.uint8
    assert made.masks.shape == images.shape[:3] and made.masks.dtype == np.float32
    margin = int(0.2 * SIZE)  # misalignment, elastic deformation and the soft edge reach this far at most
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    untouched = 0
    for image, target, fake, mask, points in zip(images, *made, landmarks):
        region = cv2.dilate(hull_mask(points, SIZE, "extended"), kernel) > 0
        assert not region.all()
        np.testing.assert_array_equal(fake[~region], target[~region])  # outside: the target exactly
        assert np.all(mask[~region] == 0) and mask.max() > 0
        assert np.abs(fake.astype(int) - target.astype(int))[region].max() > 0  # inside: blended
        # the target is the real image itself, or the real image with a global colour/frequency change
        untouched += np.array_equal(target, image)
    assert 0 < untouched < len(images)


def test_self_blending_is_deterministic_for_a_seed(reals):
    images, landmarks = reals
    a = self_blend(images, landmarks, seed=(3, 1), workers=1)
    b = self_blend(images, landmarks, seed=(3, 1), workers=4)
    c = self_blend(images, landmarks, seed=(3, 2))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.fakes, c.fakes)


def test_hull_variants_and_input_checks(reals):
    images, landmarks = reals
    areas = {kind: hull_mask(landmarks[0], SIZE, kind).sum() for kind in HULLS}
    assert areas["inner"] < areas["hull"] < areas["extended"] and areas["lower"] < areas["hull"]
    with pytest.raises(ValueError, match="landmarks"):
        self_blend(images, landmarks[:, :60])
    with pytest.raises(ValueError, match="uint8"):
        self_blend(images.astype(np.float32), landmarks)


def test_sbi_trained_detector_finds_unseen_face_swaps():
    """Trained on real images only (SBI makes the fakes), it detects the swaps of another generator."""
    (x, y, landmarks), (xt, yt, _) = swap_task(10, 128), swap_task(11, 64)
    reals, real_landmarks = x[y == 0], landmarks[y == 0]
    detector = CNNDetector(tiny_config("meso4", sbi=True, train__steps=160)).fit(reals, np.zeros(len(reals)), landmarks=real_landmarks)
    auc = frame_metrics(yt, detector.score(xt))["auc"]
    print("SBI-trained meso4 AUC on held-out swaps", auc)
    assert auc > 0.7


def test_sbi_mix_keeps_the_given_fakes_in_every_pool():
    from detect.cnn import _BalancedBatches, config_from_arg

    (x, y, landmarks) = swap_task(12, 16)
    reals, fakes = x[y == 0], x[y == 1]
    batches = _BalancedBatches(reals, np.zeros(len(reals)), 8, 0, landmarks[y == 0], 1, fakes)
    try:
        images, real, fake = batches._make_pool(0)
        assert len(real) == len(reals) and len(fake) == len(reals) + len(fakes)
        assert np.array_equal(images[-len(fakes):], fakes)  # the given fakes, beside the self-blended ones
        seen = np.concatenate([batches(step)[1] for step in range(20)])
        assert 0.3 < seen.mean() < 0.7  # still half real, half fake
    finally:
        batches.close()
    assert config_from_arg("meso4", "tiny,sbi,mix").sbi_mix and not config_from_arg("meso4", "tiny,mix").sbi_mix
