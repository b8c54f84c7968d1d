"""Which reconstruction loss makes the best swap? The source projects' loss experiments as one table.

    .venv/bin/python benchmarks/source_experiments.py --out benchmarks/results/source_experiments-$(date +%F).jsonl \
        --grid benchmarks/results/source_experiments-frames-$(date +%F).png

The faceswap / DeepFaceLab threads report: MSE gives a low-pass, "average" face; a VGG perceptual loss
is better than MSE but still blurry; a VAE gives "the average of all faces"; with a GAN "the
discriminator trained way faster". Here each row trains the same network (configs/swap.py:tiny, 64 px),
on the same `dfjax synth` face sets, with the same seed, batch and steps; only the loss differs:

- mse: MSE instead of L1 (eye/mouth priority and the outside-mask weight apply alike);
- l1: dfjax's default for tiny (L1 with eyes x3, mouth x2, outside the mask x0.2; no SSIM, mask MSE);
- l1_ssim: l1 plus SSIM (loss.ssim=1), the default of the large networks;
- perceptual: l1 plus VGG16 feature, style (Gram) and total-variation terms; only with `--vgg16 FILE`
  (dfjax downloads nothing), otherwise its line says it was skipped and why;
- vae: l1 with a variational bottleneck (model.latent=vae, the config's loss.kl);
- gan_hinge, gan_lsgan: l1 plus one PatchGAN per identity (gan.weight 0.1), hinge or least-squares.

Each model swaps a.mp4 to identity b (faces from the face set's alignments, colour transfer off so the
generator's own colours are scored, lossless) and is scored against the exact ground-truth swap
(b's face in a's frames):
- face_psnr / face_ssim: the swapped video inside the face box (dfjax.metrics.evaluate_swap's
  truth_fidelity), i.e. after the mask blend and paste-back;
- nearer_target_share: share of sampled frames whose dlib descriptor is nearer b's than a's (evaluate_swap);
and the generator's own 64 px faces (of the crops the swap feeds it) against the exact swap cut out with
the same alignment, inside its face mask:
- crop_psnr: PSNR inside the mask;
- sharpness: variance of the Laplacian inside the mask over the ground truth's (1: as sharp as the
  truth at the model's resolution);
- average_face_index: per-pixel spread (standard deviation over frames, inside the mask) of the
  outputs over the same spread of the ground truth: 1 = as varied as the truth, 0 = one face
  whatever the input.
GAN rows also summarise metrics.jsonl: the discriminator's loss as a fraction of its value at chance
(hinge 2, LSGAN 0.5) over the first tenth, the middle and the last tenth of training, the generator's
adversarial loss alike, and the first step after which D stays below half its chance loss.
A reference line, "no swap", scores a.mp4 (and a's own crops) against the truth.

Lines are JSON (a header, one line per row, one summary); `--out` writes the same lines, `--grid` a PNG of
two frames' faces per row beside the ground truth.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from report import Reporter  # noqa: E402

import numpy as np  # noqa: E402

CONFIG = "configs/swap.py:tiny"
RES = 64  # the tiny network's size: crops for sharpness and spread are taken at it
PERCEPTUAL = {"loss.perceptual": 0.1, "loss.style": 1.0, "loss.tv": 0.01}
ROWS: dict[str, dict] = {
    "mse": {"loss.l1": 0.0, "loss.mse": 1.0},
    "l1": {},
    "l1_ssim": {"loss.ssim": 1.0},
    "perceptual": PERCEPTUAL,
    "vae": {"model.latent": "vae"},
    "gan_hinge": {"gan.enabled": True, "gan.objective": "hinge"},
    "gan_lsgan": {"gan.enabled": True, "gan.objective": "lsgan"},
}
CHANCE_D_LOSS = {"hinge": 2.0, "lsgan": 0.5}  # the discriminator's loss when it outputs 0 everywhere


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _value(v) -> str:
    return f"'{v}'" if isinstance(v, str) else str(v)


def train_row(name: str, sets: tuple[Path, Path], steps: int, batch: int, root: Path, vgg16: Path | None) -> dict:
    """Train row `name` into root/name; its settings and timing."""
    from dfjax.config import apply_overrides, load_config
    from dfjax.training.core import train

    settings = dict(ROWS[name])
    if name == "perceptual":
        settings["loss.vgg16_weights"] = str(vgg16)
    config = apply_overrides(load_config(CONFIG), [
        f"data.a='{sets[0]}'", f"data.b='{sets[1]}'", f"train.steps={steps}", f"train.batch_per_side={batch}",
        "log.preview_every=100000", f"log.checkpoint_every={steps}", *[f"{k}={_value(v)}" for k, v in settings.items()]])
    started = time.perf_counter()
    summary = train(config, root / name)
    seconds = time.perf_counter() - started
    return {"settings": settings, "loss": {k: config.loss[k] for k in config.loss if config.loss[k]},
            "latent": config.model.latent, "final_loss": summary["loss"], "steps_run": summary["steps_run"],
            "train_s": round(seconds, 1),
            "step_ms": round(1000 * seconds / steps, 1)}


def swap_row(model_dir: Path, video: Path, out: Path, alignments: Path) -> float:
    """Swap `video` to identity b with the model, faces from the extraction's alignments; seconds taken."""
    from dfjax.swap import SwapOptions, swap

    started = time.perf_counter()
    swap(video, out, model_dir, SwapOptions(lossless=True, workers=1, color="none"), alignments=alignments,
         overwrite=True)
    return round(time.perf_counter() - started, 1)


def aligned(video: Path, landmarks: np.ndarray, size: int = RES) -> np.ndarray:
    """(N, size, size, 3) crops of every frame, aligned as the swap aligns them (landmarks (N, 68, 2))."""
    from dfjax import media
    from dfjax.faces.align import alignment_matrix, warp_face

    return np.stack([warp_face(frame, alignment_matrix(landmarks[i], size), size) for i, frame in media.iter_frames(video)])


def crop_masks(masks: np.ndarray, landmarks: np.ndarray, size: int = RES) -> np.ndarray:
    """(N, size, size) bool: frame masks (N, H, W) moved into the aligned crops, shrunk by 2 px."""
    import cv2

    from dfjax.faces.align import alignment_matrix

    kernel = np.ones((5, 5), np.uint8)
    return np.stack([cv2.erode(cv2.warpAffine(m.astype(np.uint8), alignment_matrix(lm, size), (size, size)), kernel) > 0
                     for m, lm in zip(masks, landmarks)])


def generated(model_dir: Path, crops: np.ndarray) -> np.ndarray:
    """The model's faces of identity b for aligned crops of a (uint8, as `dfjax swap` generates them)."""
    from dfjax.swap import SwapOptions, Swapper
    from dfjax.training.core import load_trained

    return Swapper(load_trained(model_dir), SwapOptions()).generate(list(crops))[0]


def crop_scores(outputs: np.ndarray, truth_crops: np.ndarray, masks: np.ndarray) -> dict:
    """The generator's faces against the exact swap in the same aligned crop: PSNR inside the true face
    mask, sharpness over the truth's and the average-face index (see the module docstring)."""
    from dfjax.faces.quality import blur_score

    err = [(o.astype(np.float64) - t.astype(np.float64))[m] for o, t, m in zip(outputs, truth_crops, masks)]
    psnr = np.mean([10 * math.log10(255 ** 2 / max(float(np.mean(e ** 2)), 1e-12)) for e in err])
    sharp = np.mean([blur_score(o, m) for o, m in zip(outputs, masks)])
    sharp_truth = np.mean([blur_score(t, m) for t, m in zip(truth_crops, masks)])
    return {"crop_psnr": round(float(psnr), 3), "sharpness": round(float(sharp / sharp_truth), 3),
            "average_face_index": round(spread(outputs, masks) / spread(truth_crops, masks), 3)}


def spread(crops: np.ndarray, masks: np.ndarray) -> float:
    """Mean over the pixels inside every mask of the standard deviation over frames (0-255 units)."""
    inside = masks.all(axis=0)
    return float(crops.astype(np.float64).std(axis=0)[inside].mean())


def fidelity(source: Path, swapped: Path, truth_video: Path, sets: tuple[Path, Path], identity_frames: int) -> dict:
    """PSNR/SSIM in the face box against the exact swap and identity (dfjax.metrics.evaluate_swap)."""
    from dfjax.metrics import evaluate_swap

    report = evaluate_swap(source, swapped, target_faces=sets[1], source_faces=sets[0], truth_video=truth_video,
                           identity_frames=identity_frames)
    r = lambda v: None if v is None or not math.isfinite(v) else round(float(v), 3)  # noqa: E731
    return {"face_psnr": r(report["truth_fidelity"]["face_psnr"]), "face_ssim": r(report["truth_fidelity"]["face_ssim"]),
            "psnr": r(report["truth_fidelity"]["psnr"]),
            "nearer_target_share": r(report["identity"]["nearer_target_share"]),
            "to_target_median": r(report["identity"]["to_target_median"]),
            "to_source_median": r(report["identity"]["to_source_median"]),
            "frames_with_faces": report["frames"]["with_faces"]}


def gan_curves(workdir: Path, objective: str) -> dict:
    """The discriminator's and generator's adversarial losses over training, from metrics.jsonl."""
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    steps = np.array([r["step"] for r in rows])
    d = np.array([r["d_loss"] for r in rows]) / CHANCE_D_LOSS[objective]
    g = np.array([(r["g_adv_a"] + r["g_adv_b"]) / 2 for r in rows])
    n = len(rows)
    tenth = max(1, n // 10)
    parts = {"first_tenth": slice(0, tenth), "middle": slice(n // 2 - tenth // 2, n // 2 + tenth - tenth // 2),
             "last_tenth": slice(n - tenth, n)}
    below = d < 0.5
    # the first step after which D's loss stays under half its chance value
    stays = next((int(steps[i]) for i in range(n) if below[i:].all()), None)
    return {"objective": objective, "chance_d_loss": CHANCE_D_LOSS[objective],
            "d_over_chance": {k: round(float(d[s].mean()), 3) for k, s in parts.items()},
            "g_adv": {k: round(float(g[s].mean()), 3) for k, s in parts.items()},
            "d_below_half_chance_share": round(float(below.mean()), 3), "d_below_half_chance_from_step": stays,
            "d_over_chance_min": round(float(d.min()), 3)}


def pick_frames(truth: dict) -> list[int]:
    """A near-frontal frame and the most turned one (by |yaw|)."""
    yaw = np.abs(truth["pose"][:, 0])
    return [int(np.argmin(yaw)), int(np.argmax(yaw))]


def frame_grid(rows: dict[str, Path], truth: dict, picks: list[int], out: Path, tile: int = 192) -> None:
    """PNG: for each frame of `picks` (columns) the face region of every video (rows), enlarged, labelled."""
    import cv2

    from dfjax import media

    label_w = 150

    def text(width: int, height: int, line: str) -> np.ndarray:
        canvas = np.full((height, width, 3), 255, np.uint8)
        cv2.putText(canvas, line, (4, height // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        return canvas

    boxes = []
    for i in picks:
        ys, xs = np.nonzero(truth["masks"][i])
        cx, cy, half = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2, 0.6 * max(np.ptp(xs), np.ptp(ys))
        boxes.append([int(cx - half), int(cy - half), int(cx + half), int(cy + half)])
    heads = [text(label_w, 24, "")] + [text(tile, 24, f"frame {i}, yaw {truth['pose'][i, 0]:.0f}") for i in picks]
    grid = [np.concatenate(heads, 1)]
    for name, video in rows.items():
        frames = {i: f for i, f in media.iter_frames(video) if i in picks}
        tiles = [text(label_w, tile, name)]
        for i, (x0, y0, x1, y1) in zip(picks, boxes):
            f = frames[i]
            h, w = f.shape[:2]
            piece = f[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
            tiles.append(cv2.resize(piece, (tile, tile), interpolation=cv2.INTER_CUBIC))
        grid.append(np.concatenate(tiles, 1))
    media.write_image(out, np.concatenate(grid, 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=240, help="frames per identity")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=16, help="faces per side per step")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    parser.add_argument("--vgg16", type=Path, default=None, help="VGG16 weights (.npz or .h5) for the perceptual row")
    parser.add_argument("--identity-frames", type=int, default=32, help="frames given dlib descriptors per video")
    parser.add_argument("--workdir", default=None, help="keep data, models and swaps here")
    parser.add_argument("--out", default=None)
    parser.add_argument("--grid", default=None, help="also write a PNG of two frames' faces per row")
    args = parser.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")

    import jax

    from dfjax.config import load_config
    from dfjax.data.synthetic import is_complete, synthesize

    emit = Reporter()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="source_experiments_"))
    synth = root / "synth"
    if not is_complete(synth):
        log("rendering the synthetic identities")
        synthesize(synth, frames=args.frames, size=256, face_size=128, overwrite=True)
    sets = (synth / "facesets" / "a", synth / "facesets" / "b")
    video, truth_video = synth / "videos" / "a.mp4", synth / "videos" / "a_as_b_truth.mp4"
    with np.load(synth / "truth" / "a_as_b_truth.npz") as f:
        truth = {k: f[k] for k in ("landmarks", "masks", "pose")}
    with np.load(synth / "truth" / "a.npz") as f:
        a_landmarks = f["landmarks"].astype(np.float64)
    # the crops the swap feeds the model (aligned to a's face) and the exact swap in the same crops
    source_crops, truth_crops = aligned(video, a_landmarks), aligned(truth_video, a_landmarks)
    masks = crop_masks(truth["masks"], a_landmarks)
    defaults = load_config(CONFIG)
    emit({"benchmark": "source_experiments", "case": "header", "date": dt.date.today().isoformat(),
          "backend": jax.default_backend(), "devices": jax.device_count(), "cpu_count": os.cpu_count(),
          "config": CONFIG, "frames": args.frames, "frame_size": 256, "faceset_size": 128, "steps": args.steps,
          "batch_per_side": args.batch, "seed": defaults.seed, "rows": rows,
          "default_loss": {k: v for k, v in defaults.loss.items() if v and k != "kl"},
          "default_data_weights": {"eye": defaults.data.eye_weight, "mouth": defaults.data.mouth_weight},
          "kl_weight_of_vae": defaults.loss.kl, "swap_options": "lossless, colour transfer off, alignments of face set a"})

    reference = {"case": "no swap: a.mp4 itself", **fidelity(video, video, truth_video, sets, args.identity_frames),
                 **crop_scores(source_crops, truth_crops, masks)}
    emit({"benchmark": "source_experiments", **reference})
    results, shown = {}, {"source a": video, "ground truth": truth_video}
    for name in rows:
        if name == "perceptual" and args.vgg16 is None:
            emit({"benchmark": "source_experiments", "case": name, "skipped": "no --vgg16 FILE: the perceptual "
                  "and style terms need VGG16 weights from a file you name, and dfjax downloads none"})
            continue
        log(f"{name}: training")
        info = train_row(name, sets, args.steps, args.batch, root, args.vgg16)
        out = root / f"{name}.mp4"
        info["swap_s"] = swap_row(root / name, video, out, sets[0])
        log(f"{name}: scoring")
        record = {"case": name, **info, **fidelity(video, out, truth_video, sets, args.identity_frames),
                  **crop_scores(generated(root / name, source_crops), truth_crops, masks)}
        if ROWS[name].get("gan.enabled"):
            record["gan_curves"] = gan_curves(root / name, ROWS[name]["gan.objective"])
        results[name] = record
        shown[name] = out
        emit({"benchmark": "source_experiments", **record})
    columns = ("face_psnr", "face_ssim", "crop_psnr", "nearer_target_share", "sharpness", "average_face_index")
    emit({"benchmark": "source_experiments", "case": "summary",
          "table": {name: {c: r[c] for c in columns} for name, r in results.items()},
          "best": {c: max(results, key=lambda n: results[n][c] if results[n][c] is not None else -math.inf)
                   for c in columns[:4]} if results else {}})
    if args.grid:
        frame_grid(shown, truth, pick_frames(truth), Path(args.grid))
    if args.out:
        emit.save(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
