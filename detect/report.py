"""Write a detection report: report.json (everything), report.md (tables) and roc_<detector>.png.

The report dict (made by :func:`detect.run.detect_eval`) holds
  settings     what was run (inputs, frames, size, seeds, configs, checkpoint);
  dataset      per split: videos, frames, frames without a face, frames per fake method;
  detectors    {name: {"mean": evaluate.aggregate(...), "seeds": [summarize(...) + seed, train_seconds]}};
  per-protocol sections when run: cross_method, robustness, compression (see detect.protocol);
  notes        sentences about what was skipped and why.
A cross-dataset report (:func:`detect.run.cross_eval`) has cross_dataset = {detector: {"val": ...,
"test": {set: ...}}} with entries shaped like those of `detectors`, which it does not have; its
markdown is one table of frame AUC, video AUC, AP and EER per detector x test set (see `cross_rows`).
Every file is written through dfjax.io: to a temporary name, then moved into place.
"""

from __future__ import annotations

import re
from pathlib import Path

from detect.plots import plot_roc
from dfjax.io import write_json, write_text

_METRICS = (("auc", "AUC"), ("ap", "AP"), ("eer", "EER"), ("acc_at_0_5", "acc@0.5"))


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, dict) and "mean" in v:  # mean_std
        return f"{v['mean']:.4f} ± {v['std']:.4f}" if len(v.get("values", [])) > 1 else f"{v['mean']:.4f}"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    return lines + ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))


def _dataset(dataset: dict, how_split: str | None, sentence: str | None = None) -> list[str]:
    rows = []
    for split, c in dataset.items():
        methods = ", ".join(f"{m} {n}" for m, n in c.get("fake_methods", {}).items()) or "–"
        missing = f"{c['frames_without_face']} of {c['frames_sampled']}" if "frames_sampled" in c else "–"
        rows.append([split, f"{c['real_videos']} / {c['fake_videos']}", f"{c['real_frames']} / {c['fake_frames']}",
                     missing, c.get("videos_without_face", 0), methods])
    how = sentence or (f"Split {how_split}." if how_split else
                       "Split by source identity (no identity in two splits).")
    return ["## Dataset", "", f"{how} Sampled frames without a face are counted, never silently dropped (their "
            "indices per video are in report.json).", "",
            *_table(["split" if sentence is None else "data", "videos real / fake", "frames real / fake",
                     "sampled frames without a face", "videos without any face", "fake frames per method"], rows)]


def _main(detectors: dict, n_seeds: int) -> list[str]:
    rows = []
    for name, r in detectors.items():
        mean, seeds = r["mean"], r["seeds"]
        times = [s["train_seconds"] for s in seeds if s.get("train_seconds") is not None]
        row = [name] + [mean["frame"][k] for k, _ in _METRICS] + [mean.get("video", {}).get(k) for k, _ in _METRICS]
        row += [len(seeds), f"{sum(times) / len(times):.1f}" if times else "loaded"]
        rows.append(row)
    spread = f"mean ± sample std over {n_seeds} seeds" if n_seeds > 1 else "one seed"
    return [f"## Main results (test split; {spread})", "",
            *_table(["detector"] + [f"frame {h}" for _, h in _METRICS] + [f"video {h}" for _, h in _METRICS]
                    + ["seeds", "train s / seed"], rows)]


def _per_method(detectors: dict) -> list[str]:
    rows = [[name, m] + [pm[k] for k, _ in _METRICS]
            for name, r in detectors.items() for m, pm in r["mean"].get("per_method", {}).items()]
    if len(rows) <= len(detectors):  # one method: the main table already says it
        return []
    return ["", "## Per manipulation method (each method's test fakes vs all test reals, frame level)", "",
            *_table(["detector", "method"] + [h for _, h in _METRICS], rows)]


def _cross_method(cross: dict) -> list[str]:
    lines = []
    for name, c in cross.items():
        methods, n = c["methods"], len(c.get("seeds", [0]))
        rows = [[m] + [{"mean": a, "std": sd, "values": [a] * n} for a, sd in zip(auc, std)]
                for m, auc, std in zip(methods, c["auc"], c["auc_std"])]
        lines += ["", f"### {name}", "", *_table(["trained on \\ tested on"] + methods, rows)]
    if not lines:
        return []
    return ["", "## Cross-method matrix (frame AUC; rows: fakes trained on, columns: fakes tested on; "
            "each against all test reals; mean ± std over seeds)", *lines]


def _robustness(rob: dict) -> list[str]:
    if not rob:
        return []
    names = list(rob)
    first = rob[names[0]]["levels"]
    rows = [["clean", "–"] + [rob[n]["clean"] for n in names]]
    for i, entry in enumerate(first):
        cells = []
        for n in names:
            lv = rob[n]["levels"][i]
            cells.append(f"{_fmt(lv['frame_auc'])} ({-lv['drop']:+.3f})")
        rows.append([entry["perturbation"], str(entry["level"])] + cells)
    return ["", "## Robustness (frame AUC on perturbed test crops, change from clean in brackets; "
            "detectors trained on clean data)", "", *_table(["perturbation", "level"] + names, rows)]


def _compression(comp: dict, dataset: dict) -> list[str]:
    rows = []
    for name, by_level in comp.items():
        for level, m in by_level.items():
            counts = dataset.get("test" if level == "raw" else f"test@{level}", {})
            rows.append([name, level, m["frame"]["auc"], m.get("video", {}).get("auc"), counts.get("frames"),
                         counts.get("frames_without_face")])
    if not rows:
        return []
    return ["", "## Compression (test videos as given (raw) and re-encoded with libx264, c23 = CRF 23, "
            "c40 = CRF 40; detectors trained on the inputs as given)", "",
            *_table(["detector", "test videos", "frame AUC", "video AUC", "test frames", "frames without a face"],
                    rows)]


# ---------------------------------------------------------------- the cross-dataset table

CROSS_METRICS = (("frame", "auc", "frame AUC"), ("video", "auc", "video AUC"), ("frame", "ap", "AP"),
                 ("frame", "eer", "EER"))
VAL_GROUP = "val (in-dataset)"


def cross_rows(report: dict) -> list[tuple[str, str, str, dict | None]]:
    """(detector, group, kind, mean) of a cross-dataset report, detectors in order, each with its validation
    split first (group VAL_GROUP, kind "val") when there is one, then every test set (kind "test").

    mean: the entry's evaluate.aggregate result ({"frame": {metric: mean_std}, "video": ...}), None when missing.
    """
    tests = list(report.get("settings", {}).get("test", {}))
    rows = []
    for label, by_set in report["cross_dataset"].items():
        if "val" in by_set:
            rows.append((label, VAL_GROUP, "val", by_set["val"]["mean"]))
        for name in tests:
            entry = by_set.get("test", {}).get(name)
            rows.append((label, name, "test", entry["mean"] if entry else None))
    return rows


def cross_metric(mean: dict | None, level: str, key: str):
    """One metric's mean_std from an entry's mean, None when absent."""
    return (mean or {}).get(level, {}).get(key)


def _cross(report: dict) -> list[str]:
    rows = cross_rows(report)
    groups = list(dict.fromkeys(group for _, group, _, _ in rows))
    header = ["detector"] + [f"{g}: {h}" for g in groups for _, _, h in CROSS_METRICS]
    table = {}
    for label, group, _, mean in rows:
        table.setdefault(label, {})[group] = [cross_metric(mean, level, key) for level, key, _ in CROSS_METRICS]
    body = [[label] + [v for g in groups for v in cells.get(g, [None] * len(CROSS_METRICS))]
            for label, cells in table.items()]
    n_seeds = len(report.get("settings", {}).get("seeds", [0]))
    spread = f"mean ± sample std over {n_seeds} seeds" if n_seeds > 1 else "one seed"
    return ["## Cross-dataset results (DeepfakeBench's protocol)", "",
            f"Rows: detectors; column groups: {VAL_GROUP}, the validation split of the --train data (it also "
            "selected the model, so it flatters), then each --test set, scored whole. AP and EER are frame "
            f"level; video AUC ranks the mean frame score of each video; {spread}.", "",
            *_table(header, body)]


def _cross_per_method(report: dict) -> list[str]:
    rows = [[label, group, method] + [m[k] for k, _ in _METRICS]
            for label, group, _, mean in cross_rows(report) if len((mean or {}).get("per_method", {})) > 1
            for method, m in mean["per_method"].items()]
    if not rows:  # one method per data: the table above already says it
        return []
    return ["", "## Per manipulation method (frame level; each method's fakes vs all reals of the same data)", "",
            *_table(["detector", "scored on", "method"] + [h for _, h in _METRICS], rows)]


def _cross_markdown(report: dict, lines: list[str]) -> str:
    s = report.get("settings", {})
    if report.get("dataset"):
        lines += _dataset(report["dataset"], None, sentence=s.get("split")) + [""]
    lines += _cross(report)
    lines += _cross_per_method(report)
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    lines += ["", "## ROC curves", ""]
    for label, group, kind, mean in cross_rows(report):
        if mean is not None:
            key = f"test_{group}" if kind == "test" else "val"
            lines.append(f"![ROC {label} on {group}](roc_{safe_name(label)}_{safe_name(key)}.png)")
    return "\n".join(lines) + "\n"


def markdown(report: dict) -> str:
    """The report as markdown tables (everything else is in report.json)."""
    s = report.get("settings", {})
    n_seeds = len(s.get("seeds", [0]))
    lines = ["# Detection report", "",
             f"{s.get('frames', '?')} evenly spaced frames per video, face crops of {s.get('size', '?')} px "
             "(dlib box x1.3). Label 1 = fake; scores are P(fake); EER where FPR = FNR; video = mean of its "
             "frame scores.", ""]
    if "cross_dataset" in report:
        return _cross_markdown(report, lines)
    if report.get("dataset"):
        lines += _dataset(report["dataset"], s.get("split")) + [""]
    lines += _main(report["detectors"], n_seeds)
    lines += _per_method(report["detectors"])
    lines += _cross_method(report.get("cross_method", {}))
    lines += _robustness(report.get("robustness", {}))
    lines += _compression(report.get("compression", {}), report.get("dataset", {}))
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    lines += ["", "## ROC curves (test split)", ""]
    lines += [f"![ROC {name}](roc_{safe_name(name)}.png)" for name in report["detectors"]]
    return "\n".join(lines) + "\n"


def write_report(report: dict, out_dir) -> dict[str, Path]:
    """Write report.json, report.md and roc_<detector>.png into out_dir; returns {kind: path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md"}
    write_json(paths["json"], report, indent=1)
    write_text(paths["md"], markdown(report))
    if "cross_dataset" in report:
        for label, by_set in report["cross_dataset"].items():
            entries = ([("val", VAL_GROUP, by_set["val"])] if "val" in by_set else []) + \
                [(f"test_{name}", f"test set {name}", e) for name, e in by_set.get("test", {}).items()]
            for key, where, entry in entries:
                path = paths[f"roc_{label}_{key}"] = out_dir / f"roc_{safe_name(label)}_{safe_name(key)}.png"
                plot_roc(label, entry["seeds"], path, where=where)
        return paths
    for name, r in report["detectors"].items():
        paths[f"roc_{name}"] = out_dir / f"roc_{safe_name(name)}.png"
        plot_roc(name, r["seeds"], paths[f"roc_{name}"])
    return paths
