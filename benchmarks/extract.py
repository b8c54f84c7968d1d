"""Extract benchmark: face-finding throughput and coverage, naive versus the default tracker.

Run (3 to 4 minutes on 2 shared CPU cores):

    .venv/bin/python benchmarks/extract.py --out benchmarks/results/extract-$(date +%F).jsonl

For each video (default: the two FaceForensics++ presenters in ../shared/data/real), the frames are
decoded once into memory and then, in this one process and run:

- naive: dlib HOG at full resolution on every frame, landmarks on the largest face;
- default: `FaceTracker` with its defaults (HOG on a <= 640 px copy every N frames, in-region
  verification and landmark tracking in between, One Euro smoothing).

Printed (JSON lines only, progress on stderr): a header with the machine, one line per video and
method (throughput excluding decode, share of frames with a face, CPU seconds as well as wall
seconds because the machine is shared), one comparison line per video (speed ratio, how many of
naive's faces the default also finds, landmark jitter raw vs smoothed over the stillest 50 frames,
the frames where the default missed), and one end-to-end line for `dfjax.extract.extract` on all
videos with every core (decode, workers, writing the face set). Missing videos give one
`"skipped"` line and exit 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Reporter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "real"
DEFAULT_VIDEOS = [DATA / "ffpp_004.mp4", DATA / "ffpp_634.mp4"]
WINDOW = 50          # frames in the jitter window
MATCH_IOU = 0.5      # default's box must overlap naive's this much to count as the same face


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict:
    import cv2
    import dlib

    return {"date": dt.date.today().isoformat(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "dlib": dlib.__version__, "opencv": cv2.__version__,
            "numpy": np.__version__, "platform": platform.platform(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


# ----------------------------------------------------------------------------- timed runs

class Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def run_naive(frames: list[np.ndarray]) -> tuple[list, list, "Timer"]:
    """Full-resolution HOG on every frame + landmarks of the largest face: (box or None per frame)."""
    from dfjax.faces.detect import FaceDetector
    from dfjax.faces.landmarks import LandmarkPredictor

    detector, predictor = FaceDetector(max_side=0), LandmarkPredictor()
    boxes, landmarks = [], []
    with Timer() as timer:
        for frame in frames:
            found = detector(frame)
            if found:
                best = max(found, key=lambda d: d.area)
                boxes.append(best.box)
                landmarks.append(predictor(frame, best.box))
            else:
                boxes.append(None)
                landmarks.append(None)
    return boxes, landmarks, timer


def run_default(frames: list[np.ndarray], fps: float) -> tuple[list, list, dict, "Timer"]:
    """`FaceTracker` with its defaults; also counts full-frame and in-region detector calls."""
    from dfjax.faces.detect import FaceDetector
    from dfjax.faces.landmarks import LandmarkPredictor
    from dfjax.faces.track import FaceTracker

    calls = {"full": 0, "region": 0, "region_empty": 0}

    class CountingDetector(FaceDetector):
        def __call__(self, *args, **kwargs):
            calls["full"] += 1
            return super().__call__(*args, **kwargs)

        def in_region(self, *args, **kwargs):
            calls["region"] += 1
            found = super().in_region(*args, **kwargs)
            calls["region_empty"] += not found
            return found

    tracker = FaceTracker(CountingDetector(), LandmarkPredictor(), fps=fps)
    faces, reasons = [], []
    with Timer() as timer:
        for index, frame in enumerate(frames):
            face, reason = tracker(frame, index)
            faces.append(face)
            reasons.append(reason)
    return faces, reasons, calls, timer


# ----------------------------------------------------------------------------- measures

def runs(indices: list[int]) -> list[list[int]]:
    """Consecutive runs [[first, last], ...] of a sorted list of frame indices."""
    out: list[list[int]] = []
    for i in indices:
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def jitter(sequence: np.ndarray, iod: np.ndarray, order: int = 1) -> float:
    """Mean over frames of the mean per-point frame-to-frame displacement, over inter-ocular distance.

    order=2 uses the second difference (x[t] - 2 x[t-1] + x[t-2]) instead: steady motion cancels
    out of it, so it isolates the shake that the window's residual head motion adds to order 1.
    """
    step = np.linalg.norm(np.diff(sequence, n=order, axis=0), axis=-1).mean(axis=1)  # (T-order,)
    return float(np.mean(step / iod[order:]))


def stillest_window(faces: list, length: int) -> tuple[int, float] | None:
    """Start of the `length`-frame window (face in every frame) where the smoothed face centre's
    path length is smallest, and that path length in pixels."""
    best = None
    centres = [None if f is None else f.landmarks.mean(axis=0) for f in faces]
    for start in range(len(faces) - length + 1):
        window = centres[start:start + length]
        if any(c is None for c in window):
            continue
        path = float(np.linalg.norm(np.diff(np.array(window), axis=0), axis=1).sum())
        if best is None or path < best[1]:
            best = (start, path)
    return best


def compare(name: str, fps: float, naive_boxes: list, naive_landmarks: list, faces: list, reasons: list,
            naive_t: Timer, default_t: Timer) -> dict:
    from dfjax.faces.detect import iou
    from dfjax.faces.quality import inter_ocular_distance

    n = len(faces)
    naive_found = [i for i in range(n) if naive_boxes[i] is not None]
    matched = [i for i in naive_found if faces[i] is not None and iou(faces[i].box, naive_boxes[i]) >= MATCH_IOU]
    missed = sorted(set(naive_found) - set(matched))
    no_face = [i for i in range(n) if faces[i] is None]
    out = {"benchmark": "extract", "video": name, "case": "compare",
           "speed_ratio": round(naive_t.wall / default_t.wall, 2),
           "speed_ratio_cpu": round(naive_t.cpu / default_t.cpu, 2),
           "found_of_naive": round(len(matched) / max(1, len(naive_found)), 4),
           "naive_faces": len(naive_found), "default_matched": len(matched),
           "missed_frames": runs(missed),
           "default_no_face_frames": runs(no_face),
           "default_no_face_reasons": sorted({reasons[i] for i in no_face}),
           "default_extra_frames": len([i for i in range(n) if faces[i] is not None and naive_boxes[i] is None])}
    # Where the two disagree on a frame both found: the default's box against naive's.
    both = [i for i in range(n) if faces[i] is not None and naive_boxes[i] is not None]
    if both:
        ious = np.array([iou(faces[i].box, naive_boxes[i]) for i in both])
        out["box_iou_default_vs_naive"] = {"mean": round(float(ious.mean()), 3), "min": round(float(ious.min()), 3),
                                           "min_frame": both[int(ious.argmin())]}
    window = stillest_window(faces, WINDOW)
    if window is None:
        out["jitter"] = None
        return out
    start, path = window
    span = slice(start, start + WINDOW)
    smooth = np.stack([f.landmarks for f in faces[span]]).astype(np.float64)
    raw = np.stack([f.raw_landmarks for f in faces[span]]).astype(np.float64)
    iod = np.array([inter_ocular_distance(f.raw_landmarks) for f in faces[span]])
    record = {"window": [start, start + WINDOW], "centre_path_px": round(path, 2),
              "inter_ocular_px": round(float(iod.mean()), 1),
              "raw": round(jitter(raw, iod), 5), "smoothed": round(jitter(smooth, iod), 5)}
    record["smoothed_over_raw"] = round(record["smoothed"] / record["raw"], 3) if record["raw"] else None
    record["raw_second_diff"] = round(jitter(raw, iod, 2), 5)
    record["smoothed_second_diff"] = round(jitter(smooth, iod, 2), 5)
    if all(naive_landmarks[i] is not None for i in range(start, start + WINDOW)):
        record["naive_raw"] = round(jitter(np.stack(naive_landmarks[span]).astype(np.float64), iod), 5)
    record["resets_in_window"] = sum(1 for i in range(start + 1, start + WINDOW)
                                     if np.allclose(faces[i].landmarks, faces[i].raw_landmarks, atol=1e-3))
    out["jitter"] = record
    return out


# ----------------------------------------------------------------------------- main

def bench_video(path: Path, limit: int | None, report: Reporter) -> int:
    from dfjax import media

    info = media.probe(path)
    fps = float(info.fps)
    log(f"{path.name}: decoding")
    with Timer() as decode_t:
        frames = [frame for _, frame in media.iter_frames(path, 0, limit)]
    n = len(frames)
    report({"benchmark": "extract", "video": path.name, "case": "decode", "width": info.width,
            "height": info.height, "fps": fps, "frames": n, "seconds": round(decode_t.wall, 3),
            "frames_per_s": round(n / decode_t.wall, 1)})

    log(f"{path.name}: naive (full-resolution HOG on {n} frames)")
    naive_boxes, naive_landmarks, naive_t = run_naive(frames)
    log(f"{path.name}: default tracker")
    faces, reasons, calls, default_t = run_default(frames, fps)

    for method, timer, found, extra in (
            ("naive", naive_t, sum(b is not None for b in naive_boxes), {"full_detections": n}),
            ("default", default_t, sum(f is not None for f in faces),
             {"full_detections": calls["full"], "region_checks": calls["region"],
              "region_checks_empty": calls["region_empty"],
              "frames_detected": sum(1 for f in faces if f is not None and f.detected)})):
        report({"benchmark": "extract", "video": path.name, "case": method, "frames": n,
                "seconds": round(timer.wall, 3), "cpu_seconds": round(timer.cpu, 3),
                "frames_per_s": round(n / timer.wall, 2), "frames_with_face": found,
                "share_with_face": round(found / n, 4), **extra})
    report(compare(path.name, fps, naive_boxes, naive_landmarks, faces, reasons, naive_t, default_t))
    report(stage_costs(path.name, frames, faces, decode_t, default_t))
    return n


def stage_costs(name: str, frames: list[np.ndarray], faces: list, decode_t: Timer, default_t: Timer) -> dict:
    """CPU milliseconds per frame of each stage `dfjax.extract.extract` runs, measured here in one
    process, and the throughput ceiling they imply on this machine's cores (for the end-to-end line)."""
    import pickle

    from dfjax.faces.pipeline import STRETCH, WARMUP_FRAMES, ExtractOptions, describe_face

    options = ExtractOptions()
    n = len(frames)
    with Timer() as describe_t:
        for frame, face in zip(frames, faces):
            if face is not None:
                describe_face(frame, face, options)
    with Timer() as transfer_t:  # what the pool does with every frame: pickle in the main process, unpickle in a worker
        for frame in frames:
            pickle.loads(pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL))
    ms = {"decode": 1000 * decode_t.cpu / n, "find_faces": 1000 * default_t.cpu / n,
          "warmup_refind": 1000 * default_t.cpu / n * WARMUP_FRAMES / STRETCH,
          "describe": 1000 * describe_t.cpu / n, "transfer": 1000 * transfer_t.cpu / n}
    total = sum(ms.values())
    cores = os.cpu_count() or 1
    return {"benchmark": "extract", "video": name, "case": "stage_cpu_ms_per_frame",
            **{k: round(v, 2) for k, v in ms.items()}, "total": round(total, 2),
            "ceiling_frames_per_s": round(1000 * cores / total, 1), "cores": cores,
            "note": "describe = dfjax.faces.pipeline.describe_face (align, mask, pose, gaze, blur); decode is "
                    "multi-threaded, so its CPU time can exceed its wall time"}


def bench_end_to_end(videos: list[Path], limit: int | None, report: Reporter) -> None:
    from dfjax.extract import extract
    from dfjax.faces.pipeline import ExtractOptions

    if limit is not None:
        log("end-to-end skipped: --frames limits the per-method runs only")
        return

    class Clock:
        """Stands in for the rich progress bar: notes when each unit's frames are done."""

        def __init__(self):
            self.start, self.marks = time.perf_counter(), []

        def add_task(self, *args, **kwargs):
            return 0

        def advance(self, task, frames):
            self.marks.append((time.perf_counter() - self.start, frames))

    options = ExtractOptions(workers=os.cpu_count() or 1)
    log(f"end-to-end: dfjax.extract.extract on {len(videos)} videos with {options.workers} workers")
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        with Timer() as timer:
            clock = Clock()
            summary = extract([str(v) for v in videos], Path(tmp) / "faceset", options, progress=clock)
        finish = time.perf_counter() - clock.start
    first_at, first_frames = clock.marks[0]
    last_at = clock.marks[-1][0]
    steady = (summary["frames_read"] - first_frames) / (last_at - first_at) if last_at > first_at else None
    report({"benchmark": "extract", "case": "end_to_end", "videos": [v.name for v in videos],
            "load_average": [round(x, 2) for x in os.getloadavg()], "workers": options.workers, "frames": summary["frames_read"], "faces_kept": summary["faces_kept"],
            "frames_without_face": summary["frames_without_face"], "dropped": summary["dropped"],
            "seconds": round(timer.wall, 2), "frames_per_s": round(summary["frames_read"] / timer.wall, 2),
            "first_unit_done_s": round(first_at, 2), "first_unit_frames": first_frames,
            "steady_frames_per_s": round(steady, 2) if steady else None,
            "after_last_unit_s": round(finish - last_at, 2),
            "extract_reported_seconds": summary["seconds"],
            "extract_reported_frames_per_s": summary["frames_per_second"]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="*", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--out", type=Path, help="also write the JSON lines here (e.g. benchmarks/results/...)")
    parser.add_argument("--frames", type=int, help="only the first N frames of each video (quick check; "
                                                   "no end-to-end run)")
    parser.add_argument("--no-end-to-end", action="store_true", help="skip the dfjax.extract.extract run")
    args = parser.parse_args(argv)

    report = Reporter()
    missing = [str(v) for v in args.videos if not v.exists()]
    if missing:
        report({"benchmark": "extract", "skipped": f"videos not found: {', '.join(missing)}"})
        return 0
    import cv2

    cv2.setNumThreads(1)  # as in extract's workers: one core per tracker, CPU time comparable
    report({"benchmark": "extract", "case": "header", **machine(), "cv2_threads": 1,
            "videos": [str(v) for v in args.videos], "frames_limit": args.frames})
    for video in args.videos:
        bench_video(video, args.frames, report)
    if not args.no_end_to_end:
        bench_end_to_end(args.videos, args.frames, report)
    if args.out:
        report.save(args.out)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
