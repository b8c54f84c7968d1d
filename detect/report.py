"""Write a detection report: report.json (everything), report.md (tables) and roc_<detector>.png.

The report dict (made by :func:`detect.run.detect_eval`) holds
  settings     what was run (inputs, frames, size, seeds, configs, checkpoint);
  dataset      per split: videos, frames, frames without a face, frames per fake method;
  detectors    {name: {"mean": evaluate.aggregate(...), "seeds": [summarize(...) + seed, train_seconds]}};
  per-protocol sections when run: cross_method, robustness, compression (see detect.protocol);
  notes        sentences about what was skipped and why.
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


def _dataset(dataset: dict, how_split: str | None) -> list[str]:
    rows = []
    for split, c in dataset.items():
        methods = ", ".join(f"{m} {n}" for m, n in c.get("fake_methods", {}).items()) or "–"
        missing = f"{c['frames_without_face']} of {c['frames_sampled']}" if "frames_sampled" in c else "–"
        rows.append([split, f"{c['real_videos']} / {c['fake_videos']}", f"{c['real_frames']} / {c['fake_frames']}",
                     missing, c.get("videos_without_face", 0), methods])
    how = f"Split {how_split}." if how_split else "Split by source identity (no identity in two splits)."
    return ["## Dataset", "", f"{how} Sampled frames without a face are counted, never silently dropped (their "
            "indices per video are in report.json).", "",
            *_table(["split", "videos real / fake", "frames real / fake", "sampled frames without a face",
                     "videos without any face", "fake frames per method"], rows)]


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


def markdown(report: dict) -> str:
    """The report as markdown tables (everything else is in report.json)."""
    s = report.get("settings", {})
    n_seeds = len(s.get("seeds", [0]))
    lines = ["# Detection report", "",
             f"{s.get('frames', '?')} evenly spaced frames per video, face crops of {s.get('size', '?')} px "
             "(dlib box x1.3). Label 1 = fake; scores are P(fake); EER where FPR = FNR; video = mean of its "
             "frame scores.", ""]
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
    for name, r in report["detectors"].items():
        paths[f"roc_{name}"] = out_dir / f"roc_{safe_name(name)}.png"
        plot_roc(name, r["seeds"], paths[f"roc_{name}"])
    return paths
