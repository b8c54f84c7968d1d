"""`dfjax forge` on synthetic footage: seconds per stage, and whether its fakes help a detector.

    .venv/bin/python benchmarks/forge.py --out benchmarks/results/forge-$(date +%F).jsonl

1. `dfjax synth --identities 8` (exact identities), then `dfjax forge` with configs/forge.py:tiny: two
   people held out for test, two for val, four for training, one model per method and split (`--methods`,
   in `--jobs` processes, fakes encoded with x264's `--preset`). Reported: seconds per stage, fakes'
   frames per second, the counts per split and method, and the fake frames without a face.
2. The control: the same detector (Meso-4, tiny) trained three ways on the train split's manifest and
   scored on the test split (`manifest-test.csv`: people no model or detector trained on):
   (a) SBI: self-blended fakes of the real frames only (the dfjax fakes are not used);
   (b) dfjax fakes only;
   (c) both: the dfjax fakes and the self-blends of the real frames.
   One line per row: frame/video AUC, AP and EER on the test split, and the in-dataset validation AUC.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Reporter, available_cores  # noqa: E402

DFJAX = [sys.executable, "-m", "dfjax.cli"]
CONTROL = {"a_sbi_only": "tiny,sbi", "b_dfjax_fakes_only": "tiny", "c_both": "tiny,sbi,mix"}


def run(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(DFJAX + args + ["--quiet"], check=True, stdout=subprocess.DEVNULL)
    return round(time.perf_counter() - started, 1)


def ceiling(summary: dict, jobs: int) -> dict:
    """CPU seconds per stage and, for the fakes, CPU ms per frame, the frames/s they allow on every core
    (cores x 1000 / ms) and the frames/s reached as a fraction of that (one process only: with --jobs the
    summary holds the last job's CPU time alone)."""
    if jobs != 1 or "cpu_seconds" not in summary:
        return {}
    cpu, frames, cores = summary["cpu_seconds"], summary["fake_frames"], available_cores()
    ms = 1000 * cpu["fakes"] / max(frames, 1)
    limit = cores * 1000 / max(ms, 1e-9)
    reached = frames / max(summary["seconds"]["fakes"], 1e-9)
    return {"cpu_seconds_per_stage": cpu, "fakes_cpu_ms_per_frame": round(ms, 1),
            "fakes_ceiling_frames_per_s": round(limit, 1), "fakes_fraction_of_ceiling": round(reached / limit, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identities", type=int, default=8)
    parser.add_argument("--frames", type=int, default=60, help="frames per synthetic video")
    parser.add_argument("--steps", type=int, default=300, help="training steps of each split's swap model")
    parser.add_argument("--methods", default="DFJaxAE", help="forge's methods (comma-separated; all: every one)")
    parser.add_argument("--jobs", type=int, default=1, help="forge --jobs: processes at once")
    parser.add_argument("--preset", default="medium", help="fakes.preset: x264's speed preset of the fakes and copies")
    parser.add_argument("--detect-frames", type=int, default=16, help="frames sampled per video by detect-eval")
    parser.add_argument("--workdir", default=None, help="keep the footage, dataset and reports here")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    emit = Reporter()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="dfjax-forge-"))
    emit({"benchmark": "forge", "case": "header", "date": dt.date.today().isoformat(), "cpu_count": os.cpu_count(),
          "python": platform.python_version(), "identities": args.identities, "frames": args.frames,
          "steps": args.steps, "methods": args.methods, "jobs": args.jobs, "preset": args.preset,
          "workdir": str(root)})
    synth_s = run(["synth", "-o", str(root / "people"), "--identities", str(args.identities), "--frames",
                   str(args.frames), "--size", "256", "--face-size", "64", "--overwrite"])  # faces ~110 px: dlib finds them
    dataset = root / "dataset"
    forge_s = run(["forge", str(root / "people"), "-o", str(dataset), "--config", "forge.py:tiny",
                   "--set", "split.val=2", *[f"--set={m}.steps={args.steps}" for m in ("model", "dvp", "fomm", "reenact")],
                   "--set", f"methods={args.methods!r}", "--set", f"fakes.preset={args.preset}",
                   "--jobs", str(args.jobs)])
    summary = json.loads((dataset / "forge.json").read_text())
    fakes_s = summary["seconds"]["fakes"]
    emit({"benchmark": "forge", "case": "forge", "synth_s": synth_s, "forge_s": forge_s,
          "seconds_per_stage": summary["seconds"], "counts": summary["counts"],
          "models": {s: {"identities": m["identities"], "step": m.get("step")} for s, m in summary["models"].items()},
          "fakes_per_method": summary["fakes_per_method"],
          "fake_frames": summary["fake_frames"], "fake_frames_without_face": summary["fake_frames_without_face"],
          "fakes_frames_per_s": round(summary["fake_frames"] / max(fakes_s, 1e-9), 1), **ceiling(summary, args.jobs)})
    for row, arg in CONTROL.items():
        out = root / "control" / row
        seconds = run(["detect-eval", "--train", str(dataset / "manifest-train.csv"),
                       "--test", f"test={dataset / 'manifest-test.csv'}", "--detector", "meso4",
                       "--config", f"configs/detect_meso4.py:{arg}", "--frames", str(args.detect_frames),
                       "--size", "64", "--face-detector", "hog,cnn", "-o", str(out)])
        report = json.loads((out / "report.json").read_text())
        emit({"benchmark": "forge", "case": "control", "row": row, "config": arg, "seconds": seconds,
              "cross_dataset": report.get("cross_dataset")})
    if args.out:
        emit.save(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
