"""Self-reenactment on a held-out stretch of a real target: train the reenactor on the first 80 % of
a face set's frames, re-render the last 20 % from their own conditioning maps, score them.

    .venv/bin/python benchmarks/reenact_self.py --faceset runs/ffpp/faces_004 --steps 1200 \
        --out benchmarks/results/reenact-ffpp004-$(date +%F).json --grid benchmarks/results/reenact-ffpp004-heldout-$(date +%F).png

results/reenact-ffpp004-2026-11-23.json: configs/reenact.py:tiny (64 px), 1,200 steps at batch 8 on 2 CPU
cores (6 min 42 s), face set extracted at 128 px from ../shared/data/real/ffpp_004.mp4 (309 faces,
247 trained, 62 held out). Scores (dfjax.metrics.self_reenactment_scores): L1, PSNR, SSIM over the
crop and in the landmark hull, AKD over the 68 dlib landmarks at 256 px, pose and gaze re-estimated
on the outputs against the real frames; beside them the mean training frame as a baseline. The grid
shows six held-out frames: real (top) and reenacted (bottom).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

import numpy as np  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faceset", required=True)
    parser.add_argument("--config", default="configs/reenact.py:tiny")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=None, help="write the figures (JSON) here")
    parser.add_argument("--grid", default=None, help="write real (top) / reenacted (bottom) held-out frames here")
    args = parser.parse_args(argv)

    import cv2

    from dfjax import media
    from dfjax.config import apply_overrides, load_config
    from dfjax.reenact import self_reenactment
    from dfjax.training.core import train as train_and_evaluate

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="reenact_self_"))
    config = apply_overrides(load_config(args.config), [
        f"data.a='{args.faceset}'", f"data.holdout={args.holdout}", f"train.steps={args.steps}",
        "log.preview_every=500", "log.checkpoint_every=500"])
    started = time.perf_counter()
    trained = train_and_evaluate(config, workdir)
    held = self_reenactment(workdir)
    figures = {"benchmark": "reenact_self", "faceset": args.faceset, "config": args.config,
               "train_wall_s": round(time.perf_counter() - started, 1), "train": trained,
               **{k: v for k, v in held.items() if k not in ("outputs", "truths")}}
    print(json.dumps(figures, default=str))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1, default=str))
    if args.grid:
        shown = np.linspace(0, len(held["outputs"]) - 1, 6).round().astype(int)
        grid = np.concatenate([np.concatenate(list(held["truths"][shown]), 1),
                               np.concatenate(list(held["outputs"][shown]), 1)], 0)
        scale = max(1, 384 // grid.shape[0])
        media.write_image(args.grid, cv2.resize(grid, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
