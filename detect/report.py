"""Write a detection report: report.json, report.md and one ROC-curve PNG per detector.

``results`` maps detector name -> the dict made by :func:`detect.evaluate.summarize`:
``{"frame": {auc, ap, eer, acc_at_0_5, n_real, n_fake}, "video": {...} (optional),
"per_method": {method: {...}} (optional), "roc": {"frame": {fpr, tpr}, "video": {fpr, tpr}}}``.
Every file is written to a temporary name in ``out_dir`` and moved into place with os.replace.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np

_COLS = ("auc", "ap", "eer", "acc_at_0_5")
_HEAD = ("AUC", "AP", "EER", "acc@0.5")


def _atomic_write(path: Path, write) -> None:
    """Call write(file_object) on a temp file beside ``path``, then os.replace it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def markdown(results: dict) -> str:
    """The report as markdown: a detector x metric table, then per-method tables where present."""
    has_video = any("video" in r for r in results.values())
    header = ["detector"] + [f"frame {h}" for h in _HEAD] + ["real", "fake"]
    if has_video:
        header += [f"video {h}" for h in _HEAD] + ["videos"]
    rows = []
    for name, r in results.items():
        fm = r["frame"]
        row = [name] + [fm.get(c) for c in _COLS] + [fm.get("n_real"), fm.get("n_fake")]
        if has_video:
            vm = r.get("video", {})
            row += [vm.get(c) for c in _COLS] + [vm.get("n_videos")]
        rows.append(row)
    lines = ["# Detection report", "", "Label 1 = fake; scores are P(fake). EER: FPR = FNR.", ""]
    lines += _table(header, rows)
    for name, r in results.items():
        if r.get("per_method"):
            lines += ["", f"## {name}: per manipulation method (each vs all real frames)", ""]
            lines += _table(["method"] + list(_HEAD) + ["real", "fake"],
                            [[m] + [pm.get(c) for c in _COLS] + [pm.get("n_real"), pm.get("n_fake")]
                             for m, pm in r["per_method"].items()])
        if r.get("roc"):
            lines += ["", f"![ROC {name}](roc_{_safe(name)}.png)"]
    return "\n".join(lines) + "\n"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))


def plot_roc(name: str, result: dict, path: Path) -> None:
    """Frame- and video-level ROC curves of one detector and the chance diagonal, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for level, style in (("frame", "-"), ("video", "--")):
        pts = result.get("roc", {}).get(level)
        if pts:
            auc = result.get(level, {}).get("auc")
            label = f"{level} (AUC {auc:.3f})" if auc is not None else level
            ax.plot(pts["fpr"], pts["tpr"], style, lw=2, label=label, drawstyle="default")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="false positive rate (real called fake)",
           ylabel="true positive rate (fake caught)", title=f"ROC: {name}")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    _atomic_write(path, lambda f: fig.savefig(f, format="png"))


def write_report(results: dict, out_dir) -> dict[str, Path]:
    """Write report.json, report.md and roc_<detector>.png files; returns {kind: path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md"}
    text = json.dumps(_jsonable(results), indent=2, sort_keys=False, allow_nan=False)
    _atomic_write(paths["json"], lambda f: f.write(text.encode()))
    md = markdown(results)
    _atomic_write(paths["md"], lambda f: f.write(md.encode()))
    for name, r in results.items():
        if r.get("roc"):
            paths[f"roc_{name}"] = out_dir / f"roc_{_safe(name)}.png"
            plot_roc(name, r, paths[f"roc_{name}"])
    return paths
