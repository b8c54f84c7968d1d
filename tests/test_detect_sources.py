"""detect.sources on tiny FaceForensics++ and DFDC folder trees: labels, methods, groups, splits, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from detect import sources
from detect.datasets import split_by_group
from dfjax import media
from dfjax.cli import app
from dfjax.errors import UserError

YOUTUBE = [f"{i:03d}" for i in range(8)]
PAIRS = [(YOUTUBE[i], YOUTUBE[i ^ 1]) for i in range(8)]  # FF++ pairs both ways: 000_001 and 001_000


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """One tiny H.264 clip; the trees below hold copies of it (readers never decode)."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    with media.VideoWriter(path, 25, 32, 32, preset="ultrafast") as writer:
        for i in range(2):
            writer.write(np.full((32, 32, 3), 60 * i, np.uint8))
    return path


def _put(clip: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(clip, path)


@pytest.fixture(scope="module")
def ffpp(tmp_path_factory, clip) -> Path:
    root = tmp_path_factory.mktemp("ffpp") / "FaceForensics"
    for name in YOUTUBE:
        for compression in ("c23", "c40"):
            _put(clip, root / f"original_sequences/youtube/{compression}/videos/{name}.mp4")
    for actor in ("01", "02"):
        _put(clip, root / f"original_sequences/actors/c23/videos/{actor}__walking.mp4")
    for method in ("Deepfakes", "FaceSwap"):
        for target, source in PAIRS:
            _put(clip, root / f"manipulated_sequences/{method}/c23/videos/{target}_{source}.mp4")
            _put(clip, root / f"manipulated_sequences/{method}/masks/videos/{target}_{source}.mp4")
    _put(clip, root / "manipulated_sequences/Deepfakes/c40/videos/000_001.mp4")
    _put(clip, root / "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__walking__ABCD1234.mp4")
    return root


def test_ffpp_labels_methods_groups(ffpp):
    items = sources.read_ffpp(ffpp)
    by_name = {(it.method, it.path.name): it for it in items}
    assert len(items) == 8 + 2 + 2 * 8 + 1  # c23 only, no mask videos
    assert all("/c23/" in str(it.path) for it in items)
    real = by_name[("real", "004.mp4")]
    assert (real.label, real.group) == (0, "004")
    fake = by_name[("FaceSwap", "004_005.mp4")]
    assert (fake.label, fake.group) == (1, "004")  # 005's face in 004's video: grouped with its target
    assert by_name[("FaceSwap", "005_004.mp4")].group == "005"
    assert by_name[("real", "01__walking.mp4")].group == "actor01"
    dfd = by_name[("DeepFakeDetection", "01_02__walking__ABCD1234.mp4")]
    assert (dfd.label, dfd.group) == (1, "actor01")
    assert {it.method for it in items} == {"real", "Deepfakes", "FaceSwap", "DeepFakeDetection"}

    c40 = sources.read_ffpp(ffpp, "c40")
    assert sorted(it.path.name for it in c40 if it.label) == ["000_001.mp4"] and len(c40) == 9
    with pytest.raises(UserError, match=r"compression raw \(found: c23, c40\)"):
        sources.read_ffpp(ffpp, "raw")


def test_ffpp_root_passed_once_or_twice_or_in_parts(ffpp):
    once = sources.collect([ffpp], [])
    twice = sources.collect([ffpp], [ffpp])
    assert once == twice and {it.label for it in once} == {0, 1}
    assert sources.collect([], [ffpp]) == once  # labelled by its layout, whichever option
    parts = sources.collect([ffpp / "original_sequences"], [ffpp / "manipulated_sequences" / "Deepfakes"])
    assert {(it.label, it.method) for it in parts} == {(0, "real"), (1, "Deepfakes")}
    assert len(parts) == 10 + 8
    with pytest.raises(UserError, match=r"holding only fake videos.*pass it with --fake, not --real"):
        sources.collect([ffpp / "manipulated_sequences" / "FaceSwap"], [])
    with pytest.raises(UserError, match="no c40 videos"):
        sources.collect([], [ffpp / "manipulated_sequences" / "FaceSwap"], compression="c40")
    with pytest.raises(UserError, match=r"holds a FaceForensics\+\+ tree .*pass that root itself"):
        sources.collect([ffpp.parent], [])  # a plain folder above the root would label masks and fakes real


def test_ffpp_split_keeps_every_group_in_one_split(ffpp):
    items = sources.read_ffpp(ffpp)
    for seed in range(4):
        splits = split_by_group(items, seed=seed)
        where = {}
        for split, members in splits.items():
            for item in members:
                assert where.setdefault(item.group, split) == split, item
        assert sum(map(len, splits.values())) == len(items)
        for item in splits["test"]:  # a test fake's target video is a test video too
            if item.label == 1 and item.method != "DeepFakeDetection":
                assert where[item.path.stem.split("_")[0]] == "test"


def _dfdc(root: Path, clip: Path, originals: int = 4, missing: int = 0) -> Path:
    meta = {}
    for i in range(originals):
        meta[f"orig{i}.mp4"] = {"label": "REAL", "split": "train", "original": None}
        meta[f"fake{i}a.mp4"] = {"label": "FAKE", "split": "train", "original": f"orig{i}.mp4"}
        meta[f"fake{i}b.mp4"] = {"label": "FAKE", "split": "train", "original": f"orig{i}.mp4"}
    names = sorted(meta)
    for name in names[missing:]:
        _put(clip, root / name)
    root.mkdir(parents=True, exist_ok=True)
    (root / "metadata.json").write_text(json.dumps(meta))
    return root


def test_dfdc_labels_groups_and_parts(tmp_path, clip):
    part = _dfdc(tmp_path / "dfdc" / "dfdc_train_part_0", clip)
    items = sources.collect([part], [])
    by_name = {it.path.name: it for it in items}
    assert len(items) == 12
    assert (by_name["orig1.mp4"].label, by_name["orig1.mp4"].method, by_name["orig1.mp4"].group) == (0, "real", "orig1")
    assert (by_name["fake1b.mp4"].label, by_name["fake1b.mp4"].method, by_name["fake1b.mp4"].group) == (1, "dfdc", "orig1")
    _dfdc(tmp_path / "dfdc" / "dfdc_train_part_1", clip, originals=2)
    both = sources.collect([], [tmp_path / "dfdc"])  # a folder of parts
    assert len(both) == 18
    assert sources.collect([part / "metadata.json"], []) == items  # the file itself
    splits = split_by_group(items, seed=0)
    groups = [{it.group for it in s} for s in splits.values()]
    assert sum(map(len, groups)) == len(set().union(*groups)) == 4


def test_labelled_sources_with_missing_videos_name_the_file_the_first_and_the_count(tmp_path, clip):
    part = _dfdc(tmp_path / "part", clip, originals=2, missing=3)
    with pytest.raises(UserError) as err:
        sources.collect([part], [])
    message = str(err.value)
    assert str(part / "metadata.json") in message and "names 3 videos that do not exist" in message
    assert str(part / "fake0a.mp4") in message

    _put(clip, tmp_path / "here.mp4")
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nhere.mp4,real\ngone1.mp4,fake\nhere.mp4,fake\ngone2.mp4,fake\n")
    with pytest.raises(UserError, match=r"labels\.csv names 2 videos that do not exist, the first "
                                        r".*gone1\.mp4 \(line 3\)"):
        sources.collect([labels], [])
    only_fake = tmp_path / "fakes.csv"
    only_fake.write_text("here.mp4,fake\n")
    with pytest.raises(UserError, match="holding only fake videos"):
        sources.collect([only_fake], [])


def test_cli_exits_2_with_one_sentence(tmp_path, clip):
    runner = CliRunner()
    part = _dfdc(tmp_path / "part", clip, originals=2, missing=1)
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nnowhere.mp4,real\n")
    for labels, expected in ((part, "metadata.json names 1 video that does not exist"),
                             (bad, "bad.csv names 1 video that does not exist")):
        result = runner.invoke(app, ["detect-eval", "--real", str(labels), "--fake", str(labels),
                                     "-o", str(tmp_path / "report"), "--quiet"])
        assert result.exit_code == 2, result.output
        assert expected in result.output and "Traceback" not in result.output
