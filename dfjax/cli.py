"""The `dfjax` command line: thin commands that parse options and call library functions.

A user mistake (`UserError`) ends with one red sentence on stderr and exit code 2, no traceback.
"""

from __future__ import annotations

import functools
import gc
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from dfjax import __version__
from dfjax.errors import UserError
from dfjax.faces.detect import DEFAULT_FACE_DETECTOR
from dfjax.faces.smooth import KALMAN_DEFAULTS, ONE_EURO_DEFAULTS
from dfjax.progress import console, progress_bar

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Make face-swap fakes and measure how well they can be detected.")

QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")
SMOOTHING = typer.Option("one-euro", help="Landmark smoothing over time: one-euro | kalman | none.")
PRESET = typer.Option("medium", help="x264 speed preset, ultrafast to veryslow: faster ones take less CPU and give "
                                     "larger files at the same --crf (e.g. veryfast for datasets).")
ALLOW_TRUNCATED = typer.Option(False, "--allow-truncated", help="Use a video that decodes to fewer frames than its "
                               "container lists (a cut-off download) with a warning, instead of refusing it.")


def command(func):
    """Register a command whose UserErrors end in one red sentence and exit code 2."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return app.command()(run)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dfjax {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """dfjax: face-swap fakes with exact ground truth, and detectors scored on them."""


def _face_workers_first() -> None:
    """Start the face workers' server (it imports the face pipeline and loads dlib's models, about 0.9
    CPU s) before this command imports JAX and loads its model, so the two overlap on separate cores."""
    from dfjax.faces.server import start_face_worker_server

    start_face_worker_server()


def _print_summary(title: str, summary: dict) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)


@command
def extract(
    inputs: list[Path] = typer.Argument(..., help="Videos, images, or folders of them."),
    output: Path = typer.Option(..., "--output", "-o", help="Face-set folder to write."),
    size: int = typer.Option(256, help="Aligned crop size in pixels."),
    face_type: str = typer.Option("face", help="Crop type: face, whole_face or head (as in DeepFaceLab)."),
    coverage: float = typer.Option(1.0, help="Zoom of the crop: <1 keeps less around the face, >1 more."),
    mask: str = typer.Option("extended", help="Mask kind: hull (landmark hull) or extended (with forehead)."),
    every_n: int = typer.Option(10, "--every-n", help="Run full face detection every N frames; track between."),
    detector: str = typer.Option(DEFAULT_FACE_DETECTOR, help="Face detector: hog (dlib HOG), cnn (dlib MMOD CNN, "
                                 "slower) or hog,cnn (the CNN only where HOG finds no face)."),
    max_side: int = typer.Option(640, help="Detect on a copy at most this many pixels on the long side."),
    identity: Optional[Path] = typer.Option(None, help="Photo of the person to keep in multi-face frames."),
    min_size: float = typer.Option(0.0, help="Drop faces whose box is narrower than this (pixels)."),
    blur_threshold: float = typer.Option(0.0, help="Drop faces whose blur score (Laplacian variance) is lower."),
    smoothing: str = SMOOTHING,
    one_euro_min_cutoff: float = typer.Option(ONE_EURO_DEFAULTS["min_cutoff"], help="One Euro: a still face's cutoff in Hz (lower: smoother)."),
    one_euro_beta: float = typer.Option(ONE_EURO_DEFAULTS["beta"], help="One Euro: how fast the cutoff rises with speed (higher: less lag)."),
    kalman_process_noise: float = typer.Option(KALMAN_DEFAULTS["process_noise"],
                                               help="Kalman: random acceleration, px/s^2 (higher: follows turns faster)."),
    kalman_measurement_noise: float = typer.Option(KALMAN_DEFAULTS["measurement_noise"],
                                                   help="Kalman: landmark noise, px (higher: smoother)."),
    workers: int = typer.Option(0, help="Worker processes (0: every core)."),
    overwrite: bool = typer.Option(False, help="Replace an existing face set."),
    allow_truncated: bool = ALLOW_TRUNCATED,
    quiet: bool = QUIET,
) -> None:
    """Find, align and describe faces in videos and images, writing a face set."""
    from dfjax import media
    from dfjax.faces.pipeline import ExtractOptions
    from dfjax.extract import extract as run_extract

    options = ExtractOptions(size=size, face_type=face_type, coverage=coverage, mask_kind=mask, every_n=every_n,
                             detector=detector, max_side=max_side, min_size=min_size,
                             blur_threshold=blur_threshold, smoothing=smoothing,
                             one_euro_min_cutoff=one_euro_min_cutoff, one_euro_beta=one_euro_beta,
                             kalman_process_noise=kalman_process_noise,
                             kalman_measurement_noise=kalman_measurement_noise, workers=workers)
    with media.allow_truncated(allow_truncated), progress_bar("frames", quiet) as progress:
        summary = run_extract(inputs, output, options, identity=identity, overwrite=overwrite, progress=progress)
    _print_summary(f"face set written to {output}", summary)


@command
def synth(
    output: Path = typer.Option(..., "--output", "-o", help="Folder for videos, ground truth and face sets."),
    frames: int = typer.Option(300, help="Frames per identity video."),
    size: int = typer.Option(256, help="Video frame size (square, pixels)."),
    face_size: int = typer.Option(128, help="Aligned face-set crop size."),
    seed: int = typer.Option(0, help="Random seed for motion, lighting and backgrounds."),
    identities: int = typer.Option(2, help="How many identities: a and b (built in), then c, d, ... (random, "
                                           "reproducible); every ordered pair gets a ground-truth swap video."),
    overwrite: bool = typer.Option(False, help="Replace existing output."),
    quiet: bool = QUIET,
) -> None:
    """Render synthetic identities with exact ground truth, ready for training."""
    from dfjax.data.synthetic import identity_names, synthesize

    names = identity_names(identities)
    with progress_bar("frames", quiet) as progress:
        summary = synthesize(output, frames=frames, size=size, face_size=face_size, seed=seed, identities=names,
                             overwrite=overwrite, progress=progress)
    _print_summary(f"synthetic data written to {output}", summary)


@command
def train(
    workdir: Path = typer.Option(..., help="Run folder: config, checkpoints, previews, metrics. Reused to resume."),
    config: Optional[str] = typer.Option(None, help="FILE.py[:ARG] from configs/ (e.g. swap.py:sae128,gan) or your "
                                                      "own file; default: the workdir's saved config, else swap.py:tiny."),
    a: Optional[Path] = typer.Option(None, "--a", help="Face set of identity A (default: synthetic)."),
    b: Optional[Path] = typer.Option(None, "--b", help="Face set of identity B (default: synthetic)."),
    faces: list[Path] = typer.Option([], "--faces", help="Instead of --a/--b: a face set per identity (2 or more, "
                                                         "repeat the option), each named after its folder."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set train.lr=1e-4."),
    steps: Optional[int] = typer.Option(None, help="Train until this step (same as --set train.steps=N)."),
    distributed: bool = typer.Option(False, help="Join a multi-host job (jax.distributed.initialize)."),
    quiet: bool = QUIET,
) -> None:
    """Train (or resume) a model: the config's trainer (swap: --a/--b or --faces; reenact: --a; animate: videos)."""
    from dfjax.training import parallel
    from dfjax.config import apply_overrides, load_config, load_saved_config
    from dfjax.data.faceset import FaceSet
    from dfjax.training.core import train as run_train
    from dfjax.data.training_set import listed_identities

    parallel.initialize(distributed)
    saved = workdir / "config.json"
    sets = ([f"data.a={str(a or '')!r}", f"data.b={str(b or '')!r}"] if a is not None or b is not None else [])
    if faces:
        sets.append(f"data.identities={','.join(str(f) for f in faces)!r}")
    settings = list(overrides) + sets + ([f"train.steps={steps}"] if steps is not None else [])
    if config:
        cfg = load_config(config, settings)
    elif saved.exists():
        cfg = apply_overrides(load_saved_config(saved), settings)
    else:
        cfg = load_config("swap.py:tiny", settings)
    # a missing or damaged face set is refused before the workdir is made
    for path in [cfg.data.get(side) for side in ("a", "b")] + listed_identities(cfg):
        if path:
            FaceSet(path).require("landmarks", "matrix")
    with progress_bar("steps", quiet) as progress:
        summary = run_train(cfg, workdir, progress=progress)
    _print_summary(f"trained in {workdir}", summary)


@command
def swap(
    input: Path = typer.Argument(..., help="A video, an image, or a folder of images."),
    output: Path = typer.Option(..., "--output", "-o", help="Output video (.mp4), image, or folder for a folder."),
    model: Path = typer.Option(..., help="The workdir of a `dfjax train` run."),
    direction: str = typer.Option("a2b", help="a2b: faces of A become B; b2a: the reverse."),
    to: str = typer.Option("", "--to", help="The identity the faces become, by name (for models of N identities; "
                                            "overrides --direction)."),
    mask: str = typer.Option("intersection", help="Blend mask: model, landmarks or intersection."),
    erode: int = typer.Option(0, help="Erode the mask by this many pixels (negative dilates)."),
    feather: int = typer.Option(3, help="Blur the mask edge over this many pixels."),
    color: str = typer.Option("reinhard", help="Colour transfer: none, reinhard (L*a*b* mean/std) or histogram."),
    blend: str = typer.Option("alpha", help="alpha, or seamless (Poisson, cv2.seamlessClone)."),
    crf: int = typer.Option(18, help="H.264 quality (lower is better)."),
    preset: str = PRESET,
    encode_threads: int = typer.Option(0, "--encode-threads", help="x264 encoding threads (0: x264 chooses)."),
    lossless: bool = typer.Option(False, help="Bit-exact RGB H.264: untouched pixels equal the input's."),
    watermark: bool = typer.Option(False, help="Stamp a visible 'SYNTHETIC - dfjax' label on swapped frames."),
    identity: Optional[Path] = typer.Option(None, help="Photo of the person to replace in multi-face frames."),
    alignments: Optional[Path] = typer.Option(None, help="Reuse `dfjax extract`'s faces: its face set or alignments file."),
    every_n: int = typer.Option(10, "--every-n", help="Full face detection every N frames; track between."),
    detector: str = typer.Option(DEFAULT_FACE_DETECTOR, help="Face detector for live detection: hog, cnn or hog,cnn."),
    pose: str = typer.Option("relative", help="Conditioned models: head pose relative to each identity's median "
                                              "(relative) or the source's own, with each identity's pose-fitted "
                                              "landmark layout (absolute)."),
    workers: int = typer.Option(0, help="Face-finding worker processes (0: every core but one, which "
                                        "decodes, pastes and encodes)."),
    smoothing: str = SMOOTHING,
    overwrite: bool = typer.Option(False, help="Replace an existing output (and its masks and sidecar)."),
    allow_truncated: bool = ALLOW_TRUNCATED,
    quiet: bool = QUIET,
) -> None:
    """Swap faces with a trained model; writes the video, its masks, and a JSON sidecar of what changed."""
    from dfjax import media

    if alignments is None and media.is_video(input):  # images are swapped without the face workers
        _face_workers_first()
    from dfjax.swap import SwapOptions
    from dfjax.swap import swap as run_swap

    options = SwapOptions(direction=direction, to=to, mask=mask, erode=erode, feather=feather, color=color, blend=blend,
                          crf=crf, preset=preset, encode_threads=encode_threads, lossless=lossless,
                          watermark=watermark, every_n=every_n, detector=detector, pose=pose, workers=workers,
                          smoothing=smoothing)
    with media.allow_truncated(allow_truncated), progress_bar("frames", quiet) as progress:
        summary = run_swap(input, output, model, options, identity=identity, alignments=alignments,
                           overwrite=overwrite, progress=progress)
    _print_summary(f"swapped into {output}", summary)


@command
def reenact(
    model: Path = typer.Option(..., help="The workdir of a `dfjax train --config configs/reenact.py` run."),
    driver: Path = typer.Option(..., help="Video whose head pose, expression, gaze and blinks drive the target."),
    output: Path = typer.Option(..., "--output", "-o", help="Output video (.mp4); masks and sidecar go beside it."),
    crf: int = typer.Option(18, help="H.264 quality (lower is better)."),
    preset: str = PRESET,
    lossless: bool = typer.Option(False, help="Bit-exact RGB H.264: untouched pixels equal the target's frame."),
    driver_faces: Optional[Path] = typer.Option(None, help="Reuse `dfjax extract`'s faces of the driver: its face set."),
    every_n: int = typer.Option(10, "--every-n", help="Full face detection every N driver frames; track between."),
    workers: int = typer.Option(0, help="Face-finding worker processes (0: every core)."),
    smoothing: str = SMOOTHING,
    overwrite: bool = typer.Option(False, help="Replace an existing output (and its masks and sidecar)."),
    allow_truncated: bool = ALLOW_TRUNCATED,
    quiet: bool = QUIET,
) -> None:
    """Re-render a reenactment model's target driven by a driver video; writes video, masks and sidecar."""
    if driver_faces is None:
        _face_workers_first()
    from dfjax import media
    from dfjax.reenact import ReenactOptions
    from dfjax.reenact import reenact as run_reenact

    options = ReenactOptions(crf=crf, preset=preset, lossless=lossless, every_n=every_n, workers=workers,
                             smoothing=smoothing)
    with media.allow_truncated(allow_truncated), progress_bar("frames", quiet) as progress:
        summary = run_reenact(model, driver, output, options, driver_faces=driver_faces, overwrite=overwrite,
                              progress=progress)
    _print_summary(f"reenacted into {output}", summary)


@command
def animate(
    model: Path = typer.Option(..., help="The workdir of a `dfjax train --config configs/animate.py` run."),
    source: Path = typer.Option(..., help="Photo with a face, to animate."),
    driver: Path = typer.Option(..., help="Video of a face whose motion drives the photo."),
    output: Path = typer.Option(..., "--output", "-o", help="Output video (.mp4); masks and sidecar go beside it."),
    mode: str = typer.Option("relative", help="relative: the driver's motion from its first frame, applied to the "
                                              "photo's keypoints; absolute: the driver's keypoints as they are."),
    adapt_scale: bool = typer.Option(True, help="Relative mode: scale the motion by the keypoints' hull areas."),
    crf: int = typer.Option(18, help="H.264 quality (lower is better)."),
    preset: str = PRESET,
    lossless: bool = typer.Option(False, help="Bit-exact RGB H.264: untouched pixels equal the photo's."),
    overwrite: bool = typer.Option(False, help="Replace an existing output (and its masks and sidecar)."),
    allow_truncated: bool = ALLOW_TRUNCATED,
    quiet: bool = QUIET,
) -> None:
    """Animate a photo with a driver video's motion (First Order Motion Model); writes video, masks and sidecar."""
    from dfjax import media
    from dfjax.animate import AnimateOptions
    from dfjax.animate import animate as run_animate

    options = AnimateOptions(mode=mode, adapt_scale=adapt_scale, crf=crf, preset=preset, lossless=lossless)
    with media.allow_truncated(allow_truncated), progress_bar("frames", quiet) as progress:
        summary = run_animate(model, source, driver, output, options, overwrite=overwrite, progress=progress)
    _print_summary(f"animated into {output}", summary)


@command
def forge(
    input: Path = typer.Argument(..., help="A `dfjax synth` output folder, or a folder with one subfolder of videos "
                                           "per person."),
    output: Path = typer.Option(..., "--output", "-o", help="The dataset folder (made, or finished if it exists)."),
    config: str = typer.Option("forge.py", help="FILE.py[:ARG], e.g. forge.py:tiny (CPU, minutes)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set split.test=4."),
    shard: Optional[str] = typer.Option(None, help="I/N: this process's share of the people, models and fakes "
                                                    "(run every shard, then once more to finish)."),
    jobs: int = typer.Option(1, help="Run the work in this many processes at once on this machine (shards 0/N "
                                     "... N-1/N, round after round)."),
    quiet: bool = QUIET,
) -> None:
    """Build a labelled deepfake dataset: split people, train each method's models per split, fake every video."""
    from dfjax.config import load_config
    from dfjax.forge import ShardWaiting, check_config, run_jobs
    from dfjax.io import read_json
    from dfjax.forge import forge as run_forge

    cfg = load_config(config, list(overrides))
    if jobs < 1 or (jobs > 1 and shard):
        raise UserError(f"--jobs {jobs} is impossible{' with --shard' if shard else ''}; give --jobs 1 or more, "
                        "and either --jobs (processes on this machine) or --shard (one share of the work).")
    if jobs > 1:
        check_config(cfg)  # refused here, not in every job
        run_jobs([str(input), "-o", str(output), "--config", config, *[f"--set={o}" for o in overrides]], jobs,
                 echo=lambda line: console.print(line, highlight=False))
        summary = read_json(Path(output) / "forge.json")
    try:
        with progress_bar("steps", quiet) as progress:
            if jobs == 1:
                summary = run_forge(input, output, cfg, shard=shard, progress=progress)
    except ShardWaiting as waiting:
        console.print(f"shard {shard} did its part: {waiting}", highlight=False, soft_wrap=True)
        return
    counts = summary["counts"]
    _print_summary(f"dataset written to {output}", {
        "manifest": str(Path(output) / "manifest.csv"),
        **{f"{s} videos (real / fake)": f"{c['real']} / {c['fake']}" for s, c in counts.items() if c["real"]},
        "fakes per method": ", ".join(f"{m} {n}" for m, n in summary["fakes_per_method"].items()),
        "compressions": ", ".join(summary["compressions"]),
        "fake frames without a face": f"{summary['fake_frames_without_face']} of {summary['fake_frames']}",
        "seconds per stage": ", ".join(f"{k} {v}" for k, v in summary["seconds"].items())})


@command
def evaluate_swap(
    source: Path = typer.Argument(..., help="The video that was swapped."),
    swapped: Path = typer.Argument(..., help="The swapped video (`dfjax swap` output)."),
    target_faces: Optional[Path] = typer.Option(None, help="Face set of the target identity (for identity distance)."),
    source_faces: Optional[Path] = typer.Option(None, help="Face set of the source identity (default: its video)."),
    truth: Optional[Path] = typer.Option(None, help="Ground-truth swap video (from `dfjax synth`) for PSNR/SSIM."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report as JSON here."),
    max_frames: Optional[int] = typer.Option(None, help="Only the first N frames."),
    allow_truncated: bool = ALLOW_TRUNCATED,
    quiet: bool = QUIET,
) -> None:
    """Score a swap: identity distance, pose/landmark/gaze error, jitter, and PSNR/SSIM against ground truth."""
    from dfjax import media
    from dfjax.io import check_writable
    from dfjax.metrics import evaluate_swap as run_evaluation
    from dfjax.metrics import format_table, save_report

    if output:
        check_writable(output)
    with media.allow_truncated(allow_truncated), progress_bar("frames", quiet) as progress:
        report = run_evaluation(source, swapped, target_faces=target_faces, source_faces=source_faces,
                                truth_video=truth, max_frames=max_frames, progress=progress)
    console.print(format_table(report), highlight=False)
    if output:
        save_report(report, output)
        console.print(f"report written to {output}")


@command
def evaluate_animate(
    videos: list[Path] = typer.Argument(..., help="Held-out videos of a face (not trained on)."),
    model: Path = typer.Option(..., help="The workdir of a `dfjax train --config configs/animate.py` run."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report as JSON here."),
    max_frames: Optional[int] = typer.Option(None, help="Only the first N frames of each video."),
    reenactor: Optional[Path] = typer.Option(None, help="Also score the DVP reenactor of this `dfjax train --config "
                                                        "configs/reenact.py` workdir, trained on the videos' person "
                                                        "(each frame driven by its own controls)."),
    allow_truncated: bool = ALLOW_TRUNCATED,
    quiet: bool = QUIET,
) -> None:
    """Score a motion model by video reconstruction (first frame as source, every frame driving): L1, AKD, AED
    against the copy-the-source baseline (and a DVP reenactor with --reenactor)."""
    from dfjax import media
    from dfjax.io import check_writable
    from dfjax.metrics import save_report
    from dfjax.metrics_animate import AED_NOTE, evaluate_animate as run_evaluation, table_rows

    if output:
        check_writable(output)
    with media.allow_truncated(allow_truncated), progress_bar("frames", quiet) as progress:
        report = run_evaluation(model, videos, max_frames=max_frames, reenactor=reenactor, progress=progress)
    frames = report["methods"]["fomm"]["frames"]
    table = Table(title=f"reconstruction: {len(report['videos'])} video(s), {frames} frames, model step "
                        f"{report['model']['step']}", title_justify="left", caption=AED_NOTE, caption_justify="left")
    for column in ("method", "L1", "AKD (px@256)", "AED (dlib)", "faces"):
        table.add_column(column)
    for row in table_rows(report):
        table.add_row(*row)
    console.print(table, highlight=False)
    if output:
        save_report(report, output)
        console.print(f"report written to {output}")


@command
def detect_eval(
    real: list[Path] = typer.Option([], "--real", help="Real videos, folders, CSVs, FaceForensics++ or DFDC folders "
                                                       "(repeat the option)."),
    fake: list[Path] = typer.Option([], "--fake", help="Fake videos, folders, dfjax swap outputs, CSVs, ..."),
    train: list[Path] = typer.Option([], "--train", help="Cross-dataset protocol: a labelled dataset to train on "
                                                         "(labels CSV, FaceForensics++ root, DFDC folder; repeatable), "
                                                         "split by identity into train and val only."),
    test: list[str] = typer.Option([], "--test", help="Cross-dataset protocol: NAME=PATH, a labelled dataset scored "
                                                      "whole (repeatable)."),
    detector: list[str] = typer.Option([], "--detector", help="Detector name, repeatable (default: spectral and dct, "
                                                              "or the --config detectors)."),
    config: list[str] = typer.Option([], "--config", help="configs/detect_NAME.py[:ARG] of a detector (repeatable)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a detector config value, e.g. --set train.steps=500."),
    checkpoint: Optional[Path] = typer.Option(None, help="Load the detectors an earlier run saved (its OUT/checkpoints) "
                                                         "instead of training; with --test, only the test sets are "
                                                         "scored."),
    seeds: int = typer.Option(1, help="Train each detector with seeds 0..N-1; report mean ± std."),
    robustness: bool = typer.Option(False, help="Score the test split under JPEG, H.264, blur, noise and resize."),
    compression: Optional[str] = typer.Option(None, help="Also score re-encoded test videos, e.g. raw,c23,c40."),
    output: Path = typer.Option(Path("detect_report"), "--output", "-o", help="Report folder."),
    frames: int = typer.Option(32, help="Evenly spaced frames per video."),
    size: int = typer.Option(256, help="Face crop size (DeepfakeBench-style crop, scale 1.3)."),
    split_seed: int = typer.Option(0, help="Seed of the identity-disjoint train/val/test split."),
    face_detector: str = typer.Option(DEFAULT_FACE_DETECTOR, "--face-detector", help="hog | cnn | hog,cnn"),
    allow_truncated: bool = ALLOW_TRUNCATED,
    quiet: bool = QUIET,
) -> None:
    """Train detectors on real and fake videos split by identity and score them like a benchmark; or, with
    --train and --test NAME=PATH, train on one dataset and score on others (cross-dataset)."""
    from rich.markup import escape

    from detect.report import CROSS_METRICS, cross_metric, cross_rows
    from detect.run import detect_eval as run_detect_eval
    from dfjax import media

    with media.allow_truncated(allow_truncated), progress_bar("items", quiet) as progress:
        report = run_detect_eval(real, fake, detector, output, train=train, tests=test, configs=config,
                                 overrides=overrides, checkpoint=checkpoint, seeds=seeds, robustness=robustness,
                                 compression=compression, frames=frames, size=size, split_seed=split_seed,
                                 face_detector=face_detector, progress=progress)
    if "cross_dataset" not in report:
        console.print(_detect_table(report, output), highlight=False)
        return

    def cell(m: dict | None) -> str:
        if m is None:
            return "–"
        return f"{m['mean']:.3f}±{m['std']:.3f}" if len(m["values"]) > 1 else f"{m['mean']:.3f}"

    table = Table(title=f"cross-dataset; report in {output / 'report.md'}", title_justify="left")
    for column in ("detector", "scored on") + tuple(h for _, _, h in CROSS_METRICS):
        table.add_column(column)
    for label, group, _, mean in cross_rows(report):
        table.add_row(escape(label), escape(group),
                      *(cell(cross_metric(mean, level, key)) for level, key, _ in CROSS_METRICS))
    console.print(table, highlight=False)


def _detect_table(report: dict, output: Path) -> Table:
    """Main results: frame and video metrics per detector, mean ± std over the seeds."""
    def cell(m: dict) -> str:
        return f"{m['mean']:.3f}±{m['std']:.3f}" if len(m["values"]) > 1 else f"{m['mean']:.3f}"

    table = Table(title=f"test split; report in {output / 'report.md'}", title_justify="left")
    for column in ("detector", "frame AUC", "frame AP", "frame EER", "video AUC", "seeds"):
        table.add_column(column)
    for label, entry in report["detectors"].items():
        frame, video = entry["mean"]["frame"], entry["mean"]["video"]
        table.add_row(label, cell(frame["auc"]), cell(frame["ap"]), cell(frame["eer"]), cell(video["auc"]),
                      str(len(entry["seeds"])))
    return table


@command
def demo(
    output: Path = typer.Option(Path("out/demo"), "--output", "-o", help="Where the demo writes everything."),
    frames: int = typer.Option(240, help="Frames per synthetic video."),
    steps: int = typer.Option(600, help="Training steps of the tiny swap model."),
    quiet: bool = QUIET,
) -> None:
    """The whole pipeline on built-in synthetic data, on CPU, in a few minutes."""
    from dfjax.demo import run_demo

    with progress_bar("items", quiet) as progress:
        made = run_demo(output, frames=frames, steps=steps, progress=progress)
    _print_summary("dfjax demo", made)


def main() -> None:
    try:
        app()
    finally:
        # The command is done and its outputs are closed and in place. What is left is the interpreter's
        # teardown, whose garbage collection walks every object that JAX, flax and orbax made: 0.4-0.6 s
        # at the end of a swap on 2 cores, for memory the operating system takes back at exit anyway.
        # Frozen, those objects are left out of it; the exit handlers still run (the face workers stop,
        # shared memory is unlinked), as do finalizers of what is freed by reference counting.
        gc.freeze()


if __name__ == "__main__":
    main()
