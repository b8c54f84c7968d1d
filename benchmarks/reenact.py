"""`dfjax reenact` throughput: each stage's CPU cost per driver frame, the ceiling they imply, and the
whole command against it.

  python benchmarks/reenact.py --model runs/reenact_a --out benchmarks/results/reenact-$(date +%F).jsonl
  python benchmarks/reenact.py --model runs/reenact_a --driver VIDEO

One line per stage measured alone, in this process, with its CPU milliseconds per driver frame (process
time: every thread counts): decode of the driver (into memory touched beforehand, as swap's benchmark
decodes: `swap.timed_decode`); face finding in the driver's decoded frames (reenact's own tracker
settings, full metadata: the controls need pose, gaze and blinks; as one face worker runs it); the
controls' maps and the generator (batched, compiled beforehand); paste-back into the target's frame
with its mask and sidecar record; H.264 encoding of the output and FFV1 of the masks, at the target's
frame size. Then the ceiling those costs imply for the cores available (report.Stages) and `dfjax
reenact` end to end in a new process that starts as cold as the CLI (report.in_fresh_process: the face
workers' server starts before the imports, as `dfjax reenact` starts it), timed over the whole call
(model loading, the first faces, compiling, writing) as frames per second
and as a fraction of the ceiling. Reenact finds every driver face first and then generates and writes,
so unlike swap its stages do not overlap: expect well under the ceiling.

Without --model, a throw-away reenactor is trained for a few steps on the built-in synthetic identity (the timing
depends on the model's size, not on how good it is). The default driver is
../shared/data/real/ffpp_004.mp4 (720p, 309 frames).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import numpy as np  # noqa: E402
from report import Reporter, Stages, available_cores, cpu_timed, in_fresh_process, throwaway_model  # noqa: E402

from dfjax import media  # noqa: E402

DEFAULT_DRIVER = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "ffpp_004.mp4"


def timed_reenact(model_dir: str, driver: str, output: str) -> list:
    """[summary, wall seconds] of one `reenact` call (called by `in_fresh_process`)."""
    from dfjax.reenact import reenact

    t0 = time.perf_counter()
    summary = reenact(model_dir, driver, output, overwrite=True)
    return [summary, time.perf_counter() - t0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a reenact workdir (default: a throw-away one)")
    parser.add_argument("--driver", default=str(DEFAULT_DRIVER))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    emit = Reporter()
    driver = Path(args.driver)
    if not driver.exists():
        emit({"benchmark": "reenact", "skipped": f"{driver} not found"})
        return

    import jax

    from dfjax.data.controls import controls_from_meta
    from dfjax.faces.retarget import reference_of, retarget
    from dfjax.reenact import ReenactOptions, driver_finder, load_reenactor
    from swap import timed_decode, timed_faces

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(args.model) if args.model else throwaway_model("configs/reenact.py:tiny", name="reenactor")
        reenactor = load_reenactor(model_dir)
        info = media.probe(driver)
        n = info.frames
        height, width = reenactor.frame.shape[:2]
        cores = available_cores()
        emit({"benchmark": "reenact", "case": "header", "date": date.today().isoformat(), "driver": driver.name,
              "driver_size": [info.width, info.height], "frames": n, "target_size": [width, height],
              "model": str(model_dir) if args.model else "throw-away", "model_step": reenactor.model.step,
              "resolution": reenactor.res, "backend": jax.default_backend(), "cores": cores})
        stage = Stages(emit, "reenact", n, cores)

        frames, wall, cpu = timed_decode(driver, info)
        stage("decode", wall, cpu)
        finder = driver_finder(reenactor, ReenactOptions())
        units, wall, cpu = timed_faces(frames, driver, info, finder, True)
        stage("faces", wall, cpu, note="decoded frames")
        del frames
        metas = {index: meta for unit in units for index, _, _, meta in unit.faces}
        found = sorted(metas)
        controls = controls_from_meta([metas[i] for i in found])
        driven = retarget(*controls, reference_of(controls.landmarks, controls.pose), reenactor.reference)
        reenactor.generate(driven, np.asarray(found))  # compile outside the timing
        faces, wall, cpu = cpu_timed(lambda: reenactor.generate(driven, np.asarray(found)))
        stage("maps+generation", wall, cpu, faces=len(found))

        def composite():
            out = []
            for k in range(len(found)):
                frame, mask = reenactor.composite(faces[k], driven.landmarks[k])
                ys, xs = np.nonzero(mask)
                _ = (xs.min(), ys.min(), xs.max(), ys.max()) if len(xs) else None  # the sidecar's box
                out.append((frame, mask))
            return out

        composited, wall, cpu = cpu_timed(composite)
        stage("paste", wall, cpu)

        def encode():
            with media.VideoWriter(Path(tmp) / "enc.mp4", info.fps, width, height) as writer, \
                    media.VideoWriter(Path(tmp) / "enc.masks.mkv", info.fps, width, height, gray=True) as masks:
                for frame, mask in composited:
                    writer.write(frame)
                    masks.write(mask)

        _, wall, cpu = cpu_timed(encode)
        stage("encode", wall, cpu, note="H.264 output and FFV1 masks")
        ceiling = stage.ceiling({"decode": ("decode",), "encode": ("encode",)})
        summary, seconds = in_fresh_process(__file__, "timed_reenact", str(model_dir), str(driver),
                                            str(Path(tmp) / "end_to_end.mp4"), face_workers_first=True)
        emit({"benchmark": "reenact", "case": "end_to_end", "seconds": round(seconds, 2),
              "frames_per_s": round(n / seconds, 1), "fraction_of_ceiling": round(n / seconds / ceiling, 2),
              "frames_reenacted": summary["frames_reenacted"]})
    if args.out:
        emit.save(args.out)


if __name__ == "__main__":
    main()
