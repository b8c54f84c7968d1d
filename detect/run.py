"""`dfjax detect-eval` and the demo's detection step: datasets -> detectors -> report.

Videos are split into train/val/test by source identity before any frame is read, so no identity is
in two splits; each detector is trained on train (val for model selection only) for every seed, or
loaded from a checkpoint, then scored on test, per method, across methods, under perturbations and
on re-encoded copies of the test videos. Every sampled frame without a face is counted in the report.

The cross-dataset protocol (DeepfakeBench's headline table; `--train PATH... --test NAME=PATH...`):
the labelled training data is split by identity into train and val only, each detector is trained
on train (val for model selection only, as above) or loaded from a checkpoint, and scored on every
test set whole, never split; the report's table has frame AUC, video AUC, AP and EER per detector
and test set, beside the validation figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detect import protocol
from detect.datasets import Dataset, build_dataset, check_face_detector, collect, split_by_group
from detect.sources import VideoItem, collect_labelled
from detect.evaluate import aggregate
from detect.report import write_report
from detect.registry import DETECTORS
from dfjax.errors import UserError
from dfjax.faces.detect import DEFAULT_FACE_DETECTOR
from dfjax.io import check_writable

COMPRESSIONS = ("raw", "c23", "c40")
MIN_CROP = 16  # face crops smaller than this hold too little of a face to score
CROSS_VAL_SHARE = 0.15  # of the --train data's identities, held out for model selection and the val figures


# ---------------------------------------------------------------- configs


def config_detector(config) -> str | None:
    """The registry name a detector config is for (`detector`, else `model.arch` as in configs/detect_*.py)."""
    if config.get("detector"):
        return config.detector
    model = config.get("model")
    return model.get("arch") if model is not None else None


def run_label(name: str, config=None) -> str:
    """How a detector run is named in the report: its registry name, + "-sbi" when trained with SBI
    (+ "-sbi+fakes" when the given fakes stay in the pool beside the self-blended ones)."""
    if config is None or not config.get("sbi"):
        return name
    return f"{name}-sbi+fakes" if config.get("sbi_mix") else f"{name}-sbi"


def resolve_detectors(detectors: list[str], config_specs: list[str], overrides: list[str]) -> dict[str, tuple]:
    """{label: (registry name, ConfigDict or None)}: the --detector names (default spectral and dct, or
    the configs' detectors), each with its --config (and --set overrides) when one was given."""
    from dfjax.config import apply_overrides, load_config

    for name in detectors:
        DETECTORS.get(name, option="--detector")  # an unknown name: a UserError naming the registered ones
    if overrides and not config_specs:
        raise UserError("--set changes a detector config, but no --config was given; add --config "
                        "configs/detect_NAME.py.")
    configured = {}
    for spec in config_specs:
        config = load_config(spec)
        name = config_detector(config)
        if name not in DETECTORS:
            raise UserError(f"config {spec} names no known detector ({name!r}); pass one of configs/detect_*.py.")
        if detectors and name not in detectors:
            raise UserError(f"config {spec} is for the {name} detector, not {', '.join(detectors)}; "
                            f"add --detector {name} or pass that detector's config.")
        config = apply_overrides(config, list(overrides))
        configured[run_label(name, config)] = (name, config)
    names = list(dict.fromkeys(detectors or [name for name, _ in configured.values()] or ["spectral", "dct"]))
    specs = {}
    for name in names:
        mine = {label: spec for label, spec in configured.items() if spec[0] == name}
        specs.update(mine or {name: (name, None)})
    return specs


def parse_compression(text: str | None) -> list[str]:
    """'raw,c23,c40' -> ['raw', 'c23', 'c40']; unknown levels are a UserError."""
    levels = [c.strip() for c in (text or "").split(",") if c.strip()]
    bad = [c for c in levels if c not in COMPRESSIONS]
    if bad:
        raise UserError(f"--compression {','.join(bad)} is not one of {', '.join(COMPRESSIONS)}; "
                        "write e.g. --compression raw,c23,c40.")
    return levels


# ---------------------------------------------------------------- datasets


def dataset_counts(ds: Dataset) -> dict:
    """Videos, frames and faces of one split, for the report's dataset table."""
    labels = np.asarray(ds.labels)
    missing = sum(len(v) for v in ds.missing.values())
    with_face = set(np.asarray(ds.video_ids).tolist())
    methods = protocol.fake_methods(ds)
    return {"videos": len(ds.videos), "real_videos": sum(v.label == 0 for v in ds.videos),
            "fake_videos": sum(v.label == 1 for v in ds.videos), "frames": len(ds),
            "real_frames": int(np.sum(labels == 0)), "fake_frames": int(np.sum(labels == 1)),
            "frames_sampled": len(ds) + missing, "frames_without_face": missing,
            "videos_without_face": sum(i not in with_face for i in range(len(ds.videos))),
            "fake_methods": {m: int(np.sum((labels == 1) & (np.asarray(ds.methods) == m))) for m in methods},
            "missing": ds.missing}


def _frame_counts(ds: Dataset) -> dict:
    """dataset_counts without the frames-without-a-face fields, for a split cut from one Dataset's rows."""
    skip = ("frames_sampled", "frames_without_face", "missing")
    return {k: v for k, v in dataset_counts(ds).items() if k not in skip}


def _check_classes(name: str, ds: Dataset, what: str | None = None) -> None:
    """A UserError when `ds` lacks real or fake frames; `what` names it (default "the NAME split")."""
    counts = np.bincount(np.asarray(ds.labels, np.int64), minlength=2) if len(ds) else np.zeros(2, int)
    for label, kind in ((0, "real"), (1, "fake")):
        if not counts[label]:
            lost = sum(len(ds.missing.get(str(it.path), [])) for it in ds.videos if it.label == label)
            raise UserError(f"{what or f'the {name} split'} has no {kind} frame with a face ({lost} sampled {kind} "
                            f"frames had none); give {kind} videos of more identities with visible frontal faces.")


def build_splits(real: list[Path], fake: list[Path], cache: Path, *, frames: int, size: int, split_seed: int,
                 progress=None, face_detector: str = DEFAULT_FACE_DETECTOR) -> tuple[dict, dict[str, Dataset]]:
    """The identity-disjoint split's video lists and face-crop datasets (train and test must hold both classes)."""
    items = collect(real, fake)
    splits = split_by_group(items, seed=split_seed)
    if not splits["train"] or not splits["test"]:
        raise UserError(f"{len(items)} videos are too few to split by identity into train and test; "
                        "add videos of more identities.")
    data = {name: build_dataset(split, frames, size, cache, progress=progress, face_detector=face_detector)
            for name, split in splits.items() if split}
    for name in ("train", "test"):
        _check_classes(name, data[name])
    return splits, data


# ---------------------------------------------------------------- the protocol


def _run_entries(trained: dict, summaries: dict) -> dict:
    return {name: _entry(trained[name], summaries[name]) for name in trained}


def check_protocol(real: list, fake: list, train: list, tests: list, checkpoint, robustness: bool,
                   compression: str | None) -> bool:
    """Which protocol the options ask for: True for cross-dataset (--train/--test), False for one dataset
    split by identity (--real/--fake); a UserError for a mix of the two or a half-given one."""
    if train and (real or fake):
        raise UserError("--train (cross-dataset: train on one dataset, score on others) and --real/--fake (one "
                        "dataset split by identity) cannot be mixed; pass the training data with --train only (a "
                        "labels CSV, FaceForensics++ root or DFDC folder) and the data to score with --test NAME=PATH.")
    if tests and (real or fake):
        raise UserError("--test scores detectors trained on --train data (or loaded with --checkpoint), not on "
                        "--real/--fake; pass the training data with --train instead.")
    if not (train or tests):
        if not real or not fake:
            missing = "--fake" if real else "--real"
            raise UserError(f"missing {missing}: give --real and --fake videos (one dataset, split by identity), or "
                            "--train PATH and --test NAME=PATH (trained on one dataset, scored on others).")
        return False
    if not train and checkpoint is None:
        raise UserError("--test needs detectors to score: train them on --train PATH, or load them with "
                        "--checkpoint DIR.")
    if robustness or compression:
        raise UserError("--robustness and --compression score the one-dataset protocol's test split, not --test "
                        "sets; leave them out, or pass re-encoded copies as a --test set of their own.")
    return True


def parse_tests(specs: list[str]) -> dict[str, Path]:
    """["celebdf=/data/celebdf.csv", ...] -> {"celebdf": Path(...)}: --test NAME=PATH, names unique, paths present."""
    tests: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = str(spec).partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not path:
            raise UserError(f"--test {spec!r} is not NAME=PATH; write e.g. --test celebdf=/data/celebdf/labels.csv.")
        if not name:
            raise UserError(f"--test {spec!r} has an empty name; write NAME=PATH, e.g. --test celebdf={path}.")
        if name in tests:
            raise UserError(f"--test names the test set {name!r} twice ({tests[name]} and {path}); give each test "
                            "set its own name.")
        if not Path(path).exists():
            raise UserError(f"--test {name}={path} does not exist; check the path.")
        tests[name] = Path(path)
    return tests


def detect_eval(real: list[Path], fake: list[Path], detectors: list[str], output: Path, *,
                train: list[Path] = (), tests: list[str] = (),
                configs: list[str] = (), overrides: list[str] = (), checkpoint: Path | None = None,
                seeds: int = 1, robustness: bool = False, compression: str | None = None, frames: int = 32,
                size: int = 256, split_seed: int = 0, face_detector: str = DEFAULT_FACE_DETECTOR, progress=None) -> dict:
    """Train (or load) detectors, score them on the test split and write the report to `output`.

    real, fake: the one-dataset protocol's videos, split by identity into train/val/test.
    train, tests: the cross-dataset protocol instead (see :func:`cross_eval`): labelled datasets to train
    on, and "NAME=PATH" test sets, each scored whole. The two cannot be mixed.
    face_detector: the face detector of the crops, "hog" (DeepfakeBench's), "cnn" or "hog,cnn".

    Returns the report dict (see detect/report.py); trained detectors are saved under
    `output`/checkpoints/<label>/seed_<k>, which `checkpoint` accepts in a later run.
    """
    output = Path(output)
    for value, low, name in ((frames, 1, "--frames"), (size, MIN_CROP, "--size"), (split_seed, 0, "--split-seed"),
                             (seeds, 1, "--seeds")):
        if value < low:
            raise UserError(f"{name} {value} is out of range; give {low} or more.")
    real, fake, train, tests = list(real or []), list(fake or []), list(train or []), list(tests or [])
    cross = check_protocol(real, fake, train, tests, checkpoint, robustness, compression)
    test_paths = parse_tests(tests)
    check_writable(output, folder=True)
    specs = resolve_detectors(list(detectors), list(configs), list(overrides))
    levels = parse_compression(compression)
    check_face_detector(face_detector)
    if cross:
        return cross_eval(train, test_paths, specs, output, checkpoint=checkpoint, seeds=seeds, frames=frames,
                          size=size, split_seed=split_seed, face_detector=face_detector, progress=progress)
    if checkpoint is not None:
        trained = protocol.load_all(list(specs), Path(checkpoint))  # before the slow dataset build
    cache = output / "cache"
    splits, data = build_splits(real, fake, cache, frames=frames, size=size, split_seed=split_seed, progress=progress,
                                face_detector=face_detector)
    train, val, test = data["train"], data.get("val"), data["test"]
    notes = []
    if checkpoint is None:
        trained = protocol.train_all(specs, train, val, list(range(seeds)), output / "checkpoints", progress)
    else:
        notes.append(f"Detectors loaded from {checkpoint}, not trained; the cross-method matrix needs training "
                     "and was skipped.")
    summaries = {label: protocol.score_runs(runs, test) for label, runs in trained.items()}
    report = {"settings": {"real": [str(p) for p in real], "fake": [str(p) for p in fake],
                           "detectors": {label: name for label, (name, _) in specs.items()},
                           "configs": {label: c.to_dict() for label, (_, c) in specs.items() if c is not None},
                           "frames": frames, "size": size, "face_detector": face_detector, "split_seed": split_seed,
                           "seeds": sorted({t.seed for runs in trained.values() for t in runs}),
                           "checkpoint": str(checkpoint) if checkpoint else None},
              "dataset": {name: dataset_counts(ds) for name, ds in data.items()},
              "detectors": _run_entries(trained, summaries)}
    if checkpoint is None:
        report["cross_method"] = protocol.cross_method(specs, train, val, test, list(range(seeds)), progress)
        if not report["cross_method"]:
            notes.append("No cross-method matrix: it needs fakes of at least two methods in both train and test.")
    if robustness:
        from detect import variants

        report["robustness"] = protocol.robustness(trained, test, variants.PERTURBATIONS, variants.apply,
                                                   progress=progress)
    if levels:
        report["compression"] = _compression(trained, splits["test"], levels, report, cache, frames, size, progress,
                                             face_detector)
    report["notes"] = notes
    write_report(report, output)
    return report


def _compression(trained: dict, test_items: list, levels: list[str], report: dict, cache: Path, frames: int,
                 size: int, progress, face_detector: str = DEFAULT_FACE_DETECTOR) -> dict:
    """Frame and video metrics of the trained detectors on re-encoded copies of the test videos."""
    from detect.variants import variant_items

    out = {name: {} for name in trained}
    for level in levels:
        if level == "raw":
            for name, entry in report["detectors"].items():
                out[name]["raw"] = {k: v for k, v in entry["mean"].items() if k in ("frame", "video")}
            continue
        ds = build_dataset(variant_items(test_items, level, cache, progress), frames, size, cache, progress=progress,
                           face_detector=face_detector)
        _check_classes(f"test@{level}", ds)
        report["dataset"][f"test@{level}"] = dataset_counts(ds)
        for name, metrics in protocol.score_variant(trained, ds).items():
            out[name][level] = metrics
    return out


# ---------------------------------------------------------------- the cross-dataset protocol


def _check_items(items: list[VideoItem], what: str) -> None:
    """A UserError when the labelled videos `items` lack one class (AUC needs both), before any frame is read."""
    for label, kind in ((0, "real"), (1, "fake")):
        if not any(it.label == label for it in items):
            raise UserError(f"{what} holds no {kind} video ({len(items)} videos, all {('fake', 'real')[label]}); "
                            f"AUC and EER need both classes, so add {kind} videos to it.")


def _entry(runs: list, summaries: list[dict]) -> dict:
    """{"mean": mean ± std over seeds, "seeds": per seed with its training time and checkpoint}."""
    return {"mean": aggregate(summaries),
            "seeds": [{"seed": t.seed, "train_seconds": t.train_seconds, "checkpoint": t.checkpoint, **s}
                      for t, s in zip(runs, summaries)]}


def cross_eval(train: list[Path], tests: dict[str, Path], specs: dict[str, tuple], output: Path, *,
               checkpoint: Path | None = None, seeds: int = 1, frames: int = 32, size: int = 256, split_seed: int = 0,
               face_detector: str = DEFAULT_FACE_DETECTOR, progress=None) -> dict:
    """The cross-dataset protocol: train on one dataset, score on others, as DeepfakeBench's cross-dataset table.

    train: labelled sources (labels CSVs, FaceForensics++ roots, DFDC folders), split by identity into
    train and val only (CROSS_VAL_SHARE of the identities to val); each detector is trained on train with
    val for model selection only, for every seed, and saved as in :func:`detect_eval`, or loaded from
    `checkpoint` (then `train` may be empty: only the test sets are scored). tests: {name: labelled
    source}, each scored whole. Writes the report to `output` and returns it; its "cross_dataset" holds
    {label: {"val": entry (when train was given), "test": {name: entry}}}, entry = {"mean", "seeds"}.
    """
    output = Path(output)
    train_items = collect_labelled(train, "--train ") if train else []
    if train:
        _check_items(train_items, f"the --train data ({', '.join(map(str, train))})")
    test_items = {}
    for name, path in tests.items():
        test_items[name] = collect_labelled([path], f"--test {name}=")
        _check_items(test_items[name], f"--test {name}={path}")
    splits: dict[str, list[VideoItem]] = {}
    if train:
        parts = split_by_group(train_items, val=CROSS_VAL_SHARE, test=0.0, seed=split_seed)
        if not parts["train"] or not parts["val"]:
            groups = len({it.group for it in train_items})
            raise UserError(f"the --train data's {len(train_items)} videos of {groups} identities are too few to "
                            "split by identity into train and val; add videos of more identities.")
        splits = {"train": parts["train"], "val": parts["val"]}
    if checkpoint is not None:
        trained = protocol.load_all(list(specs), Path(checkpoint))  # before the slow dataset build
    cache = output / "cache"
    data = {name: build_dataset(items, frames, size, cache, progress=progress, face_detector=face_detector)
            for name, items in splits.items()}
    if "train" in data:
        _check_classes("train", data["train"])
    test_data = {}
    for name, items in test_items.items():  # every crop is built before any training, so a bad set fails early
        test_data[name] = build_dataset(items, frames, size, cache, progress=progress, face_detector=face_detector)
        _check_classes(name, test_data[name], what=f"--test {name}")
    notes = []
    val = data.get("val")
    val_ok = val is not None and len(set(np.asarray(val.labels).tolist())) == 2
    if val is not None and not val_ok:
        notes.append("The val split of the --train data lacks real or fake frames with a face, so no model was "
                     "selected on it and there are no validation figures; give --train data of more identities.")
    if checkpoint is None:
        trained = protocol.train_all(specs, data["train"], val if val_ok else None, list(range(seeds)),
                                     output / "checkpoints", progress)
    else:
        notes.append(f"Detectors loaded from {checkpoint}, not trained."
                     + ("" if train else " Without --train, there are no validation figures and the test sets "
                                         "were not checked for videos the detectors were trained on."))
    table: dict[str, dict] = {label: {} for label in trained}
    for label, runs in trained.items():
        if val_ok:
            table[label]["val"] = _entry(runs, protocol.score_runs(runs, val))
        table[label]["test"] = {name: _entry(runs, protocol.score_runs(runs, ds)) for name, ds in test_data.items()}
    seen = {it.path.resolve() for items in splits.values() for it in items}
    dataset = {name: dataset_counts(ds) for name, ds in data.items()}
    for name, ds in test_data.items():
        dataset[f"test:{name}"] = dataset_counts(ds)
        if seen:
            shared = sum(it.path.resolve() in seen for it in test_items[name])
            dataset[f"test:{name}"]["videos_in_training_data"] = shared
            if shared:
                notes.append(f"Test set {name}: {shared} of {len(test_items[name])} videos are also in the --train "
                             "data (its train or val split), so its figures are not held-out ones.")
    if not tests:
        notes.append("No --test set was given: only the validation figures; score test sets later with "
                     f"--checkpoint {output / 'checkpoints'} --test NAME=PATH.")
    how = ("The --train data is split by source identity into train and val (no identity in both; val for model "
           "selection only); every --test set is scored whole." if train else
           "No --train data: the detectors were loaded from a checkpoint; every --test set is scored whole.")
    report = {"settings": {"protocol": "cross-dataset", "train": [str(p) for p in train],
                           "test": {name: str(path) for name, path in tests.items()}, "split": how,
                           "detectors": {label: name for label, (name, _) in specs.items()},
                           "configs": {label: c.to_dict() for label, (_, c) in specs.items() if c is not None},
                           "frames": frames, "size": size, "face_detector": face_detector, "split_seed": split_seed,
                           "val_share": CROSS_VAL_SHARE,
                           "seeds": sorted({t.seed for runs in trained.values() for t in runs}),
                           "checkpoint": str(checkpoint) if checkpoint else None},
              "dataset": dataset, "cross_dataset": table, "notes": notes}
    write_report(report, output)
    return report


# ---------------------------------------------------------------- the demo's detection step


DEMO_FRAMES, DEMO_SIZE = 40, 64
DEMO_FACE_DETECTOR = "hog,cnn"  # HOG alone misses most frames of the dark, flat-shaded identity B


def temporal_split(ds: Dataset, cuts=(0.55, 0.6, 0.75, 0.8)) -> dict[str, Dataset]:
    """Each video's sampled frames split in time: the first 55 % train, 60-75 % val, the last 20 % test.

    The gaps keep neighbouring frames out of two splits. For one identity pair, where no identity-disjoint
    split exists; it shows that a detector learns the fakes, not that it generalises to new people.
    """
    position = np.zeros(len(ds))
    for vid in np.unique(ds.video_ids):
        rows = np.flatnonzero(ds.video_ids == vid)
        order = rows[np.argsort(ds.frames[rows])]
        position[order] = np.arange(len(rows)) / max(len(rows) - 1, 1)
    train_end, val_start, val_end, test_start = cuts
    parts = {"train": position < train_end, "val": (position >= val_start) & (position < val_end),
             "test": position >= test_start}
    return {name: protocol.subset(ds, keep) for name, keep in parts.items()}


def demo_specs() -> dict[str, tuple]:
    """Every registered detector (with its configs/detect_NAME.py at `tiny` where it has one), and the first
    whose config has `sbi` once more with SBI."""
    from dfjax.config import config_dir, load_config

    specs, sbi_added = {}, False
    for name in DETECTORS.names():
        path = config_dir() / f"detect_{name}.py"
        if not path.is_file():
            specs[name] = (name, None)
            continue
        specs[name] = (name, load_config(f"{path}:tiny"))
        if not sbi_added and "sbi" in specs[name][1]:
            specs[f"{name}-sbi"] = (name, load_config(f"{path}:tiny,sbi"))
            sbi_added = True
    return specs


DEMO_CROSS_METHOD = ("dct", "meso4")  # the demo's cross-method matrix: two quick detectors, one per family


def demo_detect(real_videos: list[Path], fake_videos: list[Path], output: Path, progress=None) -> dict:
    """The demo's detection step: every registered detector trained and scored on the demo's own videos, and
    the DEMO_CROSS_METHOD detectors trained on each method's fakes alone and scored on every method's.

    real_videos / fake_videos: the synthetic real clips and the fakes (ground-truth swap, dfjax swap).
    Takes DEMO_FRAMES frames per video at DEMO_SIZE px (faces found with DEMO_FACE_DETECTOR), splits each video in time (:func:`temporal_split`),
    trains each detector once (seed 0; CNNs with their tiny configs) and writes the usual report to
    `output`. Returns {"report": path, "split": ..., "frames": {split: {"real", "fake"}},
    "detectors": {label: {"frame_auc", "video_auc", "train_seconds"}}}.
    """
    output = Path(output)
    items = collect(list(real_videos), list(fake_videos))
    everything = build_dataset(items, DEMO_FRAMES, DEMO_SIZE, output / "cache", progress=progress,
                               face_detector=DEMO_FACE_DETECTOR)
    data = temporal_split(everything)
    for name in ("train", "test"):
        _check_classes(name, data[name])
    specs = demo_specs()
    trained = protocol.train_all(specs, data["train"], data["val"], [0], output / "checkpoints", progress)
    summaries = {label: protocol.score_runs(runs, data["test"]) for label, runs in trained.items()}
    cross = protocol.cross_method({k: v for k, v in specs.items() if k in DEMO_CROSS_METHOD}, data["train"], data["val"],
                                  data["test"], [0], progress)
    split = "in time within each video (first 55 % train, 60-75 % val, last 20 % test): one identity pair"
    report = {"settings": {"real": [str(p) for p in real_videos], "fake": [str(p) for p in fake_videos],
                           "detectors": {label: name for label, (name, _) in specs.items()},
                           "configs": {label: c.to_dict() for label, (_, c) in specs.items() if c is not None},
                           "frames": DEMO_FRAMES, "size": DEMO_SIZE, "face_detector": DEMO_FACE_DETECTOR,
                           "seeds": [0], "split": split},
              "dataset": {"all": dataset_counts(everything), **{name: _frame_counts(ds) for name, ds in data.items()}},
              "detectors": _run_entries(trained, summaries), "cross_method": cross,
              "notes": [f"Split {split}, so no identity-disjoint test: the scores show the detectors learn these "
                        "fakes, not that they generalise to new people."]}
    paths = write_report(report, output)
    return {"report": str(paths["md"]), "split": split,
            "frames": {name: {"real": c["real_frames"], "fake": c["fake_frames"]}
                       for name, c in report["dataset"].items()},
            "detectors": {label: {"frame_auc": round(e["mean"]["frame"]["auc"]["mean"], 4),
                                  "video_auc": round(e["mean"]["video"]["auc"]["mean"], 4),
                                  "train_seconds": e["seeds"][0]["train_seconds"]}
                          for label, e in report["detectors"].items()},
            "cross_method": {label: {"methods": c["methods"], "auc": [[round(a, 4) for a in row] for row in c["auc"]]}
                             for label, c in cross.items()}}
