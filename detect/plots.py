"""ROC-curve PNGs for the detection report: one figure per detector, one frame-level curve per seed."""

from __future__ import annotations

from pathlib import Path

from dfjax.io import atomic_write


def plot_roc(name: str, runs: list[dict], path: Path, where: str = "test split") -> None:
    """Frame-level ROC of every seed (solid), the first seed's video-level ROC (dashed), chance (dotted).

    runs: the per-seed :func:`detect.evaluate.summarize` results, each with "seed" added.
    where: what was scored, for the title.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 5.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for i, run in enumerate(runs):  # later seeds drawn thinner on top, so equal curves stay visible
        pts = run["roc"]["frame"]
        ax.plot(pts["fpr"], pts["tpr"], "-", lw=1.5 + 2.5 * (len(runs) - 1 - i) / max(len(runs) - 1, 1),
                color=f"C{i % 10}", label=f"frame, seed {run.get('seed', i)} (AUC {run['frame']['auc']:.3f})")
    if runs and runs[0]["roc"].get("video"):
        pts = runs[0]["roc"]["video"]
        ax.plot(pts["fpr"], pts["tpr"], "--", lw=2, color="black",
                label=f"video, seed {runs[0].get('seed', 0)} (AUC {runs[0]['video']['auc']:.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="false positive rate (real called fake)",
           ylabel="true positive rate (fake caught)", title=f"ROC: {name} ({where})")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
