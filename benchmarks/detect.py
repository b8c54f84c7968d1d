"""Detector throughput (the reference "detect" benchmark): training images/s and inference frames/s.

On random uint8 crops of --size px, one JSON line per detector:
- spectral, dct (scikit-learn, CPU): fit on --batch x --steps crops with balanced random labels
  (features + logistic regression) and score as many;
- meso4, mesoinception4, xception (JAX, data-parallel over every device): the jitted training step
  of CNNDetector (augmentation, forward, backward, Adam) on a batch already on the devices, median
  of --steps timed steps after --warmup, so the host's batch sampling is not counted; inference is
  `score()` end to end (host batching, transfer, forward) on --frames crops after one warm-up call.

  python benchmarks/detect.py                                        # every detector, 256 px, batch 32 (GPU)
  python benchmarks/detect.py --detectors meso4,xception --dtype bfloat16 --batch 128
  python benchmarks/detect.py --tiny                                 # CPU smoke run: tiny configs, 64 px

Reports train_images_per_s, train_step_ms (CNNs), compile_s, infer_frames_per_s, params_m and the devices.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import jax
import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from report import Reporter  # noqa: E402

from detect.cnn import CNNDetector, cnn_config  # noqa: E402
from detect.registry import DETECTORS  # noqa: E402
from dfjax.training import parallel  # noqa: E402



def random_crops(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def bench_features(name: str, args) -> dict:
    n = args.batch * args.steps
    crops, labels = random_crops(n, args.size), np.arange(n) % 2
    detector = DETECTORS.get(name)()
    t0 = time.perf_counter()
    detector.fit(crops, labels)
    fit_s = time.perf_counter() - t0
    test = random_crops(args.frames, args.size, seed=1)
    t0 = time.perf_counter()
    detector.score(test)
    score_s = time.perf_counter() - t0
    return {"train_images_per_s": round(n / fit_s, 1), "train_step_ms": None, "compile_s": None,
            "infer_frames_per_s": round(args.frames / score_s, 1), "params_m": None, "images_trained": n}


def bench_cnn(name: str, args) -> dict:
    config = cnn_config(name, tiny=args.tiny)
    config.model.size, config.train.batch, config.model.dtype = args.size, args.batch, args.dtype
    config.train.eval_batch = args.batch
    detector = CNNDetector(config)
    prog = detector.programs()
    t0 = time.perf_counter()
    state = jax.block_until_ready(prog.init(0))
    data = {"images": parallel.put_batch(random_crops(args.batch, args.size), prog.mesh),
            "labels": parallel.put_batch((np.arange(args.batch) % 2).astype(np.float32), prog.mesh)}
    state, metrics = prog.step(state, data)
    loss = metrics["loss"]
    jax.block_until_ready(loss)
    compile_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        state, metrics = prog.step(state, data)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        state, metrics = prog.step(state, data)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    detector.variables = jax.device_get({"params": state.params, "batch_stats": state.model_state})
    test = random_crops(args.frames, args.size, seed=1)
    detector.score(test[:args.batch])  # compiles the forward pass
    t0 = time.perf_counter()
    detector.score(test)
    score_s = time.perf_counter() - t0
    params = sum(x.size for x in jax.tree.leaves(state.params))
    return {"train_images_per_s": round(args.batch / step_s, 1), "train_step_ms": round(step_s * 1e3, 3),
            "compile_s": round(compile_s, 1), "infer_frames_per_s": round(args.frames / score_s, 1),
            "params_m": round(params / 1e6, 3), "loss_finite": bool(np.isfinite(float(loss)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default=",".join(DETECTORS.names()))
    parser.add_argument("--size", type=int, default=None, help="crop size (default 256; 64 with --tiny)")
    parser.add_argument("--batch", type=int, default=None, help="training batch (default 32; 8 with --tiny)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 20; 3 with --tiny)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps after compiling (default 3; 1)")
    parser.add_argument("--frames", type=int, default=None, help="frames scored for inference (default 512; 32)")
    parser.add_argument("--dtype", default="float32", help="CNN compute dtype (bfloat16 on GPUs)")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run: tiny CNN configs and small defaults")
    parser.add_argument("--out", default=None, help="also write the JSON lines to this file")
    args = parser.parse_args()
    defaults = dict(size=64, batch=8, steps=3, warmup=1, frames=32) if args.tiny else \
        dict(size=256, batch=32, steps=20, warmup=3, frames=512)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    names = [n.strip() for n in args.detectors.split(",") if n.strip()]
    unknown = [n for n in names if n not in DETECTORS]
    if unknown:
        parser.error(f"unknown detector {', '.join(unknown)}; choose from {', '.join(DETECTORS.names())}")
    mesh = parallel.make_mesh()
    if args.batch % mesh.size:
        parser.error(f"--batch {args.batch} does not divide over {mesh.size} devices")
    emit = Reporter()
    emit({"benchmark": "detect", "detector": "header", "date": date.today().isoformat(), "jax": jax.__version__,
          "backend": jax.default_backend(), "device": jax.devices()[0].device_kind, "devices": mesh.size,
          "python": platform.python_version(), "tiny": args.tiny})
    for name in names:
        cnn = issubclass(DETECTORS.get(name), CNNDetector)
        result = bench_cnn(name, args) if cnn else bench_features(name, args)
        emit({"benchmark": "detect", "detector": name, "size": args.size, "batch": args.batch,
              "dtype": args.dtype if cnn else "float64", **result,
              "devices": mesh.size, "device": jax.devices()[0].device_kind, "steps_timed": args.steps})
    if args.out:
        emit.save(args.out)


if __name__ == "__main__":
    main()
