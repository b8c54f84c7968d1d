"""Does the deep-video-portrait conditioning branch make swaps follow the driver's head pose and gaze?

    .venv/bin/python benchmarks/dvp_control.py --out benchmarks/results/dvp_control-$(date +%F).jsonl

Results (benchmarks/results/, all on 2 CPU cores):
- dvp_control-2000steps-2026-11-23.jsonl and dvp_control-eyes-2026-11-23.png: `--frames 300 --steps 2000
  --batch 8 --grid ...`, about 17 min (the branch-on step about 0.35 s, off 0.15 s);
- dvp_control-real-2000steps-2026-11-23.jsonl and dvp_control-real-eyes-2026-11-23.png: `--real
  runs/ffpp/faces_004 runs/ffpp/faces_634 ../shared/data/real/ffpp_004.mp4 --steps 2000 --batch 8`
  (face sets extracted here at 128 px), 19 min; with no ground truth, the swaps' estimates are
  compared with the same estimates on the driving video (gaze: dlib landmarks, frames where a pupil
  is found in the driver); its eye grid was drawn afterwards from the run's videos by `eye_grid`;
- dvp_control-swaponly-pose-2026-11-23.jsonl: `--workdir` of the first run with `--swap-only`: the same
  two models, the branch-on one also swapping with `--pose absolute` (1 min 22 s); and
  dvp_control-real-swaponly-pose-2026-11-23.jsonl, the same for the real run (3 min 45 s);
- earlier and shorter, with binary (not yet anti-aliased) eye maps: dvp_control-2026-11-23.jsonl
  (300 steps), dvp_control-600steps-2026-11-23.jsonl and dvp_control-real-2026-11-23.jsonl (600 steps);
  the 2,000-step file of commit c2ba47f also had binary eye maps.

On synthetic data with exact ground truth (`dfjax.data.synthetic.synthesize`: identities a and b,
yaw within about +-40, gaze +-15 pitch / +-20 yaw degrees, blinks), the tiny swap model of
configs/swap_dvp.py:tiny is trained twice on the same face sets with the same seed and steps:
branch on (model.cond_window=3) and off (model.cond_window=0, exactly the plain model). Each swaps
a.mp4 to identity b (faces from the face set's alignments, so both see the same crops), and the
outputs are scored against the ground truth of the exact swap (truth/a_as_b_truth.npz: b's face
in a's frames, a's pose and gaze) and against the driving frames:

- head pose: dlib's 68 landmarks predicted on the output in the exact swap's face box, then
  `estimate_pose` (yaw, pitch, roll);
- gaze, two ways: `estimate_gaze` on the output with the exact swap's landmarks (is the generated
  pupil where b's pupil should be: the landmark detector's noise left out), and with the dlib
  landmarks of the output (what a detector-based evaluation sees);
- the same estimators on the exact swap video (`floor`: the estimators' own error) and on the
  driving video a.mp4 (`driver`).

Errors are mean absolute degrees over the frames whose eyes are open in the ground truth (gaze) or
all frames (pose); `vs_driver` compares the output's estimates with the same estimates on a.mp4.
One JSON line per model plus the header and the two reference lines.

The branch-on line also has `gaze_response` (`gaze_response`): with the face and every other map
held, the maps' gaze is swept over GAZE_SWEEP and the generated pupils re-estimated; the slope of
estimated on commanded gaze is 1 for full control, 0 for none (the plain model's, by construction).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from report import Reporter  # noqa: E402

import numpy as np  # noqa: E402

ANGLES = ("yaw", "pitch", "roll")


def estimates(video: Path, boxes_from: np.ndarray, gaze_landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Per frame: pose (N, 3) from dlib landmarks in the box of `boxes_from` (N, 68, 2), gaze (N, 2) with
    those landmarks and gaze (N, 2) with `gaze_landmarks`; NaN where the estimator saw no pupil."""
    from dfjax import media
    from dfjax.faces.gaze import estimate_gaze
    from dfjax.faces.landmarks import LandmarkPredictor, box_from_landmarks
    from dfjax.faces.pose import estimate_pose

    predictor = LandmarkPredictor()
    pose, gaze_dlib, gaze_truth = [], [], []
    for index, frame in media.iter_frames(video):
        h, w = frame.shape[:2]
        if index >= len(boxes_from) or not np.isfinite(boxes_from[index]).all():  # no face tracked here
            pose.append([np.nan] * 3)
            gaze_dlib.append([np.nan] * 2)
            gaze_truth.append([np.nan] * 2)
            continue
        points = predictor(frame, box_from_landmarks(boxes_from[index])).astype(np.float64)
        p = estimate_pose(points, w, h)
        pose.append([p.yaw, p.pitch, p.roll])
        g = estimate_gaze(frame, points)
        gaze_dlib.append([g.pitch, g.yaw])
        g = estimate_gaze(frame, gaze_landmarks[index]) if gaze_landmarks is not None else None
        gaze_truth.append([g.pitch, g.yaw] if g is not None else [np.nan] * 2)
    return {"pose": np.array(pose), "gaze_dlib": np.array(gaze_dlib), "gaze_truth_lm": np.array(gaze_truth)}


GAZE_METHODS = ("gaze_truth_lm", "gaze_dlib")


def compare(est: dict, pose: np.ndarray, gaze: dict[str, np.ndarray], rows: np.ndarray) -> dict:
    """Mean absolute errors and `tracking` (degrees) of estimates against a reference: pose (N, 3), and
    gaze (N, 2) by estimation method (the truth for every method, or the driver's own estimates);
    pose over the frames where both are known, gaze over those of `rows` (open eyes)."""
    r = lambda v: round(float(v), 2)  # noqa: E731
    both = np.isfinite(est["pose"]).all(axis=1) & np.isfinite(pose).all(axis=1)
    out = {f"pose_{n}_mae": r(np.mean(np.abs(est["pose"][both, i] - pose[both, i]))) for i, n in enumerate(ANGLES)}
    out.update({f"pose_{n}_tracking": tracking(est["pose"][both, i], pose[both, i]) for i, n in enumerate(ANGLES)})
    for method in GAZE_METHODS:
        got, want = est[method][rows], gaze[method][rows]
        seen = np.isfinite(got).all(axis=1) & np.isfinite(want).all(axis=1)
        diff = np.abs(got - want)[seen]
        out[f"{method}_pitch_mae"] = r(diff[:, 0].mean()) if seen.any() else None
        out[f"{method}_yaw_mae"] = r(diff[:, 1].mean()) if seen.any() else None
        out[f"{method}_frames"] = int(seen.sum())
        for i, n in enumerate(("pitch", "yaw")):
            out[f"{method}_{n}_tracking"] = tracking(got[seen, i], want[seen, i])
    return out


def tracking(estimated: np.ndarray, truth: np.ndarray) -> dict | None:
    """How well estimates follow the truth, apart from a constant offset: `bias` (mean signed error),
    `mae` once the bias is removed, `corr` (Pearson) and `slope` (least squares of estimate on truth).
    A swap whose eyes sit a pixel off the truth landmarks (its retargeted geometry) shifts every gaze
    estimate alike: that offset is the bias, and the rest says whether its pupils move with the gaze."""
    if len(truth) < 3:
        return None
    r = lambda v: round(float(v), 2)  # noqa: E731
    error = estimated - truth
    return {"bias": r(error.mean()), "mae": r(np.abs(error - error.mean()).mean()),
            "corr": r(np.corrcoef(estimated, truth)[0, 1]), "slope": r(np.polyfit(truth, estimated, 1)[0])}


GAZE_SWEEP = (-20.0, -10.0, 0.0, 10.0, 20.0)
UPSCALE = 4  # generated faces are estimated at 4x (a 64 px face's eye is about 8 px wide)


def _estimate_upscaled(face: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
    """(pitch, yaw) of a small face crop with its landmarks (crop pixels), estimated at UPSCALE x."""
    import cv2

    from dfjax.faces.align import resize_points
    from dfjax.faces.gaze import estimate_gaze

    big = cv2.resize(face, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
    g = estimate_gaze(big, resize_points(landmarks, UPSCALE))
    return g.pitch, g.yaw


def _slope(commanded: list[float], estimated: list[float]) -> float | None:
    """Least-squares slope of estimated on commanded angles (NaN estimates left out)."""
    x, y = np.asarray(commanded, np.float64), np.asarray(estimated, np.float64)
    seen = np.isfinite(y)
    if seen.sum() < 3 or np.ptp(x[seen]) == 0:
        return None
    return round(float(np.polyfit(x[seen], y[seen], 1)[0]), 3)


def gaze_response(model_dir: Path, video: Path, truth: dict, faces: int = 40) -> dict:
    """How far the generated pupils follow the gaze drawn in the maps, with everything else held.

    `faces` open-eyed frames of the driving video are cropped as the swap crops them (from the
    ground-truth landmarks) and their retargeted controls computed as the swap does; then the maps'
    gaze is set to each angle of GAZE_SWEEP in turn (yaw with pitch 0, then pitch with yaw 0), the
    target's face generated, and its gaze re-estimated (at UPSCALE x, with the retargeted landmarks
    the maps were drawn from). The slope of estimated on commanded angle is 1 for full control and 0
    for none; `calibration` is the same estimator's slope on the target's own training faces,
    reduced to the model's size, against their true gaze (the estimator's ceiling at that size).
    """
    import cv2

    from dfjax import media
    from dfjax.data.faceset import FaceSet
    from dfjax.faces.align import alignment_matrix, resize_points, warp_face
    from dfjax.faces.retarget import controls_from_meta
    from dfjax.training.core import load_trained
    from dfjax.swap import SwapOptions, Swapper, faceset_path

    model = load_trained(model_dir)
    swapper = Swapper(model, SwapOptions())
    if swapper.driver is None:
        return {}
    res, window = model.resolution, swapper.driver.window
    open_eyes = np.flatnonzero(~truth["blink"].astype(bool))
    chosen = set(open_eyes[np.linspace(0, len(open_eyes) - 1, faces).round().astype(int)].tolist())
    crops, controls = [], []
    for index, frame in media.iter_frames(video):
        if index in chosen:
            landmarks = truth["landmarks"][index].astype(np.float64)
            matrix = alignment_matrix(landmarks, res)
            crops.append(warp_face(frame, matrix, res))
            controls.append(swapper.driver.face(frame, {"landmarks": landmarks, "matrix": matrix}))
    out: dict = {"faces": len(crops)}
    for axis, name in ((1, "yaw"), (0, "pitch")):
        commanded, estimated = [], []
        for angle in GAZE_SWEEP:
            windows = []
            for c in controls:
                gaze = np.zeros(2, np.float32)
                gaze[axis] = angle
                windows.append({key: np.stack([gaze if key == "gaze" else value] * window) for key, value in c.items()})
            generated, _ = swapper.generate(crops, windows)
            for face, c in zip(generated, controls):
                commanded.append(angle)
                estimated.append(_estimate_upscaled(face, c["landmarks"])[axis])
        means = [np.nanmean([e for c, e in zip(commanded, estimated) if c == a]) for a in GAZE_SWEEP]
        out[f"{name}_slope"] = _slope(commanded, estimated)
        out[f"{name}_mean_estimate"] = {f"{a:g}": round(float(m), 2) for a, m in zip(GAZE_SWEEP, means)}
    target = FaceSet(faceset_path(model, "b"))
    picks = np.linspace(0, len(target) - 1, min(faces * 3, len(target))).round().astype(int)
    meta = [target.meta[i] for i in picks]
    truth_b = controls_from_meta(meta)
    small = [cv2.resize(target.faces[i], (res, res), interpolation=cv2.INTER_AREA) for i in picks]
    estimates = np.array([_estimate_upscaled(f, resize_points(lm, res / target.size)) for f, lm in zip(small, truth_b.landmarks)])
    seen = np.isfinite(truth_b.gaze).all(axis=1)
    out["calibration"] = {name: _slope(truth_b.gaze[seen, axis], estimates[seen, axis])
                          for axis, name in ((1, "yaw"), (0, "pitch"))}
    return out


def swap_timed(video: Path, out: Path, model_dir: Path, alignments: Path, pose: str = "relative") -> float:
    """Swap `video` losslessly with the model in `model_dir` (faces from `alignments`); seconds taken."""
    from dfjax.swap import SwapOptions, swap

    started = time.perf_counter()
    swap(video, out, model_dir, SwapOptions(lossless=True, workers=1, pose=pose), alignments=alignments,
         overwrite=True)
    return round(time.perf_counter() - started, 1)


def train_and_swap(name: str, window: int, sets: tuple[Path, Path], steps: int, batch: int, root: Path,
                   video: Path, config_spec: str = "configs/swap_dvp.py:tiny",
                   swap_only: bool = False) -> list[tuple[str, Path, dict]]:
    """Train model `name` (unless `swap_only`: it is already in root/name) and swap `video` with it;
    a conditioned model swaps twice, with pose relative and absolute. (case, output, info) per swap."""
    from dfjax.config import apply_overrides, load_config
    from dfjax.training.core import train as train_and_evaluate

    info: dict = {}
    if not swap_only:
        config = apply_overrides(load_config(config_spec), [
            f"data.a='{sets[0]}'", f"data.b='{sets[1]}'", f"model.cond_window={window}", f"train.steps={steps}",
            f"train.batch_per_side={batch}", "log.preview_every=100000", f"log.checkpoint_every={steps}"])
        started = time.perf_counter()
        summary = train_and_evaluate(config, root / name)
        train_s = time.perf_counter() - started
        info = {"loss": summary["loss"], "train_s": round(train_s, 1), "step_ms": round(1000 * train_s / steps, 1)}
    out = root / f"{name}.mp4"
    cases = [(name, out, {**info, "swap_s": swap_timed(video, out, root / name, sets[0])})]
    if window:
        absolute = root / f"{name}_pose_absolute.mp4"
        cases.append((f"{name}, pose absolute", absolute,
                      {"swap_s": swap_timed(video, absolute, root / name, sets[0], "absolute")}))
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per identity")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=16, help="faces per side per step")
    parser.add_argument("--window", type=int, default=3, help="cond_window of the branch-on model")
    parser.add_argument("--face-size", type=int, default=128, help="size of the synthetic face sets (aligned crops)")
    parser.add_argument("--real", nargs=3, metavar=("FACESET_A", "FACESET_B", "VIDEO"), default=None,
                        help="real data instead: face sets of two people, VIDEO the one A was extracted from "
                             "(scored against the same estimates on VIDEO: no ground truth)")
    parser.add_argument("--workdir", default=None, help="keep the data, models and swaps here")
    parser.add_argument("--out", default=None)
    parser.add_argument("--swap-only", action="store_true",
                        help="reuse the models trained in --workdir by an earlier run: swap and score only")
    parser.add_argument("--grid", default=None, help="also write a PNG of the eyes in the driver, the exact swap (synthetic data) and both swaps")
    args = parser.parse_args(argv)

    import jax

    from dfjax.data.synthetic import synthesize

    emit = Reporter()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="dvp_control_"))
    if args.real:
        real_case(args, root, emit)
        if args.out:
            emit.save(args.out)
        return 0
    synth = root / "synth"
    if not (synth / "truth" / "a_as_b_truth.npz").exists():
        synthesize(synth, frames=args.frames, size=256, face_size=args.face_size, overwrite=True)
    sets = (synth / "facesets" / "a", synth / "facesets" / "b")
    truth = np.load(synth / "truth" / "a_as_b_truth.npz")
    driver_truth = np.load(synth / "truth" / "a.npz")
    open_eyes = ~truth["blink"].astype(bool)
    emit({"benchmark": "dvp_control", "case": "header", "date": dt.date.today().isoformat(),
          "backend": jax.default_backend(), "devices": jax.device_count(), "frames": args.frames,
          "frame_size": 256, "faceset_size": args.face_size, "config": "configs/swap_dvp.py:tiny", "steps": args.steps,
          "batch_per_side": args.batch, "open_eye_frames": int(open_eyes.sum()),
          "truth_gaze_abs_mean": {"pitch": round(float(np.abs(truth["gaze"][open_eyes, 0]).mean()), 2),
                                  "yaw": round(float(np.abs(truth["gaze"][open_eyes, 1]).mean()), 2)},
          "truth_gaze_mean_abs_deviation": {n: round(float(np.abs(g - g.mean()).mean()), 2) for n, g in
                                            (("pitch", truth["gaze"][open_eyes, 0]), ("yaw", truth["gaze"][open_eyes, 1]))},
          "truth_pose_abs_mean": {n: round(float(np.abs(truth["pose"][:, i]).mean()), 2) for i, n in enumerate(ANGLES)}})

    lm = truth["landmarks"].astype(np.float64)
    vs_truth = {method: truth["gaze"] for method in GAZE_METHODS}  # every gaze estimate is scored against the truth
    floor = estimates(synth / "videos" / "a_as_b_truth.mp4", lm, lm)
    driver = estimates(synth / "videos" / "a.mp4", driver_truth["landmarks"], driver_truth["landmarks"].astype(np.float64))
    emit({"benchmark": "dvp_control", "case": "floor: the exact swap a_as_b_truth.mp4",
          "vs_truth": compare(floor, truth["pose"], vs_truth, open_eyes),
          "vs_driver": compare(floor, driver["pose"], driver, open_eyes)})
    emit({"benchmark": "dvp_control", "case": "driver: a.mp4 itself",
          "vs_truth": compare(driver, truth["pose"], vs_truth, open_eyes)})

    for name, window in (("branch_on", args.window), ("branch_off", 0)):
        for case, video, info in train_and_swap(name, window, sets, args.steps, args.batch, root,
                                                synth / "videos" / "a.mp4", swap_only=args.swap_only):
            est = estimates(video, lm, lm)
            record = {"benchmark": "dvp_control", "case": case, "cond_window": window, **info,
                      "vs_truth": compare(est, truth["pose"], vs_truth, open_eyes)}
            record["vs_driver"] = compare(est, driver["pose"], driver, open_eyes)
            record["psnr_vs_exact_swap"] = psnr(video, synth / "videos" / "a_as_b_truth.mp4")
            if case == name and window:
                record["gaze_response"] = gaze_response(root / name, synth / "videos" / "a.mp4", driver_truth)
            emit(record)
    if args.grid:  # the eyes of the driver, the exact swap and both swaps, cut around the exact swap's eyes
        eye_grid({"driver a": synth / "videos" / "a.mp4", "exact swap": synth / "videos" / "a_as_b_truth.mp4",
                  "branch on": root / "branch_on.mp4", "branch off": root / "branch_off.mp4"},
                 truth["landmarks"], truth["gaze"], gaze_extremes(truth["gaze"], open_eyes), args.grid)
    if args.out:
        emit.save(args.out)
    return 0


def gaze_extremes(gaze: np.ndarray, usable: np.ndarray) -> list[int]:
    """Five frames among `usable` (bool): looking furthest left, right, down and up, and a middle one."""
    frames = np.flatnonzero(usable)
    g = gaze[frames]
    return [int(frames[k]) for k in (np.argmin(g[:, 1]), np.argmax(g[:, 1]), np.argmin(g[:, 0]), np.argmax(g[:, 0]),
                                     len(frames) // 2)]


def eye_grid(rows: dict[str, Path], landmarks: np.ndarray, gaze: np.ndarray, picks: list[int], out: str | Path) -> None:
    """PNG: the eye region of frames `picks` in each video of `rows` (one row per video, labelled by
    its key), each tile cut around the eye landmarks of that frame (landmarks (N, 68, 2)) and enlarged;
    the column heads give the frame's gaze (N, 2) pitch / yaw."""
    import cv2

    from dfjax import media

    tile_w, tile_h, label_w = 240, 90, 100

    def text(width: int, height: int, line: str, x: int) -> np.ndarray:
        canvas = np.full((height, width, 3), 255, np.uint8)
        cv2.putText(canvas, line, (x, height // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        return canvas

    heads = [text(label_w, 22, "", 0)] + [text(tile_w, 22, f"frame {i}: pitch {gaze[i, 0]:.0f}, yaw {gaze[i, 1]:.0f}", 5)
                                         for i in picks]
    grid = [np.concatenate(heads, 1)]
    for name, video in rows.items():
        frames = {i: f for i, f in media.iter_frames(video) if i in picks}
        tiles = [text(label_w, tile_h, name, 4)]
        for i in picks:
            eyes = landmarks[i][36:48]
            margin = np.array([0.1, 0.125]) * np.ptp(eyes[:, 0])  # the brows left out
            (x0, y0), (x1, y1) = (np.floor(eyes.min(0) - margin).astype(int),
                                  np.ceil(eyes.max(0) + margin).astype(int))
            tiles.append(cv2.resize(frames[i][max(y0, 0):y1, max(x0, 0):x1], (tile_w, tile_h),
                                    interpolation=cv2.INTER_CUBIC))
        grid.append(np.concatenate(tiles, 1))
    media.write_image(out, np.concatenate(grid, 0))


def frame_landmarks(faceset: Path, frames: int) -> np.ndarray:
    """(frames, 68, 2) landmarks in frame pixels of a face set's faces by frame index; NaN where it has none."""
    from dfjax.data.faceset import FaceSet

    fs = FaceSet(faceset)
    out = np.full((frames, 68, 2), np.nan)
    for meta, points in zip(fs.meta, fs.landmarks()):
        if meta["frame"] < frames:
            out[meta["frame"]] = points
    return out


def real_case(args, root: Path, emit) -> None:
    """Branch on and off on two real people: swaps of VIDEO (A) to B, pose and gaze re-estimated on the
    outputs with dlib landmarks and compared with the same estimates on VIDEO (frames with a face;
    gaze on frames where the estimator finds a pupil in VIDEO)."""
    import jax

    from dfjax import media

    set_a, set_b, video = (Path(p) for p in args.real)
    frames = media.probe(video).frames or sum(1 for _ in media.iter_frames(video))  # decode only when unknown
    lm = frame_landmarks(set_a, frames)
    driver = estimates(video, lm, None)
    seen = np.isfinite(driver["gaze_dlib"]).all(axis=1)
    emit({"benchmark": "dvp_control", "case": "header", "date": dt.date.today().isoformat(),
          "backend": jax.default_backend(), "devices": jax.device_count(), "data": "real",
          "faceset_a": str(set_a), "faceset_b": str(set_b), "video": str(video), "frames": frames,
          "frames_with_face": int(np.isfinite(lm).all(axis=(1, 2)).sum()), "frames_with_pupils": int(seen.sum()),
          "config": "configs/swap_dvp.py:tiny", "steps": args.steps, "batch_per_side": args.batch,
          "driver_gaze_abs_mean": {n: round(float(np.abs(driver["gaze_dlib"][seen, i]).mean()), 2)
                                   for i, n in enumerate(("pitch", "yaw"))},
          "driver_gaze_mean_abs_deviation": {n: round(float(np.abs(g - g.mean()).mean()), 2) for n, g in
                                             zip(("pitch", "yaw"), driver["gaze_dlib"][seen].T)}})
    for name, window in (("branch_on", args.window), ("branch_off", 0)):
        for case, out, info in train_and_swap(name, window, (set_a, set_b), args.steps, args.batch, root, video,
                                              swap_only=args.swap_only):
            est = estimates(out, lm, None)
            emit({"benchmark": "dvp_control", "case": case, "data": "real", "cond_window": window, **info,
                  "vs_driver": compare(est, driver["pose"], driver, seen)})
    if args.grid:  # the eyes of the driver and both swaps, cut around the driver's eyes
        eye_grid({"driver": video, "branch on": root / "branch_on.mp4", "branch off": root / "branch_off.mp4"},
                 lm, driver["gaze_dlib"], gaze_extremes(driver["gaze_dlib"], seen), args.grid)


def psnr(video: Path, reference: Path) -> float:
    """Mean PSNR (dB) over frames of two videos of the same size and length."""
    from dfjax import media

    values = []
    for (_, a), (_, b) in zip(media.iter_frames(video), media.iter_frames(reference)):
        mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
        values.append(10 * math.log10(255 ** 2 / max(mse, 1e-12)))
    return round(float(np.mean(values)), 2)


if __name__ == "__main__":
    raise SystemExit(main())
