"""detect.export: ArrayRecord + TFDS metadata round trip, read back with array_record alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from detect import export
from detect.datasets import Dataset
from detect.sources import VideoItem
from dfjax.errors import UserError


def _dataset(n: int = 7, size: int = 24, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    videos = [VideoItem(Path("ffpp/original_sequences/youtube/c23/videos/004.mp4"), 0, "real", "004"),
              VideoItem(Path("ffpp/manipulated_sequences/FaceSwap/c23/videos/004_634.mp4"), 1, "FaceSwap", "004"),
              VideoItem(Path("dfdc/gone.mp4"), 1, "dfdc", "orig"),  # every frame without a face: no rows
              VideoItem(Path("dfdc/ünïcode vidéo.mp4"), 0, "real", "ü")]
    ids = np.array([0, 0, 1, 1, 1, 3, 3][:n], np.int32)
    return Dataset(crops=rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
                   landmarks=(rng.random((n, 68, 2)) * size).astype(np.float32),
                   labels=np.array([videos[i].label for i in ids], np.int32), video_ids=ids,
                   methods=np.array([videos[i].method for i in ids], str),
                   frames=np.array([0, 31, 0, 15, 2 ** 40, 7, 8][:n], np.int64), videos=videos,
                   missing={"dfdc/gone.mp4": [0, 5], "ffpp/original_sequences/youtube/c23/videos/004.mp4": [16]})


def _assert_same(a: Dataset, b: Dataset) -> None:
    for name in ("crops", "landmarks", "labels", "video_ids", "methods", "frames"):
        got, want = getattr(b, name), getattr(a, name)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert b.videos == a.videos and b.missing == a.missing


def test_example_wire_format_round_trip():
    features = {"b": [b"x", "y\u00e9"], "f": np.array([0.5, -1.25], np.float32), "i": [0, -3, 2 ** 62]}
    back = export.decode_example(export.encode_example(features))
    assert back["b"] == [b"x", "y\u00e9".encode()]
    np.testing.assert_array_equal(back["f"], features["f"])
    np.testing.assert_array_equal(back["i"], np.array(features["i"], np.int64))


def test_example_is_a_real_tf_train_example():
    """protobuf (when installed) parses our bytes with example.proto's schema, built here without TensorFlow."""
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(name="example_test.proto", package="tfx", syntax="proto3")
    f = descriptor_pb2.FieldDescriptorProto

    def message(name, fields, options=None):
        m = proto.message_type.add(name=name)
        for number, (field_name, kind, label, type_name) in enumerate(fields, start=1):
            m.field.add(name=field_name, number=number, type=kind, label=label, type_name=type_name)
        return m

    message("BytesList", [("value", f.TYPE_BYTES, f.LABEL_REPEATED, None)])
    message("FloatList", [("value", f.TYPE_FLOAT, f.LABEL_REPEATED, None)])
    message("Int64List", [("value", f.TYPE_INT64, f.LABEL_REPEATED, None)])
    feature = message("Feature", [("bytes_list", f.TYPE_MESSAGE, f.LABEL_OPTIONAL, ".tfx.BytesList"),
                                  ("float_list", f.TYPE_MESSAGE, f.LABEL_OPTIONAL, ".tfx.FloatList"),
                                  ("int64_list", f.TYPE_MESSAGE, f.LABEL_OPTIONAL, ".tfx.Int64List")])
    feature.oneof_decl.add(name="kind")
    for field in feature.field:
        field.oneof_index = 0
    features = message("Features", [("feature", f.TYPE_MESSAGE, f.LABEL_REPEATED, ".tfx.Features.FeatureEntry")])
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=f.TYPE_MESSAGE, label=f.LABEL_OPTIONAL, type_name=".tfx.Feature")
    message("Example", [("features", f.TYPE_MESSAGE, f.LABEL_OPTIONAL, ".tfx.Features")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    example = message_factory.GetMessageClass(pool.FindMessageTypeByName("tfx.Example"))()

    example.ParseFromString(export.encode_example({"image": b"\x89PNG", "label": [1], "frame": [-2],
                                                   "landmarks": np.array([1.5, 2.0], np.float32)}))
    got = example.features.feature
    assert got["image"].bytes_list.value == [b"\x89PNG"] and list(got["label"].int64_list.value) == [1]
    assert list(got["frame"].int64_list.value) == [-2] and list(got["landmarks"].float_list.value) == [1.5, 2.0]
    back = export.decode_example(example.SerializeToString())  # and we read protobuf's own bytes
    assert back["image"] == [b"\x89PNG"] and back["frame"].tolist() == [-2]


def test_export_round_trip_with_shards_and_two_splits(tmp_path):
    pytest.importorskip("array_record.python.array_record_module")
    train, test = _dataset(), _dataset(n=5, seed=1)
    out = tmp_path / "export"
    paths = export.export_dataset(train, out, "train", shard_size=3)
    assert [p.name for p in paths] == [f"dfjax_faces-train.array_record-0000{k}-of-00003" for k in range(3)]
    export.export_dataset(test, out, "test", shard_size=100)
    _assert_same(train, export.read_exported(out, "train"))
    _assert_same(test, export.read_exported(out, "test"))

    info = json.loads((out / "dataset_info.json").read_text())
    assert info["fileFormat"] == "array_record" and info["name"] == "dfjax_faces"
    assert {s["name"]: s["shardLengths"] for s in info["splits"]} == {"train": ["3", "3", "1"], "test": ["5"]}
    features = json.loads((out / "features.json").read_text())["featuresDict"]["features"]
    assert features["image"]["image"]["shape"]["dimensions"] == ["24", "24", "3"]
    assert (out / "label.labels.txt").read_text().split() == ["real", "fake"]

    export.export_dataset(_dataset(n=4, seed=2), out, "train", shard_size=10)  # replaces the split's shards
    assert sorted(p.name for p in out.glob("dfjax_faces-train.*")) == ["dfjax_faces-train.array_record-00000-of-00001"]
    assert len(export.read_exported(out, "train")) == 4 and len(export.read_exported(out, "test")) == 5
    assert not list(out.glob(".*partial*"))

    one = export.read_exported(paths[0].with_name("dfjax_faces-test.array_record-00000-of-00001"))
    np.testing.assert_array_equal(one.crops, test.crops)
    assert [v.path for v in one.videos] == [test.videos[i].path for i in (0, 1)]  # the videos its rows name

    with pytest.raises(UserError, match="no split 'val'"):
        export.read_exported(out, "val")
    with pytest.raises(UserError, match="another crop size"):
        export.export_dataset(_dataset(size=32), out, "val")


def test_missing_array_record_names_the_extra(monkeypatch, tmp_path):
    for name in ("array_record", "array_record.python", "array_record.python.array_record_module"):
        monkeypatch.setitem(sys.modules, name, None)  # the import fails as if not installed
    with pytest.raises(UserError, match=r"pip install dfjax\[tfds\]"):
        export.export_dataset(_dataset(), tmp_path, "train")
