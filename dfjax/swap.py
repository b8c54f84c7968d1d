"""`dfjax swap`: a trained model turns faces of one identity into the other, in images and videos.

For a video the main process decodes and hands stretches of frames to worker processes that find,
track, smooth and align faces (dfjax.faces.pipeline, as `extract` does); meanwhile it runs batched,
jitted inference on the faces already found, colour-matches, masks and pastes them back, and encodes.
Every output says exactly what was changed: beside `OUT.mp4` it writes `OUT.masks.mkv` (lossless
per-frame manipulation masks in frame coordinates) and `OUT.json` (per frame: manipulated or not,
face boxes; the model), and the container carries a provenance tag saying the video is synthetic and
made by dfjax, with IPTC's digital source type `trainedAlgorithmicMedia` (an XMP packet in images).
The three are written under temporary names and renamed together at the end; existing outputs are
refused without `overwrite`, and replaced only once the new ones are complete.

A model with the deep-video-portrait conditioning branch (configs/swap_dvp.py) also gets, for every
face, the maps of the source frame's head pose, gaze, blinks and expression over its causal window,
retargeted to the target identity's geometry (`DriverControls`, dfjax.faces.retarget), so the
target's decoder draws the source's latent the way the source frame moves.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from dfjax import __version__, convert, media
from dfjax.data.controls import render_window
from dfjax.data.faceset import FaceSet
from dfjax.errors import UserError
from dfjax.faces.align import alignment_matrix, resize_points, transform_points, warp_face
from dfjax.faces.detect import DEFAULT_FACE_DETECTOR, parse_face_detector
from dfjax.faces.gaze import estimate_gaze
from dfjax.faces.identity import FaceEncoder
from dfjax.faces.landmarks import LandmarkPredictor
from dfjax.faces.pipeline import (ExtractOptions, collect_inputs, describe_face, face_finders, identity_descriptor,
                                  image_face_finder, video_faces)
from dfjax.faces.pose import estimate_pose
from dfjax.faces.smooth import check_smoothing
from dfjax.faces.retarget import (PoseLayout, Reference, controls_from_meta, pose_layout_of, reference_of, retarget,
                                  retarget_absolute)
from dfjax.faces.server import start_face_worker_server
from dfjax.io import check_new_outputs, check_writable, dumps, staged, write_text
from dfjax.models.conditioning import C_MAPS
from dfjax.training.core import TrainedModel, load_trained
from dfjax.training.swap import identity_sets

DIRECTIONS = {"a2b": "b", "b2a": "a"}
# --pose of a conditioned swap: how one identity's geometry is fitted, and how the source's controls
# are moved onto the target with it (dfjax.faces.retarget)
RETARGETING = {"relative": (reference_of, retarget), "absolute": (pose_layout_of, retarget_absolute)}
BATCH_SIZES = (1, 8, 32)  # inference shapes: a batch is padded up to one of these, so nothing recompiles
MAX_CRF = 51  # H.264's quality scale is 0 (lossless) to 51


@dataclass(frozen=True)
class SwapOptions:
    direction: str = "a2b"
    to: str = ""                # the identity to swap into, by name (models of N identities); "": from direction
    mask: str = "intersection"  # model | landmarks | intersection
    erode: int = 0              # pixels at the model's resolution (negative dilates)
    feather: int = 3
    color: str = "reinhard"     # none | reinhard | histogram
    blend: str = "alpha"        # alpha | seamless
    crf: int = 18
    preset: str = media.DEFAULT_PRESET  # x264's speed preset (media.X264_PRESETS): faster ones cost less CPU, make larger files
    encode_threads: int = 0     # x264's threads (0: x264 chooses)
    lossless: bool = False
    watermark: bool = False
    every_n: int = 10
    detector: str = DEFAULT_FACE_DETECTOR  # hog | cnn | hog,cnn (the CNN where HOG finds nothing)
    pose: str = "relative"      # conditioned models: relative (to each identity's median) | absolute
    workers: int = 0
    smoothing: str = "one-euro"  # landmarks over time: one-euro | kalman | none (dfjax.faces.smooth)


def provenance(model: TrainedModel, direction: str) -> dict[str, str]:
    """The metadata every swapped file carries: it is synthetic (in IPTC's words, trainedAlgorithmicMedia),
    made by dfjax, with which model."""
    return {"comment": f"SYNTHETIC: face-swapped by dfjax {__version__} ({direction}); not a real recording",
            **media.synthetic_tags(),
            "dfjax_synthetic": "true", "dfjax_version": __version__, "dfjax_direction": direction,
            "dfjax_model": os.path.abspath(model.workdir), "dfjax_model_step": str(model.step),
            "dfjax_config_hash": model.config_hash}


def check_options(options: SwapOptions) -> None:
    """A UserError naming the first option of `options` that is not allowed."""
    if options.direction not in DIRECTIONS:
        raise UserError(f"--direction {options.direction!r} is unknown; use a2b or b2a.")
    for value, allowed, name in ((options.mask, convert.MASK_SOURCES, "--mask"),
                                 (options.color, convert.COLOR_MODES, "--color"),
                                 (options.blend, convert.BLEND_MODES, "--blend"),
                                 (options.pose, tuple(RETARGETING), "--pose")):
        if value not in allowed:
            raise UserError(f"{name} {value!r} is unknown; choose one of {', '.join(allowed)}.")
    media.check_preset(options.preset)
    parse_face_detector(options.detector, "--detector")
    check_smoothing(options.smoothing)
    check_ranges((options.crf, 0, MAX_CRF, "--crf"), (options.feather, 0, None, "--feather"),
                 (options.every_n, 1, None, "--every-n"), (options.workers, 0, None, "--workers"),
                 (options.encode_threads, 0, None, "--encode-threads"))


def check_ranges(*checks: tuple[float, float, float | None, str]) -> None:
    """A UserError for the first (value, low, high or None, option name) whose value is out of range."""
    for value, low, high, name in checks:
        if value < low or (high is not None and value > high):
            allowed = f"{low} to {high}" if high is not None else f"{low} or more"
            raise UserError(f"{name} {value} is out of range; give {allowed}"
                            + (" (H.264's quality scale, lower is better)." if name == "--crf" else "."))


def target_identity(model: TrainedModel, options: SwapOptions) -> str:
    """The identity `options` swap into: `to` by name, else the direction's (a2b: b); one the model has."""
    target = options.to or DIRECTIONS[options.direction]
    names = model.generator.identities
    if target not in names:
        how = "--to" if options.to else f"--direction {options.direction}"
        raise UserError(f"{how} asks for identity {target!r}, but the model in {model.workdir} knows "
                        f"{', '.join(names)}; pass --to with one of them.")
    return target


def swap_label(options: SwapOptions) -> str:
    """How the swap is named in its provenance and sidecar: the direction (a2b) or the target (to_NAME)."""
    return f"to_{options.to}" if options.to else options.direction


def faceset_path(model: TrainedModel, side: str) -> Path:
    """The face set a model trained on for identity `side` (its synthetic one when none was given)."""
    given = identity_sets(model.config).get(side, "")
    return Path(given) if given else Path(model.workdir) / "synth" / "facesets" / side


def crop_settings(model: TrainedModel) -> tuple[str, float]:
    """Face type and coverage of the crops the model was trained on (from its face set)."""
    info_file = faceset_path(model, model.generator.identities[0]) / "faceset.json"
    if info_file.exists():
        info = json.loads(info_file.read_text())
        return info.get("face_type", "face"), float(info.get("coverage", 1.0))
    return "face", 1.0


def identity_reference(model: TrainedModel, side: str, fit=reference_of) -> Reference | PoseLayout:
    """Identity `side`'s geometry, from the face set the model trained on, in the model's crop pixels:
    `fit` of its landmarks and poses (reference_of: neutral landmarks and reference pose; pose_layout_of:
    its landmark layout as a function of head pose)."""
    path = faceset_path(model, side)
    if not (path / "faceset.json").exists():
        raise UserError(f"{path} is missing: a conditioned model retargets each face onto its identities' "
                        "training face sets; put the face set back or swap with a model without the branch.")
    faces = FaceSet(path)
    faces.require("landmarks", "matrix", "pose", "gaze")
    controls = controls_from_meta(faces.meta)
    landmarks = resize_points(controls.landmarks, model.resolution / faces.size)
    return fit(landmarks, controls.pose)


class DriverControls:
    """The controls (landmarks, pose, gaze, eye openness) of the driving faces, retargeted from the
    source identity to the target, over the causal window of the model's conditioning branch.

    Frames come in order; a frame without a face or a jump in frame numbers restarts the window,
    whose earliest face is then repeated, as in training (dfjax.data.controls).
    """

    def __init__(self, model: TrainedModel, target: str, pose: str = "relative"):
        self.window = model.generator.cond_channels // C_MAPS
        source = next(name for name in model.generator.identities if name != target)  # a conditioned model has two
        fit, self._retarget = RETARGETING[pose]
        self.source_ref, self.target_ref = (identity_reference(model, side, fit) for side in (source, target))
        self._history: list[dict] = []
        self._last: int | None = None

    def face(self, frame: np.ndarray, meta: dict) -> dict[str, np.ndarray]:
        """One face's retargeted controls; pose, gaze and eye aspect ratios are estimated when the
        metadata lacks them (stored alignments keep landmarks, matrix and pose only)."""
        landmarks = np.asarray(meta["landmarks"], np.float64)
        record = {"landmarks": landmarks, "matrix": meta["matrix"], "pose": meta.get("pose"),
                  "gaze": meta.get("gaze"), "ear": meta.get("ear")}
        if record["pose"] is None:
            record["pose"] = estimate_pose(landmarks, frame.shape[1], frame.shape[0]).as_dict()
        if record["gaze"] is None or record["ear"] is None:
            gaze = estimate_gaze(frame, landmarks)
            record.update(gaze=gaze.as_dict(), ear=list(gaze.ear))
        c = controls_from_meta([record])
        moved = self._retarget(c.landmarks, c.pose, c.gaze, c.eyes_open, self.source_ref, self.target_ref)
        return {key: np.asarray(value[0], np.float32) for key, value in moved._asdict().items()}

    def frame(self, index: int, frame: np.ndarray, metas: list[dict]) -> list[dict[str, np.ndarray]]:
        """Windowed controls {key: (window, ...)} of each face of frame `index`; the first face is tracked."""
        if not metas or self._last is None or index != self._last + 1:
            self._history = []
        self._last = index if metas else None
        windows = []
        for k, meta in enumerate(metas):
            now = self.face(frame, meta)
            history = [now]
            if k == 0:
                self._history = (self._history + [now])[-self.window:]
                history = self._history
            history = [history[0]] * (self.window - len(history)) + history
            windows.append({key: np.stack([h[key] for h in history]) for key in now})
        return windows


class Swapper:
    """Batched inference plus per-face conversion (mask, colour, paste-back) for one model."""

    def __init__(self, model: TrainedModel, options: SwapOptions):
        check_options(options)
        self.model, self.options = model, options
        target = target_identity(model, options)
        generator = model.generator

        self.driver = DriverControls(model, target, options.pose) if generator.cond_channels else None

        @jax.jit
        def infer(params, faces, controls=None):  # faces: uint8, a quarter of float32's bytes to move
            maps = None if controls is None else render_window(controls, model.resolution)
            faces = faces.astype(jnp.float32) / 255.0
            face, mask = generator.apply({"params": params}, faces, target, maps, method=generator.swap)
            return face, mask[..., 0]

        self._infer = infer
        self._compiling: Future | None = None

    def compile_ahead(self) -> None:
        """Compile inference for a full batch on a thread of its own, so that compiling overlaps the start
        of the face workers instead of holding up the first batch; `generate` waits for it (and raises
        what it raised). The colour transfer is run once there too: OpenCV builds its L*a*b* tables at
        the first conversion (0.07 s), which would otherwise hold up the first frame. Models with the
        conditioning branch compile at their first batch."""
        if self.driver is not None or self._compiling is not None:
            return
        size = self.model.resolution
        blank = np.zeros((size, size, 3), np.uint8)

        def ahead() -> None:
            faces = np.zeros((BATCH_SIZES[-1], *blank.shape), np.uint8)
            jax.block_until_ready(self._infer(self.model.params, faces, None))  # called as `generate` calls it
            convert.match_color(blank, blank, np.ones((size, size), np.float32), self.options.color)

        # an executor's thread is joined at exit: a swap ending early (a refused input, Ctrl-C) waits for it
        # rather than stopping XLA midway
        executor = ThreadPoolExecutor(1, thread_name_prefix="dfjax-compile")
        self._compiling = executor.submit(ahead)
        executor.shutdown(wait=False)  # the one task still runs; the thread ends with it

    def generate(self, crops: list[np.ndarray], controls: list[dict] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Generated faces (uint8) and model masks (float) for aligned crops, in fixed-size batches;
        `controls` (a conditioned model) gives each crop's windowed controls (DriverControls.frame)."""
        if self._compiling is not None:
            compiling, self._compiling = self._compiling, None
            compiling.result()  # raises here what the compiling raised
        faces, masks = [], []
        for start in range(0, len(crops), BATCH_SIZES[-1]):
            chunk = np.stack(crops[start:start + BATCH_SIZES[-1]])
            size = next(b for b in BATCH_SIZES if b >= len(chunk))
            padded = np.concatenate([chunk, np.zeros((size - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            driving = None
            if controls is not None:  # padded by repeating the first face's controls
                part = controls[start:start + BATCH_SIZES[-1]]
                driving = {key: np.stack([c[key] for c in part] + [part[0][key]] * (size - len(part)))
                           for key in part[0]}
            face, mask = jax.device_get(self._infer(self.model.params, padded, driving))
            if not (np.isfinite(face[: len(chunk)]).all() and np.isfinite(mask[: len(chunk)]).all()):
                raise UserError(f"the model in {self.model.workdir} (checkpoint step {self.model.step}) outputs NaN "
                                "or infinite values, so nothing it swaps would be a face; resume training from an "
                                f"earlier checkpoint (remove the later ones from {self.model.workdir}/checkpoints, "
                                f"then run `dfjax train --workdir {self.model.workdir}`).")
            faces.append((np.clip(face[: len(chunk)], 0, 1) * 255).round().astype(np.uint8))
            masks.append(np.asarray(mask[: len(chunk)], np.float32))
        return np.concatenate(faces), np.concatenate(masks)

    def composite(self, frame: np.ndarray, crop: np.ndarray, generated: np.ndarray, model_mask: np.ndarray,
                  meta: dict) -> tuple[np.ndarray, np.ndarray]:
        """Paste one generated face into its frame; returns (frame, manipulation mask uint8)."""
        o = self.options
        matrix = np.asarray(meta["matrix"], np.float64)
        size = crop.shape[0]
        landmarks_crop = transform_points(np.asarray(meta["landmarks"], np.float64), matrix)
        mask = convert.refine_mask(convert.face_mask(model_mask, landmarks_crop, size, o.mask), o.erode, o.feather)
        face = convert.match_color(generated, crop, mask, o.color)
        return convert.paste_back(frame, face, mask, matrix, o.blend)

    def frames(self, items: Iterable[tuple[int, np.ndarray, list]]) -> Iterator[tuple[int, np.ndarray, np.ndarray, list]]:
        """For (index, frame, faces) in order, yield (index, output frame, mask, face boxes), batching faces."""
        pending: list = []

        def flush():
            crops = [crop for _, _, found, _ in pending for crop, _, _ in found]
            controls = [c for *_, windows in pending for c in windows] if self.driver else None
            generated, masks = self.generate(crops, controls) if crops else ([], [])
            k = 0
            for index, frame, found, _ in pending:
                out, frame_mask, boxes = frame, np.zeros(frame.shape[:2], np.uint8), []
                for crop, _, meta in found:
                    out, face_mask = self.composite(out, crop, generated[k], masks[k], meta)
                    frame_mask = np.maximum(frame_mask, face_mask)
                    boxes.append([round(float(v), 1) for v in meta["box"]])
                    k += 1
                if self.options.watermark and boxes:
                    out = convert.watermark(out)
                    frame_mask = np.where(np.any(out != frame, axis=-1), 255, frame_mask).astype(np.uint8)
                yield index, out, frame_mask, boxes
            pending.clear()

        for index, frame, found in items:
            windows = self.driver.frame(index, frame, [meta for *_, meta in found]) if self.driver else []
            pending.append((index, frame, found, windows))
            if sum(len(found) for _, _, found, _ in pending) >= BATCH_SIZES[-1]:
                yield from flush()
        yield from flush()


def find_alignments(video: Path, alignments: Path) -> dict:
    """The alignments of `video` from a face-set folder (matched by source path, then name) or a .json file."""
    from dfjax.data.faceset import load_alignments

    files = sorted((alignments / "alignments").glob("*.json")) if alignments.is_dir() else [alignments]
    loaded = [load_alignments(f) for f in files if f.exists()]
    for match in (lambda d: Path(d["source"]).resolve() == video.resolve(), lambda d: Path(d["source"]).name == video.name):
        for data in loaded:
            if match(data):
                return data
    raise UserError(f"{alignments} has no alignments for {video}; run `dfjax extract {video} -o FACESET` "
                    "and pass that face set, or leave out --alignments to find faces live.")


def aligned_faces(path: Path, alignments: dict, finder: ExtractOptions):
    """(index, frame, [(crop, None, meta)]) from stored alignments: no detection, the extraction's landmarks."""
    for index, frame in media.iter_frames(path):
        found = []
        for face in alignments["faces"].get(index, [])[:1]:
            landmarks = np.asarray(face["landmarks"], np.float32)
            matrix = alignment_matrix(landmarks, finder.size, finder.face_type, finder.coverage)
            found.append((warp_face(frame, matrix, finder.size), None,
                          {"landmarks": landmarks, "matrix": matrix, "box": face["box"]}))
        yield index, frame, found


def _outputs(output: Path) -> tuple[Path, Path]:
    return output.with_suffix(".masks.mkv"), output.with_suffix(".json")


def check_driven_video(driver: Path, output: Path, overwrite: bool) -> tuple[Path, Path]:
    """For a command that renders a fake video driven by `driver` (reenact, animate): refuse a driver that
    is not a video, an output that is not one or is not writable, and existing outputs without
    `overwrite`; the masks and sidecar paths beside `output`."""
    if not driver.is_file() or not media.is_video(driver):
        raise UserError(f"driver {driver} is not a video file; pass a video (e.g. .mp4) with a face in it.")
    if not media.is_video(output):
        raise UserError(f"output {output} must be a video file (.mp4); fix -o.")
    masks_path, sidecar_path = _outputs(output)
    check_writable(output)
    check_new_outputs([output, masks_path, sidecar_path], overwrite)
    return masks_path, sidecar_path


def _image_outputs(images: list[Path], inputs: Path, output: Path) -> tuple[list[Path], Path]:
    """Each image's output path (a single image -> `output`; a folder -> `output`/name.png), and the sidecar."""
    if len(images) == 1 and not inputs.is_dir():
        return [output], output.with_suffix(".json")
    return [output / f"{path.stem}.png" for path in images], output / "swap.json"


def _mask_image(target: Path) -> Path:
    return target.with_name(f"{target.stem}.mask.png")


def swap_video(swapper: Swapper, path: Path, output: Path, identity, progress=None,
               alignments: Path | None = None) -> dict:
    o, model = swapper.options, swapper.model
    info = media.probe(path)
    face_type, coverage = crop_settings(model)
    finder = ExtractOptions(size=model.resolution, face_type=face_type, coverage=coverage, every_n=o.every_n,
                            detector=o.detector, workers=o.workers or max(1, (os.cpu_count() or 2) - 1),
                            smoothing=o.smoothing)  # default: one core is the main process's (decode, encode)
    masks_path, sidecar_path = _outputs(output)
    tag = provenance(model, swap_label(o))
    task = progress.add_task("swap", total=info.frames) if progress else None
    records, started = [], time.perf_counter()
    reference = identity_descriptor(identity) if identity else None
    stored = find_alignments(path, alignments) if alignments else None
    with staged([output, masks_path, sidecar_path]) as tmp:
        with media.VideoWriter(tmp[output], info.fps, info.width, info.height, crf=o.crf, preset=o.preset,
                               threads=o.encode_threads, lossless=o.lossless, metadata=tag,
                               audio_from=path) as writer, \
                media.VideoWriter(tmp[masks_path], info.fps, info.width, info.height, gray=True,
                                  metadata=tag) as mask_writer, \
                media.BackgroundWriter(writer, mask_writer) as write, \
                (contextlib.nullcontext((None, 0)) if stored else
                 face_finders(finder, reference, full_meta=swapper.driver is not None)) as (pool, workers):
            # encoding overlaps inference and paste; the face workers are stopped while the last frames encode
            # the first faces come back as one full inference batch, so the first frames go out sooner;
            # from stored alignments, decoding and cropping run on a thread, up to 8 frames ahead of the pasting
            faces = (media.prefetch(aligned_faces(path, stored, finder), depth=8) if stored else
                     video_faces(pool, workers, path, info, head=BATCH_SIZES[-1]))
            for index, frame, mask, boxes in swapper.frames(faces):
                write(frame, mask)
                records.append({"index": index, "manipulated": bool(boxes), "faces": [{"box": b} for b in boxes]})
                if progress:
                    progress.advance(task)
        seconds = time.perf_counter() - started
        swapped = sum(r["manipulated"] for r in records)
        sidecar = {"source": str(path), "output": str(output), "masks": str(masks_path), "direction": swap_label(o),
                   "model": {"workdir": os.path.abspath(model.workdir), "step": model.step,
                             "config_hash": model.config_hash, "arch": model.config.model.arch,
                             "cond_window": swapper.driver.window if swapper.driver else 0},
                   "options": asdict(o), "provenance": tag, "video": info.as_dict(), "frames": records}
        write_text(tmp[sidecar_path], dumps(sidecar))
    return {"output": str(output), "masks": str(masks_path), "sidecar": str(sidecar_path), "frames": len(records),
            "frames_swapped": swapped, "frames_passed_through": len(records) - swapped,
            "faces_from": "alignments" if stored else "live detection",
            "seconds": round(seconds, 2), "frames_per_second": round(len(records) / max(seconds, 1e-9), 1)}


def swap(inputs: Path, output: Path, model_dir: Path, options: SwapOptions = SwapOptions(), *,
         identity: Path | None = None, alignments: Path | None = None, overwrite: bool = False,
         progress=None) -> dict:
    """Swap the faces of a video, an image or a folder of images; returns a summary.

    Existing outputs (the video or image, its masks, its sidecar) are refused unless `overwrite`.
    """
    check_options(options)
    inputs, output = Path(inputs), Path(output)
    videos, images = collect_inputs([inputs])
    if videos:
        if len(videos) > 1 or images:
            raise UserError(f"{inputs} holds several videos; swap one video at a time.")
        if not media.is_video(output):
            raise UserError(f"output {output} must be a video file (.mp4) for a video input; fix -o.")
        media.probe(videos[0])  # an unreadable video is refused before the model loads
        outputs = [output, *_outputs(output)]
    else:
        if len(images) == 1 and not inputs.is_dir() and not media.is_image(output):
            raise UserError(f"output {output} must be an image file (.png or .jpg) for an image input; fix -o.")
        targets, sidecar = _image_outputs(images, inputs, output)
        if len(set(targets)) < len(targets):
            twice = next(t for t in targets if targets.count(t) > 1)
            named = [str(p) for p, t in zip(images, targets) if t == twice]
            raise UserError(f"{' and '.join(named[:2])} would both be written to {twice}; rename one of them "
                            "or swap the folders one at a time.")
        outputs = [path for target in targets for path in (target, _mask_image(target))] + [sidecar]
    check_writable(output, folder=inputs.is_dir())
    check_new_outputs(outputs, overwrite)
    if videos and alignments is None:
        start_face_worker_server()  # it imports dlib, cv2 and PyAV while the model loads
    model = load_trained(model_dir, "swap")
    swapper = Swapper(model, options)
    if videos:
        swapper.compile_ahead()  # while the face workers start
        return swap_video(swapper, videos[0], output, identity, progress, alignments)
    return swap_images(swapper, images, inputs, output, identity, progress)


def swap_images(swapper: Swapper, images: list[Path], inputs: Path, output: Path, identity, progress=None) -> dict:
    """Images: one output image each (a single image -> OUTPUT; a folder -> OUTPUT/name.png), plus sidecar."""
    model, o = swapper.model, swapper.options
    face_type, coverage = crop_settings(model)
    finder = ExtractOptions(size=model.resolution, face_type=face_type, coverage=coverage, detector=o.detector)
    reference = identity_descriptor(identity) if identity else None
    tracker = image_face_finder(finder, LandmarkPredictor(), reference,
                                FaceEncoder() if reference is not None else None)
    targets, sidecar = _image_outputs(images, inputs, output)
    tag = provenance(model, swap_label(o))
    records = []
    with staged([path for target in targets for path in (target, _mask_image(target))] + [sidecar]) as tmp:
        for path, target in zip(images, targets):
            frame = media.read_image(path)
            tracker.reset()
            face, _ = tracker(frame, 0)
            found = []
            if face is not None:
                crop, mask, meta = describe_face(frame, face, finder)
                found = [(crop, mask, meta)]
            _, out, frame_mask, boxes = next(swapper.frames([(0, frame, found)]))
            media.write_image(tmp[target], out, tag)
            media.write_image(tmp[_mask_image(target)], frame_mask)
            records.append({"source": str(path), "output": str(target), "manipulated": bool(boxes),
                            "faces": [{"box": b} for b in boxes]})
        write_text(tmp[sidecar], dumps({"direction": swap_label(o), "provenance": tag, "images": records}))
    swapped = sum(r["manipulated"] for r in records)
    return {"output": str(output), "sidecar": str(sidecar), "images": len(records), "images_swapped": swapped,
            "images_passed_through": len(records) - swapped}
