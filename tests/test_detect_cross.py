"""`dfjax detect-eval --train PATH --test NAME=PATH`: the cross-dataset protocol on two tiny labelled
datasets rendered here, its table, its checkpoint path and its one-sentence refusals."""

from __future__ import annotations

import json
import math

import cv2
import pytest
from typer.testing import CliRunner

from dfjax import media
from dfjax.cli import app
from dfjax.data.synthetic import synthesize

runner = CliRunner()
ARGS = ("--detector", "spectral", "--frames", "8", "--size", "64", "--quiet")


def _resampled_copy(source, target, interpolation) -> None:
    """`source` halved (area) and doubled again with `interpolation`: a fake with up-sampling artefacts."""
    info = media.probe(source)
    with media.VideoWriter(target, info.fps, info.width, info.height, crf=12) as writer:
        for _, frame in media.iter_frames(source):
            small = cv2.resize(frame, (info.width // 2, info.height // 2), interpolation=cv2.INTER_AREA)
            writer.write(cv2.resize(small, (info.width, info.height), interpolation=interpolation))


def _dataset(root, name, seeds, interpolation, method):
    """A labels CSV of synthetic clips: real a.mp4, fakes b_as_a_truth.mp4 (A's face in B's frames) and a
    re-sampled copy of a.mp4; the clip is the group."""
    rows = ["path,label,method,group"]
    for seed in seeds:
        videos = root / name / f"s{seed}" / "videos"
        synthesize(videos.parent, frames=16, size=256, face_size=64, seed=seed)
        _resampled_copy(videos / "a.mp4", videos / f"a_{method}.mp4", interpolation)
        rows += [f"s{seed}/videos/a.mp4,0,real,clip{seed}", f"s{seed}/videos/b_as_a_truth.mp4,1,swap,clip{seed}",
                 f"s{seed}/videos/a_{method}.mp4,1,{method},clip{seed}"]
    labels = root / name / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    return labels


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Dataset one (3 clips, nearest-neighbour up-sampling) to train on; dataset two (2 other clips,
    bilinear up-sampling) only to test on."""
    root = tmp_path_factory.mktemp("cross")
    return (_dataset(root, "one", (0, 1, 2), cv2.INTER_NEAREST, "nearest"),
            _dataset(root, "two", (3, 4), cv2.INTER_LINEAR, "bilinear"))


@pytest.fixture(scope="module")
def crossed(datasets, tmp_path_factory):
    one, two = datasets
    out = tmp_path_factory.mktemp("report") / "r"
    result = runner.invoke(app, ["detect-eval", "--train", str(one), "--test", f"other={two}",
                                 "--test", f"same={one}", "-o", str(out), *ARGS])
    assert result.exit_code == 0, result.output
    return out, result


def _finite(mean_std) -> bool:
    return math.isfinite(mean_std["mean"]) and 0.0 <= mean_std["mean"] <= 1.0


def test_table_has_every_test_set(crossed):
    out, result = crossed
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["test"] == {"other": report["settings"]["test"]["other"],
                                          "same": report["settings"]["test"]["same"]}
    assert "detectors" not in report and "cross_method" not in report
    spectral = report["cross_dataset"]["spectral"]
    assert set(spectral["test"]) == {"other", "same"} and "val" in spectral
    for entry in [spectral["val"], *spectral["test"].values()]:
        for level, key in (("frame", "auc"), ("video", "auc"), ("frame", "ap"), ("frame", "eer")):
            assert _finite(entry["mean"][level][key]), (level, key, entry["mean"])
    data = report["dataset"]
    assert set(data) == {"train", "val", "test:other", "test:same"}
    assert data["train"]["videos"] + data["val"]["videos"] == 9 and data["val"]["videos"] == 3  # one clip held out
    assert data["test:same"]["videos"] == 9 and data["test:same"]["videos_in_training_data"] == 9
    assert data["test:other"]["videos"] == 6 and data["test:other"]["videos_in_training_data"] == 0
    assert any("Test set same: 9 of 9 videos" in note for note in report["notes"])
    md = (out / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| detector | val"))
    for group in ("val (in-dataset)", "other", "same"):
        for metric in ("frame AUC", "video AUC", "AP", "EER"):
            assert f"{group}: {metric} |" in header
    row = next(line for line in md.splitlines() if line.startswith("| spectral |"))
    assert row.count("|") == header.count("|")
    assert "| spectral | same | nearest |" in md  # per method, where a set has fakes of two methods
    for png in ("roc_spectral_val.png", "roc_spectral_test_other.png", "roc_spectral_test_same.png"):
        assert (out / png).stat().st_size > 5000
    assert (out / "checkpoints" / "spectral" / "seed_0").is_dir()
    assert "scored on" in result.output and "other" in result.output  # the terminal's table


def test_checkpoint_scores_the_test_sets_alone(crossed, datasets, tmp_path):
    out, _ = crossed
    one, two = datasets
    before = json.loads((out / "report.json").read_text())["cross_dataset"]["spectral"]["test"]
    again = runner.invoke(app, ["detect-eval", "--checkpoint", str(out / "checkpoints"), "--test", f"other={two}",
                                "--test", f"same={one}", "-o", str(tmp_path / "again"), *ARGS])
    assert again.exit_code == 0, again.output
    report = json.loads((tmp_path / "again" / "report.json").read_text())
    after = report["cross_dataset"]["spectral"]
    assert "val" not in after and set(report["dataset"]) == {"test:other", "test:same"}
    assert not (tmp_path / "again" / "checkpoints").exists()  # nothing trained
    for name in ("other", "same"):
        for level in ("frame", "video"):
            assert after["test"][name]["seeds"][0][level] == before[name]["seeds"][0][level]


def _refused(args, out) -> str:
    result = runner.invoke(app, ["detect-eval", *args, "-o", str(out), *ARGS])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.count("error:") == 1
    assert not out.exists()  # nothing written
    return " ".join(result.output.split())


def test_bad_input_is_one_sentence(datasets, tmp_path):
    one, two = datasets
    out = tmp_path / "r"
    assert "cannot be mixed" in _refused(["--train", str(one), "--real", str(one), "--test", f"x={two}"], out)
    assert "cannot be mixed" in _refused(["--train", str(one), "--fake", str(two)], out)
    assert "not NAME=PATH" in _refused(["--train", str(one), "--test", str(two)], out)
    assert "empty name" in _refused(["--train", str(one), "--test", f"={two}"], out)
    assert "not NAME=PATH" in _refused(["--train", str(one), "--test", "other="], out)
    assert "twice" in _refused(["--train", str(one), "--test", f"a={two}", "--test", f"a={one}"], out)
    assert "does not exist" in _refused(["--train", str(one), "--test", f"a={tmp_path / 'nope.csv'}"], out)
    assert "needs detectors" in _refused(["--test", f"a={two}"], out)
    assert "--robustness" in _refused(["--train", str(one), "--test", f"a={two}", "--robustness"], out)
    videos = one.parent / "s0" / "videos"
    assert "carries no labels" in _refused(["--train", str(videos), "--test", f"a={two}"], out)
    reals = tmp_path / "reals.csv"
    reals.write_text(f"{videos / 'a.mp4'},real\n")
    assert "holds no fake video" in _refused(["--train", str(one), "--test", f"a={reals}"], out)
    assert "missing --fake" in _refused(["--real", str(videos / "a.mp4")], out)
