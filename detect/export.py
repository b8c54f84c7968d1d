"""Export a detection `Dataset` as TFDS-style ArrayRecord files, and read it back without TensorFlow.

`out_dir` gets TFDS's layout for a dataset `name` (default "dfjax_faces", version 1.0.0), one call
per split (a later call adds or replaces its split, the others stay):

    {name}-{split}.array_record-00000-of-0000N   the split's records, `shard_size` per shard
    dataset_info.json    TFDS DatasetInfo: fileFormat array_record, each split's shard lengths
    features.json        TFDS FeaturesDict of the features below
    label.labels.txt     ClassLabel names: real, fake
    dfjax_export.json    per split: the video list (path, label, method, group) and the frames
                         without a face, so `read_exported` rebuilds the Dataset exactly

Each record is one crop as a serialized `tf.train.Example` (protocol buffers; encoded and parsed
by the few lines of wire format below, so neither TensorFlow nor protobuf is needed):

    image      bytes_list  PNG of the RGB crop (lossless)
    label      int64_list  0 real, 1 fake
    method     bytes_list  UTF-8, e.g. "real", "Deepfakes"
    video      bytes_list  UTF-8 path of the source video
    group      bytes_list  UTF-8 split group
    frame      int64_list  frame index in the video
    landmarks  float_list  136 values: the (68, 2) landmarks in crop pixels, row-major

which is how TFDS stores Image(png), ClassLabel, Text and Tensor features, so TFDS with TensorFlow
should also open the folder with `tfds.builder_from_directory` (not tested here: no TensorFlow).
Needs the `array_record` package: `pip install dfjax[tfds]`.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import cv2
import numpy as np

from detect.datasets import Dataset
from detect.sources import VideoItem
from dfjax.errors import UserError
from dfjax.io import partial_path, write_json, write_text

VERSION = "1.0.0"
TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
_TFDS = "tensorflow_datasets.core.features."
_INSTALL = "install the optional extra with `pip install dfjax[tfds]` (or `pip install array-record`)"


def _array_record():
    try:
        from array_record.python import array_record_module
    except ImportError:
        raise UserError(f"ArrayRecord export needs the array_record package, which is not installed; "
                        f"{_INSTALL}.") from None
    return array_record_module


# ---------------------------------------------------------------- tf.train.Example wire format


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 two's complement, as protobuf writes negative int64
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(value) -> bytes:
    """tf.train.Feature: bytes/str (lists) -> bytes_list, float arrays -> float_list, ints -> int64_list."""
    if isinstance(value, (bytes, str)):
        value = [value]
    if isinstance(value, list) and value and isinstance(value[0], (bytes, str)):
        return _field(1, b"".join(_field(1, v.encode() if isinstance(v, str) else v) for v in value))
    array = np.asarray(value).ravel()
    if array.dtype.kind == "f":
        return _field(2, _field(1, array.astype("<f4").tobytes()))
    return _field(3, _field(1, b"".join(_varint(int(v)) for v in array)))


def encode_example(features: dict) -> bytes:
    """A serialized tf.train.Example of `features` (name -> value, see `_feature`)."""
    entries = b"".join(_field(1, _field(1, key.encode()) + _field(2, _feature(value)))
                       for key, value in features.items())
    return _field(1, entries)


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return result, pos


def _fields(buf: memoryview):
    """(field number, wire type, value) of a protobuf message: int, or bytes for types 1, 2 and 5."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _signed(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


def _parse_feature(buf: memoryview):
    """A tf.train.Feature as a list of bytes, a float32 array or an int64 array."""
    for kind, _, values in _fields(buf):
        if kind == 1:
            return [bytes(v) for _, _, v in _fields(values)]
        if kind == 2:
            floats = [np.frombuffer(v, "<f4") if wire == 2 else np.frombuffer(v, "<f4", 1)
                      for _, wire, v in _fields(values)]
            return np.concatenate(floats).astype(np.float32) if floats else np.zeros(0, np.float32)
        if kind == 3:
            ints = []
            for _, wire, v in _fields(values):
                if wire == 0:
                    ints.append(_signed(v))
                else:  # packed
                    pos = 0
                    while pos < len(v):
                        n, pos = _read_varint(v, pos)
                        ints.append(_signed(n))
            return np.array(ints, np.int64)
    return []


def decode_example(data: bytes) -> dict:
    """The features of a serialized tf.train.Example (inverse of `encode_example`)."""
    out = {}
    for number, _, features in _fields(memoryview(data)):
        if number != 1:
            continue
        for entry_number, _, entry in _fields(features):
            if entry_number != 1:
                continue
            key, feature = b"", memoryview(b"")
            for n, _, v in _fields(entry):
                key, feature = (bytes(v), feature) if n == 1 else (key, v if n == 2 else feature)
            out[key.decode()] = _parse_feature(feature)
    return out


# ---------------------------------------------------------------- metadata files


def features_json(size: int) -> dict:
    """TFDS's features.json for crops of `size` pixels."""
    text = {"pythonClassName": _TFDS + "text_feature.Text", "text": {}}
    return {"pythonClassName": _TFDS + "features_dict.FeaturesDict", "featuresDict": {"features": {
        "image": {"pythonClassName": _TFDS + "image_feature.Image",
                  "image": {"shape": {"dimensions": [str(size), str(size), "3"]}, "dtype": "uint8",
                            "encodingFormat": "png"}},
        "label": {"pythonClassName": _TFDS + "class_label_feature.ClassLabel", "classLabel": {"numClasses": "2"}},
        "method": text, "video": text, "group": text,
        "frame": {"pythonClassName": _TFDS + "tensor_feature.Tensor",
                  "tensor": {"shape": {}, "dtype": "int64", "encoding": "none"}},
        "landmarks": {"pythonClassName": _TFDS + "tensor_feature.Tensor",
                      "tensor": {"shape": {"dimensions": ["68", "2"]}, "dtype": "float32", "encoding": "none"}},
    }}}


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except ValueError:
        raise UserError(f"{path} is not valid JSON; delete the export folder and export again.") from None


def shard_paths(out_dir: Path, name: str, split: str, shards: int) -> list[Path]:
    return [Path(out_dir) / f"{name}-{split}.array_record-{k:05d}-of-{shards:05d}" for k in range(shards)]


# ---------------------------------------------------------------- export and read back


def export_dataset(dataset: Dataset, out_dir: str | Path, split_name: str, *, name: str = "dfjax_faces",
                   shard_size: int = 10_000) -> list[Path]:
    """Write `dataset` as split `split_name` of a TFDS-style ArrayRecord dataset in `out_dir`; the shard paths."""
    module = _array_record()
    if not re.fullmatch(r"[A-Za-z0-9_]+", split_name) or not re.fullmatch(r"[a-z0-9_]+", name):
        raise UserError(f"split {split_name!r} / dataset name {name!r}: use letters, digits and _ only "
                        "(TFDS names); pick other names.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = int(dataset.crops.shape[1])
    features = features_json(size)
    old = _read_json(out / "features.json", None)
    if old is not None and old != features:
        raise UserError(f"{out / 'features.json'} describes other features (another crop size?) than these "
                        f"{size}px crops; export to a new folder.")
    n = len(dataset)
    paths = shard_paths(out, name, split_name, max(1, math.ceil(n / shard_size)))
    videos = [str(v.path) for v in dataset.videos]
    written = []
    for k, path in enumerate(paths):
        tmp = partial_path(path)  # ArrayRecordWriter wants a path: fill the hidden name, rename when all are done
        writer = module.ArrayRecordWriter(str(tmp), "group_size:1")
        for row in range(k * shard_size, min(n, (k + 1) * shard_size)):
            ok, png = cv2.imencode(".png", cv2.cvtColor(dataset.crops[row], cv2.COLOR_RGB2BGR))
            if not ok:
                raise RuntimeError(f"cv2 could not PNG-encode crop {row}")
            item = dataset.videos[int(dataset.video_ids[row])]
            writer.write(encode_example({
                "image": png.tobytes(), "label": [int(dataset.labels[row])], "method": str(dataset.methods[row]),
                "video": videos[int(dataset.video_ids[row])], "group": item.group,
                "frame": [int(dataset.frames[row])], "landmarks": np.asarray(dataset.landmarks[row], np.float32)}))
        writer.close()
        written.append(tmp)
    for stale in out.glob(f"{name}-{split_name}.array_record-*"):
        if stale not in paths:
            stale.unlink()
    for tmp, path in zip(written, paths):
        os.replace(tmp, path)

    counts = [min(n, (k + 1) * shard_size) - k * shard_size for k in range(len(paths))]
    split = {"name": split_name, "shardLengths": [str(c) for c in counts],
             "numBytes": str(sum(p.stat().st_size for p in paths)), "filepathTemplate": TEMPLATE}
    info = _read_json(out / "dataset_info.json", {})
    if info and info.get("name") != name:
        raise UserError(f"{out / 'dataset_info.json'} is dataset {info.get('name')!r}, not {name!r}; "
                        "export to a new folder or use that name.")
    info.update({"name": name, "version": VERSION, "fileFormat": "array_record",
                 "description": "Face crops of real and fake videos (dfjax detect): image, label (real/fake), "
                                "method, video, group, frame, 68 landmarks.",
                 "supervisedKeys": {"tuple": {"items": [{"featureKey": "image"}, {"featureKey": "label"}]}}})
    info["splits"] = [s for s in info.get("splits", []) if s["name"] != split_name] + [split]
    extra = _read_json(out / "dfjax_export.json", {"splits": {}})
    extra["splits"][split_name] = {
        "videos": [{"path": str(v.path), "label": v.label, "method": v.method, "group": v.group}
                   for v in dataset.videos],
        "missing": dataset.missing}
    write_json(out / "features.json", features)
    write_text(out / "label.labels.txt", "real\nfake\n")
    write_json(out / "dfjax_export.json", extra)
    write_json(out / "dataset_info.json", info)  # last: the split is complete
    return paths


def _records(files: list[Path]) -> list[bytes]:
    module = _array_record()
    records = []
    for path in files:
        if not path.is_file():
            raise UserError(f"{path} is missing from the export; export that split again.")
        reader = module.ArrayRecordReader(str(path))
        records += reader.read_all()
        reader.close()
    return records


def read_exported(path: str | Path, split: str | None = None) -> Dataset:
    """The Dataset an export folder holds for `split` (may be left out when there is one), or one shard file's rows.

    Reads with array_record's reader and the decoder above only.
    """
    path = Path(path)
    meta = None
    if path.is_dir():
        info = _read_json(path / "dataset_info.json", None)
        if info is None:
            raise UserError(f"{path} has no dataset_info.json; point at a folder written by export_dataset.")
        splits = {s["name"]: s for s in info.get("splits", [])}
        if split is None and len(splits) == 1:
            split = next(iter(splits))
        if split not in splits:
            raise UserError(f"{path} has no split {split!r} (it has {', '.join(splits) or 'none'}); name one of those.")
        files = shard_paths(path, info["name"], split, len(splits[split]["shardLengths"]))
        meta = _read_json(path / "dfjax_export.json", {"splits": {}})["splits"].get(split)
    elif path.is_file():
        files = [path]
    else:
        raise UserError(f"{path} does not exist; check the path.")
    rows = [decode_example(r) for r in _records(files)]
    if meta is not None:
        videos = [VideoItem(Path(v["path"]), v["label"], v["method"], v["group"]) for v in meta["videos"]]
    else:  # one shard on its own: the videos its rows name, in order of appearance
        first = {}
        for row in rows:
            first.setdefault(row["video"][0].decode(), row)
        videos = [VideoItem(Path(p), int(r["label"][0]), r["method"][0].decode(), r["group"][0].decode())
                  for p, r in first.items()]
    index = {str(v.path): i for i, v in enumerate(videos)}
    crops = [cv2.cvtColor(cv2.imdecode(np.frombuffer(r["image"][0], np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
             for r in rows]
    features = _read_json((path if path.is_dir() else path.parent) / "features.json", None)
    size = int(features["featuresDict"]["features"]["image"]["image"]["shape"]["dimensions"][0]) if features \
        else (crops[0].shape[0] if crops else 0)
    return Dataset(crops=np.array(crops, np.uint8).reshape(len(rows), size, size, 3),
                   landmarks=np.array([r["landmarks"] for r in rows], np.float32).reshape(len(rows), 68, 2),
                   labels=np.array([r["label"][0] for r in rows], np.int32),
                   video_ids=np.array([index[r["video"][0].decode()] for r in rows], np.int32),
                   methods=np.array([r["method"][0].decode() for r in rows], str),
                   frames=np.array([r["frame"][0] for r in rows], np.int64),
                   videos=videos, missing=dict(meta["missing"]) if meta else {})
