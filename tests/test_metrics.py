"""Swap metrics on the synthetic identities, whose exact ground-truth swap is the best possible fake."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dfjax import media
from dfjax.data.synthetic import synthesize
from dfjax.errors import UserError
from dfjax.metrics import evaluate_swap, format_table, procrustes_error, save_report


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("metrics") / "synth"
    synthesize(out, frames=12, size=128, face_size=64)
    return out


def test_procrustes_error_ignores_similarity_and_sees_shape():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, (68, 2))
    points[36], points[45] = (20, 40), (80, 40)  # inter-ocular distance 60
    angle = 0.3
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = 1.7 * points @ rotation.T + (5, -9)
    assert procrustes_error(points, moved) < 1e-9
    bent = points.copy()
    bent[48:68] += (0, 6)  # the mouth drops by a tenth of the inter-ocular distance
    assert 0.01 < procrustes_error(points, bent) < 0.1


def test_a_video_against_itself_is_a_perfect_swap(synth):
    video = synth / "videos" / "a.mp4"
    report = evaluate_swap(video, video, truth_video=video)
    assert report["frames"]["total"] == 12 and report["frames"]["with_faces"] >= 10
    for angle in ("yaw", "pitch", "roll"):
        assert report["pose_error_deg"][angle]["median"] < 1e-6
    assert report["landmark_error_iod"]["mean"] < 1e-6
    assert report["jitter_iod"]["difference"] == pytest.approx(0.0, abs=1e-9)
    assert report["identity"]["to_source_median"] < 0.2
    fidelity = report["truth_fidelity"]
    assert fidelity["psnr"] == math.inf and fidelity["face_psnr"] == math.inf and fidelity["ssim"] == 1.0


def test_ground_truth_swap_carries_the_target_identity_and_keeps_the_pose(synth, tmp_path):
    videos = synth / "videos"
    truth = videos / "a_as_b_truth.mp4"
    report = evaluate_swap(videos / "a.mp4", truth, target_faces=synth / "facesets" / "b", truth_video=truth)
    frames, identity = report["frames"], report["identity"]
    assert frames["with_faces"] >= 8 and frames["skipped"] == frames["total"] - frames["with_faces"]
    assert identity["nearer_target_share"] >= 0.75
    assert identity["to_target_median"] < identity["to_source_median"]
    # The pose is identical; what remains is the landmark-based estimator's bias between two face
    # shapes (dlib puts B's landmarks several degrees "lower" than the renderer's truth).
    assert report["pose_error_deg"]["yaw"]["median"] < 12 and report["pose_error_deg"]["roll"]["median"] < 6
    assert report["pose_error_deg"]["pitch"]["median"] < 15
    assert report["truth_fidelity"]["psnr"] == math.inf
    table = format_table(report)
    assert "identity.nearer_target_share" in table and "truth_fidelity.psnr" in table
    saved = json.loads(save_report(report, tmp_path / "report.json").read_text())
    assert saved["truth_fidelity"]["psnr"] is None  # JSON has no infinity
    assert saved["identity"] == pytest.approx(identity)


def test_mismatched_or_missing_videos_are_user_errors(synth, tmp_path):
    source = synth / "videos" / "a.mp4"
    short = tmp_path / "short.mp4"
    with media.VideoWriter(short, 25, 128, 128) as writer:
        for _, frame in media.iter_frames(source, stop=8):
            writer.write(frame)
    with pytest.raises(UserError, match="short.mp4 has 8 frames"):
        evaluate_swap(source, short)
    blank = tmp_path / "blank.mp4"
    with media.VideoWriter(blank, 25, 128, 128) as writer:
        for _ in range(12):
            writer.write(np.full((128, 128, 3), 90, np.uint8))
    with pytest.raises(UserError, match="no face was found"):
        evaluate_swap(source, blank)
    with pytest.raises(UserError, match="does not exist"):
        evaluate_swap(source, tmp_path / "missing.mp4")
    with pytest.raises(UserError, match="not a face set"):
        evaluate_swap(source, source, target_faces=tmp_path)
