"""`dfjax detect-eval` end to end on synthetic clips (seeds, cross-method matrix, robustness,
compression, checkpoints, the report), its one-sentence errors, and the demo's detection step."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from detect import run
from dfjax import media
from dfjax.cli import app
from dfjax.data.synthetic import synthesize

runner = CliRunner()


def _upsampled_copy(source, target) -> None:
    """`source` halved (area) and doubled again by nearest neighbour: a fake with up-sampling artefacts."""
    info = media.probe(source)
    with media.VideoWriter(target, info.fps, info.width, info.height, crf=12) as writer:
        for _, frame in media.iter_frames(source):
            small = cv2.resize(frame, (info.width // 2, info.height // 2), interpolation=cv2.INTER_AREA)
            writer.write(cv2.resize(small, (info.width, info.height), interpolation=cv2.INTER_NEAREST))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three synthetic clips (different motion and backgrounds): real a.mp4, and two kinds of fake of the
    same identity's face: the exact swap b_as_a_truth.mp4 ("swap") and an up-sampled copy of a ("upsampled")."""
    root = tmp_path_factory.mktemp("detect")
    rows = ["path,label,method,group"]
    for seed in range(3):
        videos = root / f"s{seed}" / "videos"
        synthesize(root / f"s{seed}", frames=16, size=256, face_size=64, seed=seed)
        _upsampled_copy(videos / "a.mp4", videos / "a_upsampled.mp4")
        rows += [f"s{seed}/videos/a.mp4,0,real,clip{seed}", f"s{seed}/videos/b_as_a_truth.mp4,1,swap,clip{seed}",
                 f"s{seed}/videos/a_upsampled.mp4,1,upsampled,clip{seed}"]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def _eval(labels_csv, out, *extra):
    return runner.invoke(app, ["detect-eval", "--real", str(labels_csv), "--fake", str(labels_csv), "--frames", "8",
                               "--size", "64", "-o", str(out), "--quiet", *extra])


def _error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.count("error:") == 1
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def evaluated(clips, tmp_path_factory):
    """One full run of the spectral detector: two seeds, robustness sweep, raw and c23 test videos.
    (dct's cross-validated fit is slower; the in-memory tests of test_detect_eval.py run it.)"""
    out = tmp_path_factory.mktemp("report")
    result = _eval(clips / "labels.csv", out, "--detector", "spectral", "--seeds", "2", "--robustness",
                   "--compression", "raw,c23")
    assert result.exit_code == 0, result.output
    return out, result


def test_report_has_every_table(evaluated):
    out, result = evaluated
    report = json.loads((out / "report.json").read_text())
    assert list(report["detectors"]) == ["spectral"] and report["settings"]["seeds"] == [0, 1]
    for entry in report["detectors"].values():
        assert [s["seed"] for s in entry["seeds"]] == [0, 1]
        assert len(entry["mean"]["frame"]["auc"]["values"]) == 2 and entry["mean"]["video"]["auc"]["mean"] >= 0
        assert set(entry["mean"]["per_method"]) == {"swap", "upsampled"}
    splits = report["dataset"]
    assert splits["test"]["videos"] == 3 and splits["train"]["videos"] == 3 and "test@c23" in splits
    assert all(c["frames"] + c["frames_without_face"] == c["frames_sampled"] == 24 for c in splits.values())
    cross = report["cross_method"]["spectral"]
    assert cross["methods"] == ["swap", "upsampled"] and np.asarray(cross["auc"]).shape == (2, 2)
    levels = report["robustness"]["spectral"]["levels"]
    assert {lv["perturbation"] for lv in levels} == {"jpeg", "crf", "blur", "noise", "resize"}
    assert set(report["compression"]["spectral"]) == {"raw", "c23"}
    md = (out / "report.md").read_text()
    for heading in ("## Dataset", "## Main results", "## Cross-method matrix", "## Robustness", "## Compression"):
        assert heading in md
    assert (out / "roc_spectral.png").stat().st_size > 5000
    assert "spectral" in result.output and "video AUC" in result.output  # the summary table


def test_checkpoints_reload_to_the_same_scores(evaluated, clips):
    out, _ = evaluated
    before = json.loads((out / "report.json").read_text())["detectors"]
    again = _eval(clips / "labels.csv", out, "--checkpoint", str(out / "checkpoints"), "--detector", "spectral")
    assert again.exit_code == 0, again.output
    after = json.loads((out / "report.json").read_text())
    assert list(after["detectors"]) == ["spectral"] and "cross_method" not in after
    for seed in (0, 1):
        assert after["detectors"]["spectral"]["seeds"][seed]["frame"] == before["spectral"]["seeds"][seed]["frame"]
    assert "dct" in _error(_eval(clips / "labels.csv", out, "--checkpoint", str(out / "checkpoints"),
                                 "--detector", "dct"))


def test_user_mistakes_end_in_one_sentence(clips, tmp_path):
    csv = clips / "labels.csv"
    assert "xception9000" in _error(_eval(csv, tmp_path / "r", "--detector", "xception9000"))
    assert "is for the meso4 detector" in _error(_eval(csv, tmp_path / "r", "--detector", "spectral", "--config",
                                                       "configs/detect_meso4.py:tiny"))
    (tmp_path / "empty").mkdir()
    assert "holds no saved detector" in _error(_eval(csv, tmp_path / "r", "--checkpoint", str(tmp_path / "empty")))
    assert "c99" in _error(_eval(csv, tmp_path / "r", "--compression", "raw,c99"))
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nsome.mp4\n")
    assert "bad.csv" in _error(_eval(bad, tmp_path / "r"))
    for kind in ("real", "fake"):
        for i in range(3):
            with media.VideoWriter(tmp_path / kind / f"blank{i}.mp4", 25, 128, 128) as writer:
                for k in range(4):
                    writer.write(np.full((128, 128, 3), 40 * k, np.uint8))
    no_faces = runner.invoke(app, ["detect-eval", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"),
                                   "--frames", "4", "--size", "64", "-o", str(tmp_path / "r"), "--quiet"])
    assert "no faces found in" in _error(no_faces)


def test_demo_detect(clips, tmp_path, monkeypatch):
    """The demo's detection step, with the CNNs left out here (their own tests train them)."""
    monkeypatch.setattr(run, "demo_specs", lambda: {"spectral": ("spectral", None), "dct": ("dct", None)})
    videos = clips / "s0" / "videos"
    summary = run.demo_detect([videos / "a.mp4"], [videos / "a_upsampled.mp4", videos / "b_as_a_truth.mp4"],
                              tmp_path / "demo")
    assert set(summary["detectors"]) == {"spectral", "dct"}
    cross = summary["cross_method"]  # dct trained on each method's fakes alone, scored on both
    assert set(cross) == {"dct"} and cross["dct"]["methods"] == ["exact-swap", "fake"]
    assert np.asarray(cross["dct"]["auc"]).shape == (2, 2) and cross["dct"]["auc"][1][1] > 0.8
    assert "Cross-method matrix" in (tmp_path / "demo" / "report.md").read_text()
    assert summary["frames"]["test"]["real"] > 0 and summary["frames"]["test"]["fake"] > 0
    assert summary["detectors"]["spectral"]["frame_auc"] > 0.9  # up-sampling is what the spectrum shows
    assert (tmp_path / "demo" / "report.md").exists() and (tmp_path / "demo" / "roc_dct.png").exists()
