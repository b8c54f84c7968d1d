"""`dfjax detect-eval`: build the dataset, train each detector on the train split, score the test split.

Videos are split by source/identity group before any frame is read, so no identity appears in
both train and test; every frame without a face is counted in the report, never silently dropped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from detect.datasets import build_dataset, collect, split_by_group
from detect.evaluate import summarize
from detect.report import write_report
from detect.spectral import DETECTORS
from dfjax.errors import UserError


def detect_eval(real: list[Path], fake: list[Path], detectors: list[str], output: Path, *, frames: int = 32,
                size: int = 128, seed: int = 0, progress=None) -> dict:
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown:
        raise UserError(f"unknown detector {', '.join(unknown)}; choose from {', '.join(DETECTORS)}.")
    items = collect(real, fake)
    splits = split_by_group(items, seed=seed)
    if not splits["train"] or not splits["test"]:
        raise UserError("too few source videos to split by identity into train and test; add more videos.")
    cache = output / "cache"
    data = {name: build_dataset(split, frames, size, cache, progress=progress) for name, split in splits.items() if split}
    for name in ("train", "test"):
        if len(set(np.asarray(data[name].labels).tolist())) < 2:
            raise UserError(f"the {name} split has only one class; give real and fake videos of several identities.")
    dataset = {name: {"videos": len(ds.videos), "frames": len(ds), "fake_frames": int(np.sum(ds.labels)),
                      "frames_without_face": {str(k): v for k, v in ds.missing.items() if v}}
               for name, ds in data.items()}
    test = data["test"]
    video_paths = np.asarray([str(v) for v in test.videos])[test.video_ids]
    results, timing = {}, {}
    for name in detectors:
        started = time.perf_counter()
        detector = DETECTORS[name]().fit(data["train"].crops, data["train"].labels)
        timing[name] = round(time.perf_counter() - started, 2)
        results[name] = summarize(test.labels, detector.score(test.crops), video_paths, test.methods)
    write_report(results, output)
    (output / "dataset.json").write_text(json.dumps({"splits": dataset, "train_seconds": timing}, indent=1))
    return {"detectors": results, "dataset": dataset}
