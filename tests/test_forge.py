"""`dfjax forge`: a labelled, identity-split deepfake dataset from a `dfjax synth` folder, resumable."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dfjax import media
from dfjax.cli import app

runner = CliRunner()
TINY = ["--config", "forge.py:tiny", "--set", "model.steps=4", "--set", "model.batch=4", "--quiet"]


def x264_options(video) -> str:
    """The settings x264 wrote into `video`'s stream (its SEI: "... options: cabac=1 ref=3 ... subme=7 ...")."""
    import av

    with av.open(str(video)) as container:
        for packet in container.demux(video=0):
            data = bytes(packet)
            if b"options: " in data:
                return data.split(b"options: ", 1)[1].split(b"\x00", 1)[0].decode("ascii", "replace")
    raise AssertionError(f"{video} has no x264 settings")


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    out = tmp_path_factory.mktemp("forge") / "people"
    result = runner.invoke(app, ["synth", "-o", str(out), "--identities", "4", "--frames", "12", "--size", "128",
                                 "--face-size", "64", "--quiet"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def dataset(people):
    out = people.parent / "dataset"
    result = runner.invoke(app, ["forge", str(people), "-o", str(out), *TINY, "--set", "fakes.compressions=c23",
                                 "--set", "fakes.preset=veryfast"])
    assert result.exit_code == 0, result.output
    return out


def test_tree_manifest_and_splits(dataset, people):
    rows = list(csv.DictReader((dataset / "manifest.csv").open()))
    assert [r["label"] for r in rows].count("0") == 4 and [r["label"] for r in rows].count("1") == 4
    splits = {r["source"]: r["split"] for r in rows}
    assert sorted(splits.values()) == ["test", "test", "train", "train"]  # people, not videos, are split
    for r in rows:
        assert (dataset / r["path"]).is_file()
        if r["label"] == "1":  # swapped into another person of the same split, never across splits
            assert splits[r["target"]] == r["split"] and r["target"] != r["source"]
            assert r["path"].startswith("manipulated_sequences/DFJaxAE/raw/videos/")
            fake = dataset / r["path"]
            masks = np.stack([m for _, m in media.iter_frames(fake.with_suffix(".masks.mkv"), gray=True)])
            source = np.stack([f for _, f in media.iter_frames(people / "videos" / f"{r['source']}.mp4")])
            assert masks.shape[0] == source.shape[0] and (masks > 0).mean() > 0.02  # a face's worth of pixels
            assert (dataset / "manipulated_sequences/DFJaxAE/masks/videos" / f"{fake.stem}.mkv").is_file()
            assert media.container_metadata(fake)["dfjax_synthetic"] == "true"
        else:
            assert r["path"].startswith("original_sequences/dfjax/raw/videos/")
    for split in ("train", "test"):  # each split alone too
        alone = list(csv.DictReader((dataset / f"manifest-{split}.csv").open()))
        assert alone == [r for r in rows if r["split"] == split]
    assert not (dataset / "manifest-val.csv").exists()
    summary = json.loads((dataset / "forge.json").read_text())
    assert summary["counts"]["test"] == {"real": 2, "fake": 2}
    assert {s: len(m["identities"]) for s, m in summary["models"].items()} == {"DFJaxAE/train": 2, "DFJaxAE/test": 2}
    assert summary["fake_frames"] == 4 * 12
    assert set(summary["cpu_seconds"]) == set(summary["seconds"]) and summary["cpu_seconds"]["models"] > 0


def test_compressed_copies_have_every_frame_the_tags_and_their_own_manifests(dataset):
    raw = list(csv.DictReader((dataset / "manifest.csv").open()))
    c23 = list(csv.DictReader((dataset / "manifest-c23.csv").open()))
    assert [r["path"].replace("/c23/", "/raw/") for r in c23] == [r["path"] for r in raw]
    assert list(csv.DictReader((dataset / "manifest-c23-test.csv").open())) == [r for r in c23 if r["split"] == "test"]
    for row in c23:
        copy, original = dataset / row["path"], dataset / row["path"].replace("/c23/", "/raw/")
        a = np.stack([f for _, f in media.iter_frames(copy)]).astype(np.float64)
        b = np.stack([f for _, f in media.iter_frames(original)]).astype(np.float64)
        assert a.shape == b.shape
        psnr = 10 * np.log10(255 ** 2 / np.mean((a - b) ** 2))
        assert 25 < psnr < 60, psnr  # re-encoded at CRF 23: close, not identical
        if row["label"] == "1":
            assert media.container_metadata(copy)["dfjax_synthetic"] == "true"
        # fakes.preset=veryfast reached x264 for the copies (real and fake) and the fakes: subme 2, not medium's 7
        assert " subme=2 " in x264_options(copy)
        if row["label"] == "1":
            assert " subme=2 " in x264_options(original)
    assert json.loads((dataset / "forge.json").read_text())["compressions"] == ["raw", "c23"]


@pytest.mark.slow
@pytest.mark.ci
def test_every_method_in_two_jobs(people, tmp_path):
    """The four generators (swap, conditioned swap, FOMM, reenactor) in two processes at once: each fake
    comes with masks where its method changed pixels, from a model trained on its split's people only."""
    out = tmp_path / "all"
    steps = [f"--set={m}.{k}={v}" for m in ("model", "dvp", "fomm", "reenact") for k, v in (("steps", 4), ("batch", 4))]
    result = runner.invoke(app, ["forge", str(people), "-o", str(out), "--config", "forge.py:tiny,all", *steps,
                                 "--set", "fakes.compressions=c40", "--set", "fakes.preset=veryfast", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert "round 1: 2 jobs" in result.output
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    methods = {"DFJaxAE", "DFJaxDVP", "DFJaxFOMM", "DFJaxDVPR"}
    assert {r["method"] for r in rows if r["label"] == "1"} == methods
    summary = json.loads((out / "forge.json").read_text())
    assert summary["fakes_per_method"] == dict.fromkeys(methods, 4)
    splits = {r["source"]: r["split"] for r in rows}
    for r in (r for r in rows if r["label"] == "1"):
        fake = out / r["path"]
        frames = np.stack([f for _, f in media.iter_frames(fake)])
        masks = np.stack([m for _, m in media.iter_frames(fake.with_suffix(".masks.mkv"), gray=True)])
        assert len(frames) == len(masks) == 12 and 0.02 < (masks > 0).mean() < 0.9
        sidecar = json.loads(fake.with_suffix(".json").read_text())
        assert all(f["manipulated"] for f in sidecar["frames"])
        model = sidecar["model"]["workdir"]  # that split's model (the reenactor: the target's own)
        assert f"/{r['method']}/{splits[r['source']]}" in model and splits[r["target"]] == r["split"]
        if r["method"] == "DFJaxDVPR":
            assert model.endswith(f"/{r['target']}")
        assert (out / r["path"].replace("/raw/", "/c40/")).is_file()
        assert " subme=2 " in x264_options(fake)  # fakes.preset=veryfast, whichever method made it
    # FOMM and the reenactor show the target's frame: its first pixels are the target's still, not the source's
    fomm = next(r for r in rows if r["method"] == "DFJaxFOMM")
    still = media.read_image(out / "forge" / "stills" / f"{fomm['target']}.png")
    first = next(f for _, f in media.iter_frames(out / fomm["path"]))
    assert np.abs(first[:8, :8].astype(int) - still[:8, :8]).mean() < 12


def test_a_second_call_redoes_nothing_and_detect_reads_the_manifest(dataset, people):
    from detect.sources import read_csv

    stamps = {p: p.stat().st_mtime_ns for p in dataset.rglob("*.mp4")}
    result = runner.invoke(app, ["forge", str(people), "-o", str(dataset), *TINY])
    assert result.exit_code == 0, result.output
    assert {p: p.stat().st_mtime_ns for p in dataset.rglob("*.mp4")} == stamps
    items = read_csv(dataset / "manifest.csv")
    assert {(i.label, i.method) for i in items} == {(0, "real"), (1, "DFJaxAE")}
    assert all(i.frames for i in items if i.label == 1)  # the sidecars' manipulated frames


def test_a_stopped_fake_is_made_again_and_the_manifest_stays_consistent(dataset, people):
    rows = list(csv.DictReader((dataset / "manifest.csv").open()))
    fake = dataset / next(r["path"] for r in rows if r["label"] == "1")
    for path in (fake, fake.with_suffix(".json"), fake.with_suffix(".masks.mkv")):
        path.unlink()
    result = runner.invoke(app, ["forge", str(people), "-o", str(dataset), *TINY])
    assert result.exit_code == 0, result.output
    assert fake.is_file() and fake.with_suffix(".json").is_file()
    assert list(csv.DictReader((dataset / "manifest.csv").open())) == rows


def test_shards_split_the_work_and_a_last_call_writes_the_same_manifest(people, dataset, tmp_path):
    out = tmp_path / "sharded"
    first = runner.invoke(app, ["forge", str(people), "-o", str(out), *TINY, "--shard", "0/2"])
    assert first.exit_code == 0 and "did its part" in first.output, first.output
    assert not (out / "manifest.csv").exists()  # shard 1's models and fakes are missing
    assert (out / "forge" / "models" / "DFJaxAE" / "train" / "forge_done.json").exists()  # shard 0 trained split 0
    assert not (out / "forge" / "models" / "DFJaxAE" / "test").exists()
    for spec in ("1/2", "0/2"):
        result = runner.invoke(app, ["forge", str(people), "-o", str(out), *TINY, "--shard", spec])
        assert result.exit_code == 0, result.output
    assert (out / "manifest.csv").read_text() == (dataset / "manifest.csv").read_text()


@pytest.mark.parametrize("case, words", [
    ("bad_shard", "--shard '3/2' is not I/N"),
    ("jobs_and_shard", "--jobs 2 is impossible with --shard"),
    ("unknown_method", "names DFJaxXY; choose from"),
    ("bad_compression", "c99 is not one of c23, c40"),
    ("bad_preset", "fakes.preset 'placebo' is unknown"),
    ("one_person", "videos of 1 person"),
    ("split_one", "split.test=1 is impossible"),
    ("too_few_left", "leave 0 for training"),
    ("other_input", "was forged from other input"),
])
def test_bad_input_exits_2_with_one_line(case, words, people, dataset, tmp_path):
    out, args = tmp_path / "ds", []
    source = people
    if case == "one_person":
        source = tmp_path / "footage"
        (source / "solo").mkdir(parents=True)
        (source / "solo" / "clip.mp4").write_bytes((people / "videos" / "a.mp4").read_bytes())
    elif case == "bad_shard":
        args = ["--shard", "3/2"]
    elif case == "jobs_and_shard":
        args = ["--shard", "0/2", "--jobs", "2"]
    elif case == "unknown_method":
        args = ["--set", "methods=DFJaxAE,DFJaxXY"]
    elif case == "bad_compression":
        args = ["--set", "fakes.compressions=c99"]
    elif case == "bad_preset":
        args = ["--set", "fakes.preset=placebo"]
    elif case == "split_one":
        args = ["--set", "split.test=1"]
    elif case == "too_few_left":
        args = ["--set", "split.test=2", "--set", "split.val=2"]
    else:
        out, args = dataset, ["--set", "seed=5"]
    before = sorted(p.relative_to(out) for p in out.rglob("*")) if out.exists() else None
    result = runner.invoke(app, ["forge", str(source), "-o", str(out), *TINY, *args])
    assert result.exit_code == 2 and words in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert (sorted(p.relative_to(out) for p in out.rglob("*")) if out.exists() else None) == before
