"""detect.datasets on a tiny synthetic set: collecting, cropping, missing faces, splitting, caching."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from detect import datasets
from detect.datasets import VideoItem
from dfjax import media
from dfjax.data.synthetic import synthesize
from dfjax.errors import UserError
from dfjax.faces.detect import face_detector_choices


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synthesize(out, frames=12, size=192, face_size=64)
    return out / "videos"


def test_collect_files_and_folders(synth):
    items = datasets.collect([synth / "a.mp4", synth / "b.mp4"], sorted(synth.glob("*_truth.mp4")))
    by_name = {it.path.name: it for it in items}
    assert by_name["a.mp4"] == VideoItem(synth / "a.mp4", 0, "real", "a")
    assert by_name["a_as_b_truth.mp4"].label == 1 and by_name["a_as_b_truth.mp4"].group == "a"
    assert by_name["b_as_a_truth.mp4"].group == "b"
    assert len(datasets.collect([], [synth])) == 4  # a folder: every video, labelled fake


def test_collect_sidecar_csv_and_errors(synth, tmp_path):
    out = tmp_path / "swap.mp4"
    out.write_bytes((synth / "a_as_b_truth.mp4").read_bytes())
    # the swap found no face in frames 8-11 and passed them through: they are real frames
    records = [{"index": i, "manipulated": i < 8, "faces": []} for i in range(12)]
    out.with_suffix(".json").write_text(json.dumps({"source": str(synth / "a.mp4"), "frames": records}))
    (item,) = datasets.collect([], [out])
    assert (item.label, item.method, item.group) == (1, "dfjax", "a")
    assert item.frames == tuple(range(8))
    sampled = datasets.extract_crops(item, k=4, size=64)
    assert sorted(sampled.frames.tolist() + sampled.missing_frames.tolist()) == [0, 2, 5, 7]  # never 8-11
    with pytest.raises(UserError, match="swap.mp4"):
        datasets.collect([out], [])
    untouched = tmp_path / "untouched.mp4"
    untouched.write_bytes(out.read_bytes())
    untouched.with_suffix(".json").write_text(json.dumps({"source": str(synth / "a.mp4"), "frames": records[8:]}))
    with pytest.raises(UserError, match="untouched.mp4 .* no frame as swapped"):
        datasets.collect([], [untouched])
    assert datasets.default_group(Path("x/004_634.mp4")) == "004"

    good = tmp_path / "labels.csv"
    good.write_text(f"path,label,method,group\n{synth / 'a.mp4'},0\n{synth / 'b_as_a_truth.mp4'},fake,Faceswap,b\n")
    items = datasets.collect([], [good])
    assert [(i.label, i.method, i.group) for i in items] == [(0, "real", "a"), (1, "Faceswap", "b")]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{synth / 'a.mp4'},0\n{synth / 'b.mp4'},maybe\n")
    with pytest.raises(UserError, match=r"bad\.csv line 2"):
        datasets.collect([bad], [])
    with pytest.raises(UserError, match="does not exist"):
        datasets.collect([tmp_path / "nope.mp4"], [])


def test_sample_frames():
    assert datasets.sample_frames(100, 5).tolist() == [0, 25, 50, 74, 99]
    assert datasets.sample_frames(3, 32).tolist() == [0, 1, 2]
    assert len(datasets.sample_frames(0, 8)) == 0


def test_extract_crops_and_missing(synth, tmp_path):
    k, size = 6, 96
    result = datasets.extract_crops(VideoItem(synth / "a.mp4", 0, "real", "a"), k=k, size=size)
    assert len(result.frames) + result.missing == k
    assert len(result.frames) >= 1  # dlib finds the synthetic face "a"
    assert result.crops.shape == (len(result.frames), size, size, 3) and result.crops.dtype == np.uint8
    assert result.landmarks.shape == (len(result.frames), 68, 2)
    assert (result.landmarks > 0).all() and (result.landmarks < size).all()  # face inside its crop
    assert sorted(result.frames.tolist() + result.missing_frames.tolist()) == \
        datasets.sample_frames(12, k).tolist()

    blank = tmp_path / "blank.mp4"
    with media.VideoWriter(blank, 25, 128, 128) as writer:
        for _ in range(8):
            writer.write(np.full((128, 128, 3), 90, np.uint8))
    empty = datasets.extract_crops(blank, k=4, size=size)
    assert empty.missing == 4 and empty.crops.shape == (0, size, size, 3)
    assert empty.missing_frames.tolist() == [0, 2, 5, 7]
    with pytest.raises(UserError, match="no faces found"):
        datasets.build_dataset([VideoItem(blank, 0, "real", "blank")], k=4, size=size, cache_dir=tmp_path / "c")


def test_crop_face_pads_at_border():
    frame = np.full((50, 50, 3), 255, np.uint8)
    lm = np.tile(np.array([[5.0, 5.0]], np.float32), (68, 1))
    crop, points = datasets.crop_face(frame, [0, 0, 20, 20], lm, size=52, scale=1.3)
    assert crop.shape == (52, 52, 3) and crop[0, 0].sum() == 0 and crop[-1, -1].sum() == 255 * 3
    np.testing.assert_allclose(points[0], (5 + 3) * 52 / 26, atol=1e-4)


def test_split_by_group():
    items = [VideoItem(Path(f"{g}_{i}.mp4"), label, "real" if label == 0 else "fake", f"g{g}")
             for g in range(20) for i, label in enumerate((0, 1, 1))]
    items += [VideoItem(Path(f"solo{g}.mp4"), 0, "real", f"solo{g}") for g in range(5)]
    for seed in range(5):
        splits = datasets.split_by_group(items, val=0.15, test=0.15, seed=seed)
        groups = {s: {it.group for it in v} for s, v in splits.items()}
        assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"] \
            and not groups["val"] & groups["test"]
        assert sum(len(v) for v in splits.values()) == len(items)
        for split in splits.values():
            assert {it.label for it in split} == {0, 1}
        assert len(splits["train"]) > len(splits["val"]) and len(splits["train"]) > len(splits["test"])


def test_build_dataset_cache(synth, tmp_path):
    items = datasets.collect([synth / "a.mp4", synth / "b.mp4"], [synth / "a_as_b_truth.mp4"])
    started = time.perf_counter()
    first = datasets.build_dataset(items, k=4, size=64, cache_dir=tmp_path / "cache")
    cold = time.perf_counter() - started
    started = time.perf_counter()
    second = datasets.build_dataset(items, k=4, size=64, cache_dir=tmp_path / "cache")
    warm = time.perf_counter() - started
    assert warm < cold
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 3
    for name in ("crops", "landmarks", "labels", "video_ids", "methods", "frames"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert first.missing == second.missing
    assert len(first) == first.crops.shape[0] and first.crops.shape[1:] == (64, 64, 3)
    assert set(first.labels.tolist()) <= {0, 1} and set(first.methods.tolist()) <= {"real", "exact-swap"}
    for vid, item in enumerate(items):  # every sampled frame is a crop or listed as missing
        assert (first.video_ids == vid).sum() + len(first.missing.get(str(item.path), [])) == 4


def test_face_detector_hog_cnn_finds_at_least_hog():
    from tests.conftest import shared

    clip = shared("hamilton_clip.mp4")  # 640x360, faces in profile: HOG misses some frames
    hog = datasets.extract_crops(clip, k=4, size=64, face_detector="hog")
    both = datasets.extract_crops(clip, k=4, size=64, face_detector="hog,cnn")
    assert len(both.frames) >= len(hog.frames) and set(hog.frames.tolist()) <= set(both.frames.tolist())
    assert len(both.frames) + both.missing == len(hog.frames) + hog.missing == 4


def test_face_detector_unknown_and_cache_paths(tmp_path):
    blank = tmp_path / "blank.mp4"
    with media.VideoWriter(blank, 25, 64, 64) as writer:
        for _ in range(4):
            writer.write(np.full((64, 64, 3), 90, np.uint8))
    item = VideoItem(blank, 0, "real", "blank")
    for call in (lambda: datasets.build_dataset([item], k=2, size=32, face_detector="mtcnn"),
                 lambda: datasets.extract_crops(item, k=2, size=32, face_detector="HOG")):
        with pytest.raises(UserError, match="choose hog, cnn or hog,cnn"):
            call()
    paths = {choice: datasets._cache_path(tmp_path, blank, 2, 32, 1.3, choice) for choice in face_detector_choices()}
    assert len(set(paths.values())) == 3
    for choice in ("hog", "hog,cnn"):  # a stub detector that finds nothing: each choice caches its own file
        with pytest.raises(UserError, match="no faces found"):
            datasets.build_dataset([item], k=2, size=32, cache_dir=tmp_path, face_detector=choice,
                                   detector=lambda frame, upsample=0: [])
        assert paths[choice].is_file()
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == sorted(p.name for p in (paths["hog"], paths["hog,cnn"]))
