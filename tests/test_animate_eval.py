"""`dfjax evaluate-animate`: video reconstruction scores (L1, AKD, AED) of a tiny motion model beside the
copy-the-source baseline and a DVP reenactor, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dfjax.cli import app
from dfjax.data.synthetic import synthesize
from dfjax.training.core import train
from tests.test_animate import tiny_config
from tests.test_reenact import tiny_config as reenactor_config

runner = CliRunner()
STEPS = 3
FRAMES = 10


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_animate_eval")
    synthesize(out, frames=16, size=64, face_size=32)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth) -> Path:
    workdir = tmp_path_factory.mktemp("fomm_eval")
    assert train(tiny_config(synth, STEPS), workdir)["step"] == STEPS
    return workdir


@pytest.fixture(scope="module")
def reenactor(tmp_path_factory, synth) -> Path:
    """A tiny reenactor of synthetic person a (2 steps: the row's machinery, not its quality, is tested)."""
    workdir = tmp_path_factory.mktemp("reenactor_eval")
    assert train(reenactor_config(synth / "facesets" / "a", 2, **{"data.holdout": 0.0}), workdir)["step"] == 2
    return workdir


def test_reconstruction_report_and_copy_baseline(tmp_path, trained, synth, panned_video):
    heldout = synth / "videos" / "a_as_b_truth.mp4"  # b's face in a's motion: not a training video
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["evaluate-animate", "--model", str(trained), str(heldout), str(panned_video),
                                 "--max-frames", str(FRAMES), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "FOMM (reconstruction)" in result.output and "copy source (baseline)" in result.output
    assert "OpenFace" in result.output
    report = json.loads(out.read_text())
    assert report["model"]["step"] == STEPS and len(report["videos"]) == 2
    for method in ("fomm", "copy_source"):
        pooled = report["methods"][method]
        assert pooled["frames"] == 2 * FRAMES
        assert np.isfinite(pooled["l1"]) and 0 <= pooled["l1"] <= 1
        assert pooled["face_frames"] + pooled["no_face"] == pooled["frames"]
    copy = report["methods"]["copy_source"]
    assert copy["face_frames"] > 0 and np.isfinite(copy["akd"]) and np.isfinite(copy["aed"])
    for video in report["videos"]:
        frames = video["per_frame"]["copy_source"]
        assert frames["l1"][0] == 0.0 and frames["akd"][0] in (0.0, None) and frames["aed"][0] in (0.0, None)
        assert np.mean(frames["l1"][1:]) > 0
        assert len(video["per_frame"]["fomm"]["l1"]) == FRAMES
    pan_frames = report["videos"][1]["per_frame"]["copy_source"]  # a real face, found at 32 px too
    assert pan_frames["akd"][0] == 0.0 and pan_frames["aed"][0] == 0.0
    pan = pan_frames["l1"]  # the face slides further every frame
    assert pan[-1] > pan[FRAMES // 2] > pan[1] > 0
    assert np.corrcoef(np.arange(FRAMES), pan)[0, 1] > 0.9


def test_bad_inputs_exit_2(tmp_path, trained, frameless_video):
    empty = frameless_video
    swap_like = tmp_path / "swap_run"
    swap_like.mkdir()
    (swap_like / "config.json").write_text(json.dumps({"model": {"arch": "tiny"}}))
    cases = {"video without frames": [str(trained), str(empty)],
             "no model": [str(tmp_path / "missing"), str(empty)],
             "wrong kind of model": [str(swap_like), str(empty)],
             "not a video": [str(trained), str(tmp_path / "nothing.mp4")]}
    for name, (model, video) in cases.items():
        result = runner.invoke(app, ["evaluate-animate", "--model", model, video, "-o", str(tmp_path / "r.json"),
                                     "--quiet"])
        assert result.exit_code == 2, (name, result.output)
        assert "error:" in result.output and "Traceback" not in result.output, name
        assert not (tmp_path / "r.json").exists(), name


def test_dvp_reenactor_row(tmp_path, trained, reenactor, panned_video):
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["evaluate-animate", "--model", str(trained), str(panned_video), "--reenactor",
                                 str(reenactor), "--max-frames", str(FRAMES), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "DVP reenactor" in result.output
    report = json.loads(out.read_text())
    assert report["reenactor"]["workdir"] == str(reenactor) and report["reenactor"]["step"] == 2
    video = report["videos"][0]
    assert video["dvp_frames_with_face"] == FRAMES  # the astronaut is found in every frame
    dvp, copy = report["methods"]["dvp_reenactor"], report["methods"]["copy_source"]
    assert dvp["frames"] == FRAMES and dvp["face_frames"] + dvp["no_face"] == FRAMES
    l1 = video["per_frame"]["dvp_reenactor"]["l1"]
    assert len(l1) == FRAMES and all(0 < v < 1 for v in l1)
    assert l1[0] > 0  # frame 0 too is re-rendered (the copy baseline's is exact)
    assert np.isfinite(copy["l1"]) and copy["frames"] == FRAMES


def test_reenactor_of_the_wrong_kind_exits_2(tmp_path, trained, panned_video):
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["evaluate-animate", "--model", str(trained), str(panned_video), "--reenactor",
                                 str(trained), "-o", str(out), "--quiet"])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "not a reenactor" in result.output and "Traceback" not in result.output
    assert not out.exists()
