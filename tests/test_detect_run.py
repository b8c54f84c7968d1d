"""`dfjax detect-eval` end to end on synthetic real/fake clips: an identity-disjoint split, a report."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dfjax.cli import app
from dfjax.data.synthetic import synthesize

runner = CliRunner()


@pytest.fixture(scope="module")
def labels_csv(tmp_path_factory):
    """Three synthetic clips (different motion and backgrounds), each real a.mp4 + its exact swap as fake."""
    root = tmp_path_factory.mktemp("detect")
    rows = ["path,label,method,group"]
    for seed in range(3):
        synthesize(root / f"s{seed}", frames=24, size=256, face_size=64, seed=seed)
        rows += [f"s{seed}/videos/a.mp4,0,real,clip{seed}", f"s{seed}/videos/a_as_b_truth.mp4,1,synthetic,clip{seed}"]
    csv = root / "labels.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def test_detect_eval_writes_a_report_on_an_identity_disjoint_split(tmp_path, labels_csv):
    out = tmp_path / "report"
    result = runner.invoke(app, ["detect-eval", "--real", str(labels_csv), "--fake", str(labels_csv),
                                 "--frames", "12", "--size", "64", "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert set(report) == {"spectral", "dct"}
    for metrics in report.values():
        assert 0.0 <= metrics["frame"]["auc"] <= 1.0 and metrics["video"]["n_videos"] == 2
    assert (out / "report.md").exists() and (out / "roc_spectral.png").exists()
    splits = json.loads((out / "dataset.json").read_text())["splits"]
    assert splits["test"]["videos"] == 2 and splits["train"]["videos"] == 2


def test_unknown_detector_and_bad_csv_are_refused(tmp_path, labels_csv):
    unknown = runner.invoke(app, ["detect-eval", "--real", str(labels_csv), "--fake", str(labels_csv),
                                  "--detector", "xception9000", "-o", str(tmp_path / "r"), "--quiet"])
    assert unknown.exit_code == 2 and "xception9000" in unknown.output
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nsome.mp4\n")
    refused = runner.invoke(app, ["detect-eval", "--real", str(bad), "--fake", str(bad), "-o", str(tmp_path / "r"),
                                  "--quiet"])
    assert refused.exit_code == 2 and "bad.csv" in refused.output and "Traceback" not in refused.output
