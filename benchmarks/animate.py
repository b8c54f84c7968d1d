"""First Order Motion Model throughput: training images/s and `dfjax animate` frames/s beside the ceiling
its stages imply.

  python benchmarks/animate.py --out benchmarks/results/animate-$(date +%F).jsonl
  python benchmarks/animate.py --model runs/fomm --source photo.jpg --driver VIDEO --frames 0
  python benchmarks/animate.py --default-steps 0          # skip the 256 px config (minutes per step on CPU)

Training: dfjax's own jitted step (dfjax.training.animate: the clips on the device as uint8, (source,
driving) pairs sampled and warped for the equivariance loss inside the step), driven as the training loop
drives it but without logging or checkpoints; compile time, then the median of `--steps` steps after
`--warmup`, as images (pairs) per second. configs/animate.py:tiny at its own batch, and the default
256 px config (the paper's vox-256 networks) for `--default-steps` steps at `--default-batch` pairs, a
smaller batch than its 40 so that it finishes on a CPU (say so in the line); 0 skips it.

Inference: `dfjax animate --source PHOTO --driver VIDEO` (default: ../shared/data/real/images/obama.jpg
driven by the first `--frames` frames of ../shared/data/real/ffpp_634.mp4). Without --model a throw-away
tiny model is trained for a few steps (the timing does not depend on how good it is, only on its
size). One line per stage measured alone, in this process, with its CPU milliseconds per driver frame
(process time: every thread counts): decode (animate reads the driver twice, once for the frames it
searches for the face and once to crop every frame; both passes are counted); face finding (dlib on
the photo and on the sampled driver frames, and the stable crop of every frame); keypoints + generation
(batched, compiled beforehand, relative motion); paste-back of each generated crop into the photo with
the mask and sidecar record; H.264 encoding of the output and FFV1 of the masks. Then the ceiling those
costs imply for the cores available, cores x 1000 / (sum of the stages' CPU ms), and `dfjax animate` end
to end (a fresh call: loading, faces, generation, writing) as frames per second and as a fraction of
the ceiling; "pipeline" counts from the first generated frame to the last written (animate's own
frames_per_s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from report import Reporter, Stages, available_cores, cpu_timed, throwaway_model  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from dfjax import convert, media  # noqa: E402
from dfjax.config import apply_overrides, load_config  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
DEFAULT_SOURCE = SHARED / "images" / "obama.jpg"
DEFAULT_DRIVER = SHARED / "ffpp_634.mp4"


def train_config(spec: str, overrides: list[str]):
    return apply_overrides(load_config(spec), ["data.synth_identities=2", "data.synth_frames=32", *overrides])


def train_throughput(spec: str, overrides: list[str], steps: int, warmup: int) -> dict:
    """Compile time and the median step of the animate trainer's jitted step on synthetic clips."""
    from dfjax.training import parallel
    from dfjax.training.core import programs
    from dfjax.training.trainer import TRAINERS

    config = train_config(spec, overrides)
    trainer = TRAINERS.get("animate", "trainer")(config)
    mesh = parallel.make_mesh()
    with tempfile.TemporaryDirectory() as workdir:
        trainer.prepare(Path(workdir), mesh, None)
        t0 = time.perf_counter()
        compiled = programs(trainer, mesh)
        state = compiled.init()
        trainer.start(0, mesh)
        state, metrics = compiled.step(state, trainer.feed(0))
        jax.block_until_ready(metrics)
        compile_s = time.perf_counter() - t0
        for step in range(1, warmup):
            state, metrics = compiled.step(state, trainer.feed(step))
        jax.block_until_ready(metrics)
        times = []
        for step in range(warmup, warmup + steps):
            t = time.perf_counter()
            state, metrics = compiled.step(state, trainer.feed(step))
            jax.block_until_ready(metrics)
            times.append(time.perf_counter() - t)
        trainer.close()
    step_s = statistics.median(times)
    params = sum(x.size for x in jax.tree.leaves(state.params))
    return {"res": config.model.res, "batch": config.train.batch, "dtype": config.model.dtype,
            "params_m": round(params / 1e6, 2), "compile_s": round(compile_s, 1), "step_ms": round(step_s * 1e3, 1),
            "images_per_s": round(config.train.batch / step_s, 2), "steps_timed": steps,
            "loss_finite": bool(np.isfinite(float(metrics["loss"]))),
            "perceptual": trainer.summary()["perceptual"], "devices": mesh.size,
            "device": jax.devices()[0].device_kind}


def driver_clip(driver: Path, frames: int, folder: Path) -> Path:
    """The first `frames` frames of `driver` (all with 0), as a near-lossless H.264 file."""
    info = media.probe(driver)
    if not frames or frames >= info.frames:
        return driver
    path = folder / f"{driver.stem}_first{frames}.mp4"
    with media.VideoWriter(path, info.fps, info.width, info.height, crf=10) as writer:
        for _, frame in media.iter_frames(driver, 0, frames):
            writer.write(frame)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="an animate workdir (default: a throw-away tiny one)")
    parser.add_argument("--source", default=str(DEFAULT_SOURCE))
    parser.add_argument("--driver", default=str(DEFAULT_DRIVER))
    parser.add_argument("--frames", type=int, default=120, help="driver frames (0: all)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps of the tiny config")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--default-steps", type=int, default=2, help="timed steps of the 256 px config (0: skip)")
    parser.add_argument("--default-batch", type=int, default=2)
    parser.add_argument("--no-train", action="store_true", help="inference only")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    emit = Reporter()
    source, driver = Path(args.source), Path(args.driver)
    cores = available_cores()
    emit({"benchmark": "animate", "case": "header", "date": date.today().isoformat(), "jax": jax.__version__,
          "backend": jax.default_backend(), "device": jax.devices()[0].device_kind, "cpu_count": os.cpu_count(),
          "cores": cores, "load_average": [round(x, 2) for x in os.getloadavg()]})

    if not args.no_train:
        emit({"benchmark": "animate", "case": "train", "config": "configs/animate.py:tiny",
              **train_throughput("configs/animate.py:tiny", [], args.steps, args.warmup)})
        if args.default_steps > 0:
            emit({"benchmark": "animate", "case": "train", "config": "configs/animate.py",
                  "note": f"batch {args.default_batch}, not the config's 40, so that a few steps finish on a CPU",
                  **train_throughput("configs/animate.py", [f"train.batch={args.default_batch}"],
                                     args.default_steps, 1)})
        else:
            emit({"benchmark": "animate", "case": "train", "config": "configs/animate.py",
                  "skipped": "--default-steps 0"})

    missing = [str(p) for p in (source, driver) if not p.exists()]
    if missing:
        emit({"benchmark": "animate", "case": "inference", "skipped": f"{', '.join(missing)} not found"})
        if args.out:
            emit.save(args.out)
        return

    from dfjax.animate import (FACE_SAMPLES, AnimateOptions, animate, batched_keypoints, crop_matrix, face_and_box,
                               generate, relative_keypoints, source_crop)
    from dfjax.faces.detect import FaceDetector
    from dfjax.faces.landmarks import LandmarkPredictor
    from dfjax.training.animate import crop_square, stable_crop_box
    from dfjax.training.core import load_trained

    model_dir = Path(args.model) if args.model else throwaway_model(
        "configs/animate.py:tiny", ["data.synth_identities=2", "train.steps=3", "log.preview_every=1000"], "fomm_tiny")
    model = load_trained(model_dir, "animate")
    res, scale = model.resolution, float(model.config.data.crop_scale)
    with tempfile.TemporaryDirectory() as tmp:
        clip = driver_clip(driver, args.frames, Path(tmp))
        info = media.probe(clip)
        n = info.frames
        image = media.read_image(source)
        emit({"benchmark": "animate", "case": "inference_header", "source": source.name,
              "source_size": list(image.shape[1::-1]), "driver": driver.name, "frames": n,
              "driver_size": [info.width, info.height], "model": str(model_dir) if args.model else "throw-away tiny",
              "model_step": model.step, "resolution": res})
        stage = Stages(emit, "animate", n, cores)

        def decode_pass():
            for _ in media.iter_frames(clip):
                pass

        _, wall, cpu = cpu_timed(decode_pass)
        stage("decode", 2 * wall, 2 * cpu, passes=2, note="one pass measured, counted twice (animate reads the "
                                                          "driver once to find the face, once to crop)")
        frames = [frame for _, frame in media.iter_frames(clip)]

        detector, predictor = FaceDetector(), LandmarkPredictor()

        def faces():  # driver_crops' work on frames already decoded
            photo, box = source_crop(source, scale, detector, predictor)
            wanted = np.linspace(0, n - 1, min(FACE_SAMPLES, n)).round().astype(int)
            found = [face_and_box(detector, predictor, frames[i]) for i in wanted]
            driver_box = stable_crop_box(np.stack([f[0] for f in found if f is not None]), scale)
            return photo, box, np.stack([crop_square(frame, driver_box, res) for frame in frames])

        (photo, box, crops), wall, cpu = cpu_timed(faces)
        stage("faces", wall, cpu, note="dlib on the photo and on the driver frames animate samples, a crop of every "
                                       "frame")

        source_u8 = crop_square(photo, box, res)[None]

        def motion():
            kp_source = batched_keypoints(model, source_u8)
            kp_driving = batched_keypoints(model, crops)
            initial = {k: v[:1] for k, v in kp_driving.items()}
            kp_driving = jax.tree.map(np.asarray, relative_keypoints(kp_source, kp_driving, initial))
            return kp_driving, generate(model, source_u8, kp_source, kp_driving)

        motion()  # compile outside the timing
        (kp_driving, generated), wall, cpu = cpu_timed(motion)
        stage("keypoints+generation", wall, cpu)

        matrix = crop_matrix(box, res)
        blend = convert.refine_mask(np.ones((res, res), np.float32), max(1, res // 16), max(1, res // 16))

        def paste():
            frames, masks = [], []
            for face in generated:
                frame, mask = convert.paste_back(photo, face, blend, matrix)
                ys, xs = np.nonzero(mask)
                _ = (xs.min(), ys.min(), xs.max(), ys.max()) if len(xs) else None
                frames.append(frame)
                masks.append(mask)
            return frames, masks

        (frames, masks), wall, cpu = cpu_timed(paste)
        stage("paste", wall, cpu)

        height, width = photo.shape[:2]

        def encode():
            with media.VideoWriter(Path(tmp) / "enc.mp4", info.fps, width, height) as writer, \
                    media.VideoWriter(Path(tmp) / "enc.masks.mkv", info.fps, width, height, gray=True) as masks_out:
                for frame, mask in zip(frames, masks):
                    writer.write(frame)
                    masks_out.write(mask)

        _, wall, cpu = cpu_timed(encode)
        stage("encode", wall, cpu, note="H.264 output and FFV1 masks")
        ceiling = stage.ceiling({"decode": ("decode",), "encode": ("encode",)})
        t0 = time.perf_counter()
        summary = animate(model_dir, source, clip, Path(tmp) / "end_to_end.mp4", AnimateOptions())
        seconds = time.perf_counter() - t0
        emit({"benchmark": "animate", "case": "end_to_end", "seconds": round(seconds, 2),
              "frames_per_s": round(n / seconds, 1), "fraction_of_ceiling": round(n / seconds / ceiling, 2),
              "pipeline_frames_per_s": summary["frames_per_s"],
              "pipeline_fraction_of_ceiling": round(summary["frames_per_s"] / ceiling, 2),
              "frames_animated": summary["frames_animated"]})
    if args.out:
        emit.save(args.out)


if __name__ == "__main__":
    main()
