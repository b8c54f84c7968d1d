"""Landmark smoothing: One Euro vs Kalman vs none, against exact landmarks and on real video (issue 14 item 5).

Run (about 8 minutes on 2 busy cores):

    .venv/bin/python benchmarks/smoothing.py --out benchmarks/results/smoothing-$(date +%F).jsonl

For every smoothing kind (`ExtractOptions(smoothing=...)`, dfjax.faces.smooth, default parameters)
the faces are extracted with `dfjax.extract.extract` and the landmarks read back from the face set's
meta.jsonl (one face per frame, matched by frame index). Every extraction and swap finds faces with
`--detector` (default "hog,cnn": dlib's CNN where HOG finds nothing, since HOG never finds synthetic
identity b; on the real videos HOG finds every face, so it is the plain default there).

1. Synthetic (`dfjax synth`, 256 px frames, 128 px face sets, identities a and b, `--frames` long,
   120 by default to keep the run short; `--synth DIR` reuses or keeps a render), against the exact
   landmarks of DIR/truth/<name>.npz:
   - error: mean point distance to the exact points, px, and over the truth's inter-ocular distance
     (outer eye corners 36 and 45, per frame); also the 95th percentile and the maximum of the
     per-frame mean error, where a filter's overshoot shows;
   - jitter: mean frame-to-frame change |e(t) - e(t-1)| of the error e = pred - truth, px: the
     noise, with the true motion taken out;
   - lag: the fractional shift tau (0 to 4 frames, step 0.1) that minimises the mean
     |pred(t) - truth(t - tau)| (truth linearly interpolated, frames t >= 4 only, so every tau is
     scored on the same frames), and the error at that tau. `lag_debiased_frames` is the same search
     after removing each point's mean offset (dlib's constant bias on the rendered faces, which would
     otherwise pull the search) at each tau.
2. Real (../shared/data/real/ffpp_004.mp4 and ffpp_634.mp4, 720p at 25 fps; their first `--real-frames`
   frames, 150 by default, copied losslessly, so that the 12 swaps and extractions fit the time; a
   `"skipped"` line if missing): no truth, so jitter is the mean |second difference|
   |L(t+1) - 2 L(t) + L(t-1)| of the landmarks, px and over
   the inter-ocular distance. Then each video is swapped (`dfjax.swap.swap`, lossless, a2b) with every
   smoothing kind, using `--model WORKDIR` or else configs/swap.py:tiny trained `--train-steps` steps on
   the synthetic face sets; the swapped video is extracted again with smoothing "none" and the same
   second-difference jitter is reported for the swapped face. The re-extraction's own detector noise
   is in every row alike, so the differences between rows come from where the face was pasted.

Every line carries the seconds its stage took; a "stages" line sums them, and a final "summary" line
names the kind with the lowest synthetic error, jitter and lag (means over the synthetic videos; a list
when tied), and of the real and swapped-face jitter.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from report import Reporter  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
DEFAULT_VIDEOS = [REAL / "ffpp_004.mp4", REAL / "ffpp_634.mp4"]
KINDS = ("one-euro", "kalman", "none")
NAMES = ("a", "b")
MAX_LAG, LAG_STEP = 4.0, 0.1
BENCH = "smoothing"
DETECTOR = "hog,cnn"  # HOG, and dlib's CNN where HOG finds nothing: HOG never finds synthetic identity b


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def r(value: float, digits: int = 4) -> float:
    return round(float(value), digits)


# ----------------------------------------------------------------------------- landmarks

def extract_landmarks(video: Path, out: Path, kind: str, workers: int,
                      detector: str) -> tuple[dict[int, np.ndarray], float]:
    """Frame index -> (68, 2) landmarks of `video` extracted with smoothing `kind`, and the seconds taken."""
    from dfjax.data.faceset import FaceSet
    from dfjax.extract import extract
    from dfjax.faces.pipeline import ExtractOptions

    started = time.perf_counter()
    extract([video], out, ExtractOptions(smoothing=kind, workers=workers, detector=detector), overwrite=True)
    seconds = time.perf_counter() - started
    found: dict[int, np.ndarray] = {}
    for meta in FaceSet(out).meta:
        found.setdefault(int(meta["frame"]), np.asarray(meta["landmarks"], np.float64).reshape(68, 2))
    shutil.rmtree(out, ignore_errors=True)
    return found, seconds


def iod(landmarks: np.ndarray) -> np.ndarray:
    """Inter-ocular distance (outer eye corners 36 and 45) of (..., 68, 2) landmarks."""
    return np.linalg.norm(landmarks[..., 45, :] - landmarks[..., 36, :], axis=-1)


def shifted(truth: np.ndarray, frames: np.ndarray, tau: float) -> np.ndarray:
    """truth(t - tau) at the given frames, linearly interpolated between frames."""
    s = frames - tau
    lo = np.clip(np.floor(s).astype(int), 0, len(truth) - 1)
    hi = np.clip(lo + 1, 0, len(truth) - 1)
    w = (s - lo)[:, None, None]
    return (1 - w) * truth[lo] + w * truth[hi]


def synthetic_scores(pred: dict[int, np.ndarray], truth: np.ndarray) -> dict:
    """Error, jitter and lag of predicted landmarks against the exact ones (T, 68, 2)."""
    frames = np.array(sorted(f for f in pred if 0 <= f < len(truth)))
    p, t = np.stack([pred[f] for f in frames]), truth[frames]
    dist = np.linalg.norm(p - t, axis=-1)  # (N, 68)
    per_frame = dist.mean(axis=1)
    err = p - t
    consecutive = np.diff(frames) == 1
    jitter = np.linalg.norm(err[1:] - err[:-1], axis=-1)[consecutive]
    raw_jitter_truth = np.linalg.norm(t[1:] - t[:-1], axis=-1)[consecutive]  # the true motion per frame

    late = frames >= MAX_LAG
    taus = np.round(np.arange(0.0, MAX_LAG + 1e-9, LAG_STEP), 2)
    costs, costs_debiased = [], []
    for tau in taus:
        diff = p[late] - shifted(truth, frames[late].astype(np.float64), tau)
        costs.append(np.linalg.norm(diff, axis=-1).mean())
        costs_debiased.append(np.linalg.norm(diff - diff.mean(axis=0, keepdims=True), axis=-1).mean())
    best, best_d = int(np.argmin(costs)), int(np.argmin(costs_debiased))
    bias = np.linalg.norm(err.mean(axis=0), axis=-1).mean()
    return {"frames_scored": len(frames), "frames_missing": int(len(truth) - len(frames)),
            "error_px": r(dist.mean(), 3), "error_iod": r((dist / iod(t)[:, None]).mean()),
            "error_p95_px": r(np.percentile(per_frame, 95), 3), "error_max_px": r(per_frame.max(), 3),
            "error_max_frame": int(frames[per_frame.argmax()]), "mean_bias_px": r(bias, 3),
            "jitter_px": r(jitter.mean(), 3), "jitter_iod": r(jitter.mean() / iod(t).mean()),
            "true_motion_px_per_frame": r(raw_jitter_truth.mean(), 3),
            "lag_frames": float(taus[best]), "error_at_lag_px": r(costs[best], 3),
            "error_at_lag0_px": r(costs[0], 3),
            "lag_debiased_frames": float(taus[best_d]), "error_debiased_at_lag_px": r(costs_debiased[best_d], 3),
            "error_debiased_at_lag0_px": r(costs_debiased[0], 3),
            "inter_ocular_px": r(iod(t).mean(), 1)}


def second_difference_jitter(found: dict[int, np.ndarray]) -> dict:
    """Mean |L(t+1) - 2 L(t) + L(t-1)| over points and runs of three consecutive frames, px and / IOD."""
    frames = sorted(found)
    triples = [f for f in frames if f - 1 in found and f + 1 in found]
    if not triples:
        return {"frames": len(frames), "triples": 0}
    prev = np.stack([found[f - 1] for f in triples])
    mid = np.stack([found[f] for f in triples])
    nxt = np.stack([found[f + 1] for f in triples])
    d2 = np.linalg.norm(nxt - 2 * mid + prev, axis=-1)  # (N, 68)
    d1 = np.linalg.norm(nxt - mid, axis=-1)
    scale = iod(mid)
    return {"frames": len(frames), "triples": len(triples), "jitter2_px": r(d2.mean(), 3),
            "jitter2_iod": r((d2 / scale[:, None]).mean(), 5), "step_px": r(d1.mean(), 3),
            "inter_ocular_px": r(scale.mean(), 1)}


# ----------------------------------------------------------------------------- stages

def synthetic_stage(synth: Path, kinds: tuple[str, ...], workers: int, detector: str, emit: Reporter,
                    work: Path) -> dict:
    """Rows per (video, kind); returns {kind: [scores per video]}."""
    results: dict[str, list[dict]] = {k: [] for k in kinds}
    for name in NAMES:
        video = synth / "videos" / f"{name}.mp4"
        with np.load(synth / "truth" / f"{name}.npz") as f:
            truth = f["landmarks"].astype(np.float64)
        for kind in kinds:
            found, seconds = extract_landmarks(video, work / f"synth_{name}_{kind}", kind, workers, detector)
            scores = synthetic_scores(found, truth)
            results[kind].append(scores)
            emit({"benchmark": BENCH, "case": "synthetic", "video": f"{name}.mp4", "smoothing": kind, **scores,
                  "seconds": r(seconds, 2)})
    return results


def train_model(synth: Path, steps: int, workdir: Path) -> tuple[Path, dict]:
    from dfjax.config import load_config
    from dfjax.training.core import train

    a, b = synth / "facesets" / "a", synth / "facesets" / "b"
    cfg = load_config("swap.py:tiny", [f"data.a='{a}'", f"data.b='{b}'", f"train.steps={steps}",
                                        "log.preview_every=1000000", f"log.checkpoint_every={steps}"])
    started = time.perf_counter()
    summary = train(cfg, workdir)
    return workdir, {"steps": steps, "final_loss": summary["loss"], "seconds": r(time.perf_counter() - started, 1)}


def clip(video: Path, frames: int, out: Path) -> Path:
    """The first `frames` frames of `video`, written losslessly (RGB H.264) to `out`."""
    from dfjax import media

    info = media.probe(video)
    with media.VideoWriter(out, info.fps, info.width, info.height, lossless=True, preset="ultrafast") as writer:
        for index, frame in media.iter_frames(video):
            if index >= frames:
                break
            writer.write(frame)
    return out


def real_stage(videos: list[Path], real_frames: int, kinds: tuple[str, ...], model: Path | None, workers: int,
               detector: str, emit: Reporter, work: Path) -> dict:
    """Raw and swapped-face jitter per (video, kind); returns {"raw"|"swapped": {kind: [jitter2_iod]}}."""
    from dfjax.swap import SwapOptions, swap

    out: dict[str, dict[str, list[float]]] = {"raw": {k: [] for k in kinds}, "swapped": {k: [] for k in kinds}}
    for video in videos:
        name = video.name
        if real_frames:
            video = clip(video, real_frames, work / "clips" / video.name)
        for kind in kinds:
            found, seconds = extract_landmarks(video, work / f"real_{video.stem}_{kind}", kind, workers, detector)
            scores = second_difference_jitter(found)
            out["raw"][kind].append(scores.get("jitter2_iod", float("nan")))
            emit({"benchmark": BENCH, "case": "real", "video": name, "smoothing": kind, **scores,
                  "seconds": r(seconds, 2)})
        if model is None:
            continue
        for kind in kinds:
            swapped = work / f"swap_{video.stem}_{kind}.mp4"
            started = time.perf_counter()
            summary = swap(video, swapped, model, SwapOptions(smoothing=kind, workers=workers, detector=detector,
                                                                 lossless=True),
                           overwrite=True)
            swap_seconds = time.perf_counter() - started
            found, seconds = extract_landmarks(swapped, work / f"reextract_{video.stem}_{kind}", "none", workers,
                                              detector)
            for path in (swapped, swapped.with_suffix(".masks.mkv"), swapped.with_suffix(".json")):
                path.unlink(missing_ok=True)
            scores = second_difference_jitter(found)
            out["swapped"][kind].append(scores.get("jitter2_iod", float("nan")))
            emit({"benchmark": BENCH, "case": "real_swapped", "video": name, "smoothing": kind,
                  "reextract_smoothing": "none", "frames_swapped": summary["frames_swapped"], **scores,
                  "swap_seconds": r(swap_seconds, 2), "reextract_seconds": r(seconds, 2)})
    return out


def lowest(values: dict[str, list[float]]) -> dict:
    means = {k: float(np.mean(v)) for k, v in values.items() if v and np.all(np.isfinite(v))}
    if not means:
        return {}
    low = min(means.values())
    best = [k for k, v in means.items() if v <= low + 1e-9]  # all of them when tied
    return {"best": best[0] if len(best) == 1 else best, "means": {k: r(v, 5) for k, v in means.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="*", type=Path, default=DEFAULT_VIDEOS, help="real videos")
    parser.add_argument("--frames", type=int, default=120, help="frames per synthetic video")
    parser.add_argument("--real-frames", type=int, default=150,
                        help="use the first N frames of each real video (0: all of it)")
    parser.add_argument("--synth", type=Path, default=None,
                        help="a `dfjax synth` folder to reuse (rendered there when it holds no finished render)")
    parser.add_argument("--model", type=Path, default=None, help="swap model workdir (else a tiny one is trained)")
    parser.add_argument("--train-steps", type=int, default=300, help="steps of the tiny model trained without --model")
    parser.add_argument("--workers", type=int, default=2, help="face-finding worker processes")
    parser.add_argument("--detector", default=DETECTOR,
                        help="face detector of every extraction and swap (dlib's HOG misses identity b entirely)")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--no-swap", action="store_true", help="skip the swapped-face rows")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the render and the model here")
    parser.add_argument("--out", type=Path, help="also write the JSON lines here")
    args = parser.parse_args(argv)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    if not kinds or any(k not in KINDS for k in kinds):
        parser.error(f"--kinds takes {', '.join(KINDS)}")

    import dlib
    import jax

    from dfjax.data.synthetic import is_complete, synthesize
    from dfjax.faces.smooth import KALMAN_DEFAULTS, ONE_EURO_DEFAULTS

    emit = Reporter()
    started_all = time.perf_counter()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="smoothing_"))
    work.mkdir(parents=True, exist_ok=True)
    emit({"benchmark": BENCH, "case": "header", "date": dt.date.today().isoformat(), "cpu_count": os.cpu_count(),
          "load_average": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
          "platform": platform.platform(), "dlib": dlib.__version__, "jax_backend": jax.default_backend(),
          "kinds": list(kinds), "one_euro": ONE_EURO_DEFAULTS, "kalman": KALMAN_DEFAULTS, "workers": args.workers,
          "detector": args.detector,
          "synthetic_frames": args.frames, "real_frames": args.real_frames or "all",
          "videos": [str(v) for v in args.videos],
          "model": str(args.model) if args.model else f"configs/swap.py:tiny, {args.train_steps} steps on synth"})
    stages: dict[str, float] = {}

    synth = args.synth or work / "synth"
    t0 = time.perf_counter()
    if is_complete(synth):
        log(f"reusing the render in {synth}")
        stages["synth_render"] = 0.0
    else:
        log(f"rendering {args.frames} synthetic frames per identity into {synth}")
        synthesize(synth, frames=args.frames, size=256, face_size=128, overwrite=True)
        stages["synth_render"] = r(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    log("synthetic: extracting with every smoothing kind")
    synthetic = synthetic_stage(synth, kinds, args.workers, args.detector, emit, work)
    stages["synthetic_extract"] = r(time.perf_counter() - t0, 1)

    real_videos = [v for v in args.videos if v.exists()]
    missing = [str(v) for v in args.videos if not v.exists()]
    if missing:
        emit({"benchmark": BENCH, "case": "real", "skipped": f"videos not found: {', '.join(missing)}"})
    real = {"raw": {}, "swapped": {}}
    if real_videos:
        model = args.model
        if model is None and not args.no_swap:
            log(f"training configs/swap.py:tiny for {args.train_steps} steps on the synthetic face sets")
            t0 = time.perf_counter()
            model, info = train_model(synth, args.train_steps, work / "model")
            stages["train"] = r(time.perf_counter() - t0, 1)
            emit({"benchmark": BENCH, "case": "train", "config": "swap.py:tiny", "workdir": str(model), **info})
        elif args.no_swap:
            model = None
            emit({"benchmark": BENCH, "case": "real_swapped", "skipped": "--no-swap"})
        t0 = time.perf_counter()
        log("real: extracting, swapping, re-extracting")
        real = real_stage(real_videos, args.real_frames, kinds, model, args.workers, args.detector, emit, work)
        stages["real"] = r(time.perf_counter() - t0, 1)

    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    stages["total"] = r(time.perf_counter() - started_all, 1)
    emit({"benchmark": BENCH, "case": "stages", "seconds": stages})
    emit({"benchmark": BENCH, "case": "summary",
          "synthetic_error_iod": lowest({k: [s["error_iod"] for s in v] for k, v in synthetic.items()}),
          "synthetic_jitter_px": lowest({k: [s["jitter_px"] for s in v] for k, v in synthetic.items()}),
          "synthetic_lag_frames": lowest({k: [s["lag_frames"] for s in v] for k, v in synthetic.items()}),
          "synthetic_lag_debiased_frames": lowest({k: [s["lag_debiased_frames"] for s in v]
                                                   for k, v in synthetic.items()}),
          "real_jitter2_iod": lowest(real["raw"]), "swapped_jitter2_iod": lowest(real["swapped"])})
    if args.out:
        emit.save(args.out)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
