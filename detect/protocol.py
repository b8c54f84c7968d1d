"""The evaluation protocol on built datasets, with DeepfakeBench's pitfalls avoided.

Every detector is trained once per seed on the train split, with the val split passed for model
selection only (the test split is never seen before scoring: DeepfakeBench #91), or loaded from a
checkpoint an earlier run saved. Then:

* the test split is scored: frame- and video-level metrics, per method, mean ± std over seeds;
* the cross-method matrix: trained on real + one method's fakes, scored on each method's test fakes;
* the robustness sweep: the clean-trained detectors score perturbed copies of the test crops.

A saved detector is loaded back through the registry, by the name recorded beside it: a checkpoint
folder names a detector, it never names code to import.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from detect.datasets import Dataset
from detect.evaluate import aggregate, frame_metrics, mean_std, summarize, video_metrics
from detect.registry import DETECTORS, Detector
from dfjax.errors import UserError
from dfjax.io import atomic_dir, read_json, write_json

CHECKPOINT_META = "detect_eval.json"  # beside what Detector.save writes: label, registry name, seed, config


@dataclasses.dataclass
class Trained:
    """One detector trained (or loaded) for one seed."""

    name: str                           # the run's label, e.g. "meso4-sbi"
    seed: int
    detector: Detector
    train_seconds: float | None = None  # None when loaded from a checkpoint
    checkpoint: str | None = None       # where it was saved to or loaded from


# ---------------------------------------------------------------- dataset helpers


def subset(ds: Dataset, keep) -> Dataset:
    """The rows of `ds` where `keep` is true: every per-row array is indexed, the video list is kept."""
    keep = np.asarray(keep)
    rows = {f.name: getattr(ds, f.name)[keep] for f in dataclasses.fields(ds)
            if isinstance(getattr(ds, f.name), np.ndarray) and len(getattr(ds, f.name)) == len(ds)}
    return dataclasses.replace(ds, **rows)


def video_paths(ds: Dataset) -> np.ndarray:
    """The full path of each row's video (video-level scores group by it)."""
    return np.asarray([str(v.path) for v in ds.videos], dtype=object)[np.asarray(ds.video_ids, np.int64)]


def fake_methods(ds: Dataset) -> list[str]:
    return sorted(set(np.asarray(ds.methods)[np.asarray(ds.labels) == 1].tolist()))


def _both_classes(ds: Dataset | None) -> bool:
    return ds is not None and len(set(np.asarray(ds.labels).tolist())) == 2


# ---------------------------------------------------------------- train, save, load


def make_detector(name: str, config=None) -> Detector:
    """A fresh detector from the registry, with its config when one was given."""
    kind = DETECTORS.get(name)
    return kind() if config is None else kind(config)


def fit(spec: tuple, train: Dataset, val: Dataset | None, seed: int, progress=None):
    """A detector trained on `train`; `val` (when it has both classes) only selects the model.

    spec: (registry name, config or None).
    """
    detector = make_detector(*spec)
    val_pair = (val.crops, val.labels) if _both_classes(val) else None
    detector.fit(train.crops, train.labels, val=val_pair, landmarks=train.landmarks, seed=seed, progress=progress)
    return detector


def save_trained(trained: Trained, root: Path, spec: tuple) -> Path:
    """Save to root/<label>/seed_<seed> (built in a temporary folder, then renamed into place).

    spec: (registry name, config or None), recorded beside the detector so that it loads back.
    """
    name, config = spec
    final = Path(root) / trained.name / f"seed_{trained.seed}"
    with atomic_dir(final, overwrite=True) as tmp:
        trained.detector.save(tmp)
        write_json(tmp / CHECKPOINT_META, {"label": trained.name, "detector": name, "seed": trained.seed,
                                           "train_seconds": trained.train_seconds,
                                           "config": config.to_dict() if config is not None else None})
    trained.checkpoint = str(final)
    return final


def train_all(specs: dict[str, tuple], train: Dataset, val: Dataset | None, seeds: list[int],
              save_root: Path | None = None, progress=None) -> dict[str, list[Trained]]:
    """Every detector trained for every seed (and saved under save_root when given).

    specs: {label: (registry name, config or None)}; results and checkpoints are keyed by label.
    """
    out: dict[str, list[Trained]] = {}
    for label, spec in specs.items():
        out[label] = []
        for seed in seeds:
            started = time.perf_counter()
            detector = fit(spec, train, val, seed, progress)
            trained = Trained(label, seed, detector, round(time.perf_counter() - started, 2))
            if save_root is not None:
                save_trained(trained, save_root, spec)
            out[label].append(trained)
    return out


def _checkpoint_dirs(root: Path) -> list[Path]:
    """Folders under `root` (itself, seed_*/, */seed_*/) holding a detector saved by detect-eval."""
    found = [root] if (root / CHECKPOINT_META).is_file() else []
    found += sorted(p.parent for p in root.glob(f"*/{CHECKPOINT_META}"))
    found += sorted(p.parent for p in root.glob(f"*/*/{CHECKPOINT_META}"))
    return found


def load_all(names: list[str], root: Path) -> dict[str, list[Trained]]:
    """The detectors `names` saved under `root` (OUT/checkpoints, OUT/checkpoints/<name> or one seed_<k>)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"checkpoint folder {root} does not exist; pass OUTPUT/checkpoints of an earlier detect-eval run.")
    metas = [(d, _read_meta(d)) for d in _checkpoint_dirs(root)]
    if not metas:
        raise UserError(f"{root} holds no saved detector (no {CHECKPOINT_META}); pass OUTPUT/checkpoints "
                        "of an earlier detect-eval run.")
    out = {}
    for name in names:
        mine = sorted(((d, m) for d, m in metas if m["label"] == name), key=lambda dm: dm[1]["seed"])
        if not mine:
            saved = ", ".join(sorted({m["label"] for _, m in metas}))
            raise UserError(f"{root} holds saved {saved} detectors, not {name}; pass --detector {saved.split(',')[0]} "
                            "or another checkpoint folder.")
        out[name] = [Trained(name, m["seed"], _load(d, m["detector"]), None, str(d)) for d, m in mine]
    return out


def _read_meta(directory: Path) -> dict:
    """directory/CHECKPOINT_META as {"label", "detector", "seed"}; a UserError when it is not one."""
    try:
        meta = read_json(directory / CHECKPOINT_META)
        name = str(meta["detector"])
        return {"label": str(meta.get("label", name)), "detector": name, "seed": int(meta.get("seed", 0))}
    except (ValueError, TypeError, KeyError):
        raise UserError(f"{directory / CHECKPOINT_META} is not a detect-eval checkpoint record; pass "
                        "OUTPUT/checkpoints of an earlier detect-eval run.") from None


def _load(directory: Path, name: str) -> Detector:
    """The detector saved in `directory` by the registered detector `name` (its class's load)."""
    if name not in DETECTORS:
        raise UserError(f"{directory} holds a detector named {name!r}, which this dfjax does not have "
                        f"(it has {', '.join(DETECTORS.names())}); retrain it.")
    return DETECTORS.get(name).load(directory)


# ---------------------------------------------------------------- scoring


def score_runs(runs: list[Trained], test: Dataset) -> list[dict]:
    """:func:`summarize` of each seed's scores on `test` (frame, video, per method, ROC)."""
    paths = video_paths(test)
    return [summarize(test.labels, t.detector.score(test.crops), paths, test.methods) for t in runs]


def score_variant(trained: dict[str, list[Trained]], test: Dataset) -> dict:
    """Mean ± std over seeds of the frame and video metrics on another copy of the test split."""
    paths = video_paths(test)
    out = {}
    for name, runs in trained.items():
        summaries = [summarize(test.labels, t.detector.score(test.crops), paths) for t in runs]
        out[name] = aggregate(summaries)
    return out


def cross_method(specs: dict[str, tuple], train: Dataset, val: Dataset | None, test: Dataset,
                 seeds: list[int], progress=None) -> dict:
    """Frame AUC of detectors trained on real + one method's fakes, on each method's test fakes vs the test reals.

    Returns {name: {"methods": [...], "auc": rows = train method, cols = test method (mean over seeds),
    "auc_std": ...}}; empty when fewer than two methods have fakes in both train and test.
    """
    methods = [m for m in fake_methods(train) if m in fake_methods(test)]
    if len(methods) < 2:
        return {}
    real = {"train": train.labels == 0, "test": test.labels == 0}
    out = {}
    for label, spec in specs.items():
        auc = np.zeros((len(methods), len(methods), len(seeds)))
        for i, m in enumerate(methods):
            part = subset(train, real["train"] | (train.methods == m))
            part_val = subset(val, (val.labels == 0) | (val.methods == m)) if val is not None else None
            for k, seed in enumerate(seeds):
                scores = fit(spec, part, part_val, seed, progress).score(test.crops)
                for j, t in enumerate(methods):
                    sel = real["test"] | (test.methods == t)
                    auc[i, j, k] = frame_metrics(test.labels[sel], scores[sel])["auc"]
        out[label] = {"methods": methods, "auc": auc.mean(-1).tolist(), "auc_std": auc.std(-1, ddof=1).tolist()
                     if len(seeds) > 1 else np.zeros(auc.shape[:2]).tolist(), "seeds": list(seeds)}
    return out


def robustness(trained: dict[str, list[Trained]], test: Dataset, perturbations: dict, apply, seed: int = 0,
               progress=None) -> dict:
    """Frame and video AUC of the clean-trained detectors on perturbed copies of the test crops.

    perturbations: {name: [levels]}; apply(name, level, crops, video_ids, seed) -> perturbed crops.
    Returns {detector: {"clean": mean_std, "levels": [{perturbation, level, frame_auc, video_auc, drop}]}},
    drop = clean frame AUC - perturbed frame AUC (means over seeds).
    """
    paths = video_paths(test)
    out = {}
    for name, runs in trained.items():
        clean = [frame_metrics(test.labels, t.detector.score(test.crops))["auc"] for t in runs]
        out[name] = {"clean": mean_std(clean), "levels": []}
    total = sum(len(levels) for levels in perturbations.values())
    task = progress.add_task("robustness", total=total) if progress else None
    for pert, levels in perturbations.items():
        for level in levels:
            crops = apply(pert, level, test.crops, test.video_ids, seed)
            if crops.shape != test.crops.shape:
                raise ValueError(f"perturbation {pert}={level} changed the crops' shape to {crops.shape}")
            for name, runs in trained.items():
                scores = [t.detector.score(crops) for t in runs]
                frame = mean_std([frame_metrics(test.labels, s)["auc"] for s in scores])
                video = mean_std([video_metrics(paths, test.labels, s)["auc"] for s in scores])
                out[name]["levels"].append({"perturbation": pert, "level": level, "frame_auc": frame,
                                            "video_auc": video, "drop": out[name]["clean"]["mean"] - frame["mean"]})
            if progress:
                progress.advance(task)
    return out
