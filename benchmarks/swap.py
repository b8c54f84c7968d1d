"""End-to-end `dfjax swap` throughput on a real 720p video, with the time split by stage.

  python benchmarks/swap.py                                   # ../shared/data/real/ffpp_004.mp4, a tiny model
  python benchmarks/swap.py VIDEO --model runs/sae128 --out benchmarks/results/swap-$(date +%F).jsonl

Without --model it trains a throw-away tiny model for a few steps on synthetic faces (the timing does
not depend on how good the model is, only on its size). Lines: one per stage measured alone (decode;
decode + face finding in the worker processes; batched inference; colour, mask and paste-back;
H.264 encoding), and one for the whole pipeline, where the stages overlap.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from report import Reporter  # noqa: E402

from dfjax import media  # noqa: E402
from dfjax.faces.pipeline import ExtractOptions, face_finders, video_faces  # noqa: E402
from dfjax.training.core import load_trained  # noqa: E402
from dfjax.swap import SwapOptions, Swapper, crop_settings, swap  # noqa: E402

DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "ffpp_004.mp4"


def throwaway_model() -> Path:
    from dfjax.config import apply_overrides, load_config
    from dfjax.training.core import train as train_and_evaluate

    workdir = Path(tempfile.mkdtemp()) / "tiny"
    config = apply_overrides(load_config("configs/swap.py:tiny"), ["train.steps=5", "data.synth_frames=32"])
    train_and_evaluate(config, workdir)
    return workdir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", default=str(DEFAULT_VIDEO))
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    emit = Reporter()
    video = Path(args.video)
    if not video.exists():
        emit({"benchmark": "swap", "skipped": f"{video} not found"})
        return
    model_dir = Path(args.model) if args.model else throwaway_model()
    model = load_trained(model_dir)
    info = media.probe(video)
    n = info.frames
    emit({"benchmark": "swap", "case": "header", "date": date.today().isoformat(), "video": video.name,
          "width": info.width, "height": info.height, "frames": n, "model": model.config.model.arch,
          "resolution": model.resolution, "cpu_count": os.cpu_count()})

    def stage(name: str, seconds: float, **extra) -> None:
        emit({"benchmark": "swap", "stage": name, "seconds": round(seconds, 3),
              "ms_per_frame": round(1e3 * seconds / n, 2), "frames_per_s": round(n / seconds, 1), **extra})

    t0 = time.perf_counter()
    frames = [frame for _, frame in media.iter_frames(video)]
    stage("decode", time.perf_counter() - t0)

    face_type, coverage = crop_settings(model)
    finder = ExtractOptions(size=model.resolution, face_type=face_type, coverage=coverage)
    t0 = time.perf_counter()
    with face_finders(finder, None) as (pool, workers):
        found = list(video_faces(pool, workers, video, info))
    stage("decode+faces", time.perf_counter() - t0, workers=workers,
          frames_with_face=sum(bool(f) for _, _, f in found))

    swapper = Swapper(model, SwapOptions())
    crops = [crop for _, _, faces in found for crop, _, _ in faces]
    swapper.generate(crops[:1])  # compile outside the timing
    swapper.generate(crops[:32])
    t0 = time.perf_counter()
    generated, masks = swapper.generate(crops)
    stage("inference", time.perf_counter() - t0, faces=len(crops))

    t0 = time.perf_counter()
    k, outputs = 0, []
    for (_, frame, faces) in found:
        out = frame
        for crop, _, meta in faces:
            out, _ = swapper.composite(out, crop, generated[k], masks[k], meta)
            k += 1
        outputs.append(out)
    stage("colour+mask+paste", time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with media.VideoWriter(Path(tmp) / "enc.mp4", info.fps, info.width, info.height) as writer:
            for out in outputs:
                writer.write(out)
        stage("encode", time.perf_counter() - t0)
        del frames, outputs, found
        t0 = time.perf_counter()
        summary = swap(video, Path(tmp) / "end_to_end.mp4", model_dir, SwapOptions())
        stage("end_to_end", time.perf_counter() - t0, frames_swapped=summary["frames_swapped"])
    if args.out:
        emit.save(args.out)


if __name__ == "__main__":
    main()
