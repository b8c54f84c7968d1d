"""Which videos a detection run uses, with their labels, methods and groups.

Inputs, each given with `--real` or `--fake` (repeatable):

* a video file or a folder of videos (searched recursively): labelled by the option it came with;
* a dfjax fake (a video with its JSON sidecar): fake, method "dfjax" (a swap), "dfjax-fomm" (animate) or
  "dfjax-reenact"; its frames are sampled
  only among those the sidecar marks manipulated (a frame the swap found no face in is a real frame,
  and labelling it fake would put real frames in the fake class);
* **labelled sources**, which carry their own labels:
  - a labels CSV `path,label[,method,group]` (header optional, paths relative to the CSV);
  - a FaceForensics++ root (`original_sequences/<youtube|actors>/<compression>/videos/*.mp4`,
    `manipulated_sequences/<method>/<compression>/videos/*.mp4`), or any folder inside one
    (`manipulated_sequences/Deepfakes` gives only that method's fakes). Mask videos are skipped, and
    one compression (raw, c23 or c40) is used for the whole root: the one asked for, else c23 when
    there is any, else c40, else raw; mixing compressions would let a detector learn the compression;
  - a DFDC folder with its `metadata.json` (or a folder of such parts, `dfdc_train_part_*`).

A labelled source is labelled by its layout whichever option it is passed with, so a FaceForensics++
root or a DFDC folder holding both classes needs passing only once (and passing it as both `--real`
and `--fake` is the same as passing it once). It must hold at least one video of the option's class:
`--real ffpp/manipulated_sequences/Deepfakes` is refused rather than silently treated as fake.

Groups (the unit of splitting, so one source never lands in two splits) default to the video's
stem, except:

* FaceForensics++ `004_634` -> `004`: the fake is 004's video (background, body, head motion) with
  634's face. Grouping it with its target keeps the frames a detector could memorise in one split;
  634's face may still be seen in another split, which can only make the test harder (a detector
  that memorised 634's real face would call this fake real), never easier. The real 004 and 634
  stay separate groups. DeepFakeDetection's actors: `01__scene` and `01_02__scene__X` -> `actor01`;
* DFDC: a fake goes with its `original` (the real video it was made from);
* dfjax synthetic `a_as_b_truth` -> `a` (its frames are a's); dfjax swap outputs -> the stem of
  the sidecar's `source`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from dfjax import media
from dfjax.errors import UserError

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
FFPP_CLASSES = {"original_sequences": 0, "manipulated_sequences": 1}
FFPP_COMPRESSIONS = ("c23", "c40", "raw")  # preference order when none is asked for
_LABELS = {"0": 0, "1": 1, "real": 0, "fake": 1}
_CLASS = ("real", "fake")


@dataclass(frozen=True)
class VideoItem:
    path: Path
    label: int   # 0 real, 1 fake
    method: str  # "real", "dfjax", "Deepfakes", "dfdc", ...
    group: str   # source/identity id; a group never spans two splits
    frames: tuple[int, ...] | None = None  # the frames sampling may pick (a dfjax swap's manipulated ones); None: all


def default_group(path: Path) -> str:
    """The group of a video from its name (see the module docstring)."""
    stem = Path(path).stem
    if m := re.fullmatch(r"(\d+)_\d+", stem):
        return m.group(1)
    if m := re.fullmatch(r"(.+?)_as_.+_truth", stem):
        return m.group(1)
    return stem


def ffpp_group(path: Path) -> str:
    """The group of a FaceForensics++ video: the target sequence, or `actorNN` for DeepFakeDetection."""
    stem = Path(path).stem
    if m := re.fullmatch(r"(\d+)(?:_\d+)?__.+", stem):
        return f"actor{m.group(1)}"
    return default_group(path)


def _sidecar(video: Path) -> dict | None:
    """The dfjax swap sidecar beside `video`, or None when there is none."""
    try:
        data = json.loads(video.with_suffix(".json").read_text())
    except (OSError, ValueError):  # no sidecar, or not JSON
        return None
    return data if isinstance(data, dict) and "source" in data and "frames" in data else None


SIDECAR_METHODS = {"swap": "dfjax", "animate": "dfjax-fomm", "reenact": "dfjax-reenact"}  # a dfjax fake's method


def _video_item(path: Path, label: int) -> VideoItem:
    side = _sidecar(path)
    if side is not None:
        if label == 0:
            raise UserError(f"{path} is a dfjax swap output (sidecar {path.with_suffix('.json')}); "
                            "pass it as a fake video, not a real one.")
        manipulated = tuple(int(r["index"]) for r in side["frames"] if r.get("manipulated"))
        if not manipulated:
            raise UserError(f"{path} is a dfjax swap output whose sidecar marks no frame as swapped, so it holds no "
                            "fake frame; leave it out, or swap again with --detector hog,cnn.")
        method = SIDECAR_METHODS.get(side.get("mode", "swap"), "dfjax")  # a swap has no mode
        person = side["target"]["source"] if side.get("mode") == "reenact" else side["source"]  # whose frame it is
        return VideoItem(path, 1, method, default_group(Path(person)), manipulated)
    method = "real" if label == 0 else next((p for p in path.parts if p in FFPP_METHODS), "fake")
    if label == 1 and re.fullmatch(r".+_as_.+_truth", path.stem):  # `dfjax synth`'s exact swap renders
        method = "exact-swap"
    return VideoItem(path, label, method, default_group(path))


def _refuse_missing(label_file: Path, missing: list[tuple[Path, str]], fix: str) -> None:
    """One sentence naming the label file, the first missing video and how many are missing."""
    if missing:
        first, where = missing[0]
        raise UserError(f"{label_file} names {len(missing)} video{'s' if len(missing) > 1 else ''} that "
                        f"do{'es' if len(missing) == 1 else ''} not exist, the first {first}{where}; {fix}")


CSV_COLUMNS = ("path", "label", "method", "group")
CSV_EXTRA = ("source", "target", "split")  # `dfjax forge` manifests: source is the group


def read_csv(path: Path) -> list[VideoItem]:
    """The rows of a labels CSV `path,label[,method,group]`; with a header line, columns by name, where
    a `dfjax forge` manifest's `source` (the person whose video it is) is the group."""
    items, missing = [], []
    try:
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                        "save it as UTF-8 (e.g. iconv -f latin1 -t utf-8) and pass it again.") from None
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror}); check the path and its permissions.") from None
    columns = list(CSV_COLUMNS)
    if rows and rows[0] and rows[0][0].strip().lower() == "path":
        columns = [c.strip().lower() for c in rows[0]]
        unknown = [c for c in columns if c not in CSV_COLUMNS + CSV_EXTRA]
        if unknown or "label" not in columns:
            raise UserError(f"{path}'s header names {', '.join(unknown) or 'no label column'}; columns are "
                            f"{', '.join(CSV_COLUMNS + CSV_EXTRA)} (path and label required).")
        rows = rows[1:]
    for line, row in enumerate(rows, start=1 if columns == list(CSV_COLUMNS) else 2):
        row = [c.strip() for c in row]
        if not any(row) or row[0].startswith("#"):
            continue
        cell = dict(zip(columns, row))
        if len(row) < 2 or len(row) > len(columns) or cell.get("label", "").lower() not in _LABELS:
            raise UserError(f"{path} line {line} is not `path,label[,method,group]` with label 0/1 "
                            f"or real/fake (got {','.join(row)!r}); fix that row.")
        video = Path(row[0]) if Path(row[0]).is_absolute() else path.parent / row[0]
        if not video.is_file():
            missing.append((video, f" (line {line})"))
            continue
        label = _LABELS[cell["label"].lower()]
        base = _video_item(video, label)
        method = cell.get("method") or base.method
        group = cell.get("group") or cell.get("source") or base.group
        items.append(VideoItem(video, label, method, group, base.frames))
    _refuse_missing(path, missing, "fix those paths (relative to the CSV's folder) or remove their rows.")
    return items


# ---------------------------------------------------------------- FaceForensics++


def ffpp_root(entry: Path) -> Path | None:
    """The FaceForensics++ root that `entry` is or lies inside, or None."""
    entry = Path(entry)
    if entry.is_dir() and any((entry / name).is_dir() for name in FFPP_CLASSES):
        return entry
    parts = entry.absolute().parts
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] in FFPP_CLASSES:
            return Path(*parts[:i])
    return None


def _ffpp_videos(root: Path) -> dict[str, list[tuple[Path, int, str]]]:
    """compression -> [(video, label, method)] over the whole root; mask videos are not listed."""
    found: dict[str, list[tuple[Path, int, str]]] = {}
    for class_dir, label in FFPP_CLASSES.items():
        base = root / class_dir
        for sub in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
            method = "real" if label == 0 else sub.name
            for compression in FFPP_COMPRESSIONS:
                folder = sub / compression / "videos"
                videos = sorted(p for p in folder.glob("*") if p.is_file() and media.is_video(p))
                found.setdefault(compression, []).extend((v, label, method) for v in videos)
    return {c: v for c, v in found.items() if v}


def read_ffpp(entry: Path, compression: str | None = None) -> list[VideoItem]:
    """The videos of a FaceForensics++ root, or of the part of one under `entry`, at one compression."""
    entry = Path(entry)
    root = ffpp_root(entry)
    if root is None:
        raise UserError(f"{entry} is not a FaceForensics++ folder (no original_sequences or "
                        "manipulated_sequences in it or above it); pass the dataset's root folder.")
    found = _ffpp_videos(root)
    if compression is None:
        compression = next((c for c in FFPP_COMPRESSIONS if c in found), None)
    if compression not in found:
        have = ", ".join(c for c in FFPP_COMPRESSIONS if c in found) or "none"
        raise UserError(f"{root} has no FaceForensics++ videos at compression {compression} (found: {have}) "
                        "under <sequences>/<name>/<compression>/videos/; pick one of those compressions "
                        "or check the download.")
    inside = entry.absolute()
    items = [VideoItem(path, label, method, ffpp_group(path)) for path, label, method in found[compression]
             if inside == path.absolute() or inside in path.absolute().parents]
    if not items:
        raise UserError(f"{entry} holds no {compression} videos of the FaceForensics++ root {root}; "
                        "point at the root or a sequences folder inside it.")
    return items


# ---------------------------------------------------------------- DFDC


def _load_dfdc(meta: Path) -> dict | None:
    """A DFDC metadata.json as a dict, or None when the file is not one."""
    try:
        data = json.loads(Path(meta).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and any(isinstance(v, dict) and "label" in v for v in data.values()):
        return data
    return None


def dfdc_parts(entry: Path) -> list[Path]:
    """The DFDC metadata.json files `entry` names: itself, the one in it, or those of its part folders."""
    entry = Path(entry)
    if entry.is_file():
        return [entry] if entry.suffix.lower() == ".json" and _load_dfdc(entry) is not None else []
    if _load_dfdc(entry / "metadata.json") is not None:
        return [entry / "metadata.json"]
    if not entry.is_dir():
        return []
    return [p / "metadata.json" for p in sorted(entry.iterdir())
            if p.is_dir() and _load_dfdc(p / "metadata.json") is not None]


def read_dfdc(meta: Path) -> list[VideoItem]:
    """The videos a DFDC metadata.json lists, fakes grouped with their original; method "dfdc"."""
    meta = Path(meta)
    data = _load_dfdc(meta)
    if data is None:
        raise UserError(f"{meta} is not a DFDC metadata.json ({{\"x.mp4\": {{\"label\": \"FAKE\", "
                        "\"original\": \"y.mp4\"}}, ...}); pass the folder that holds the dataset's own file.")
    items, missing = [], []
    for name, entry in data.items():
        label = str(entry.get("label", "")).upper() if isinstance(entry, dict) else ""
        if label not in ("REAL", "FAKE"):
            raise UserError(f"{meta} entry {name!r} has no label REAL or FAKE (got {entry!r}); fix that entry.")
        video = meta.parent / name
        if not video.is_file():
            missing.append((video, ""))
            continue
        original = entry.get("original") if label == "FAKE" else None
        group = Path(original).stem if original else video.stem
        items.append(VideoItem(video, int(label == "FAKE"), "dfdc" if label == "FAKE" else "real", group))
    _refuse_missing(meta, missing, "download the missing videos into that folder or remove their entries.")
    return items


# ---------------------------------------------------------------- everything together


def _labelled(entry: Path, compression: str | None) -> tuple[str, list[VideoItem]] | None:
    """(what it is, its items) when `entry` is a labelled source, else None."""
    if entry.is_file() and entry.suffix.lower() == ".csv":
        return "labels CSV", read_csv(entry)
    if ffpp_root(entry) is not None:
        return "FaceForensics++ folder", read_ffpp(entry, compression)
    if parts := dfdc_parts(entry):
        return "DFDC folder", [item for meta in parts for item in read_dfdc(meta)]
    return None


def collect(real: list[Path], fake: list[Path], compression: str | None = None) -> list[VideoItem]:
    """Every labelled video named by `real` and `fake` (see the module docstring). Duplicates are kept once.

    compression: the FaceForensics++ compression to use (raw, c23, c40); None picks c23 when present.
    """
    items: list[VideoItem] = []
    for label, entries in ((0, real), (1, fake)):
        for entry in entries:
            entry = Path(entry)
            if not entry.exists():
                raise UserError(f"{entry} does not exist; check the path.")
            if (labelled := _labelled(entry, compression)) is not None:
                kind, found = labelled
                if not any(item.label == label for item in found):
                    option, other = ("--real", "--fake") if label == 0 else ("--fake", "--real")
                    raise UserError(f"{entry} is a {kind} holding only {_CLASS[1 - label]} videos, labelled by "
                                    f"its layout; pass it with {other}, not {option}.")
                items += found
            elif entry.is_dir():
                videos = sorted(p for p in entry.rglob("*") if p.is_file() and media.is_video(p))
                if not videos:
                    raise UserError(f"{entry} contains no videos; point at a folder of videos.")
                nested = next((p for p in videos if FFPP_CLASSES.keys() & set(p.relative_to(entry).parts)), None)
                if nested is not None:
                    raise UserError(f"{entry} holds a FaceForensics++ tree ({ffpp_root(nested)}); pass that root "
                                    "itself, so labels come from its layout and mask videos are left out.")
                items += [_video_item(p, label) for p in videos]
            elif media.is_video(entry):
                items.append(_video_item(entry, label))
            else:
                raise UserError(f"{entry} is neither a video, a folder of videos, a labels CSV, a FaceForensics++ "
                                "folder nor a DFDC folder with metadata.json; pass one of those.")
    unique: dict[Path, VideoItem] = {}
    for item in items:
        unique.setdefault(item.path.resolve(), item)
    return list(unique.values())


def collect_labelled(entries: list[Path], option: str, compression: str | None = None) -> list[VideoItem]:
    """Every video of the labelled sources `entries` (labels CSVs, FaceForensics++ roots or folders inside
    one, DFDC folders), which carry their own labels: the datasets of `--train` and `--test NAME=PATH`.

    option: how the entries were given, e.g. "--train" or "--test celebdf=", for the one-sentence errors.
    Duplicates are kept once; a bare video or folder of videos has no labels and is refused.
    """
    items: list[VideoItem] = []
    for entry in entries:
        entry = Path(entry)
        if not entry.exists():
            raise UserError(f"{option}{entry} does not exist; check the path.")
        labelled = _labelled(entry, compression)
        if labelled is None:
            raise UserError(f"{option}{entry} carries no labels (it is not a labels CSV, a FaceForensics++ folder "
                            "nor a DFDC folder with metadata.json); list its videos in a CSV "
                            "`path,label[,method,group]` and pass that.")
        items += labelled[1]
    unique: dict[Path, VideoItem] = {}
    for item in items:
        unique.setdefault(item.path.resolve(), item)
    return list(unique.values())
