"""The face pipeline as a library: faces found, smoothed, aligned and described in videos and images.

`extract`, `swap` and `reenact` all need the same thing: for every frame the face in it (detected every
N frames, tracked and smoothed in between), its aligned crop, mask and metadata (landmarks, head pose,
gaze, blinks, blur). Here it is once. A pool of worker processes (`face_finders`) takes stretches of
decoded frames; each stretch carries a few frames from before its start so that detection, tracking
and smoothing are already settled at its first recorded frame, and results come back in input order
(`video_faces`, `results_in_order`), so the main process overlaps decoding and its own work with the
workers'. The frames travel through shared memory (`FrameRing`): the main process copies a stretch
into a free slot and the worker is sent only the slot's name and the frames' shape, not 2.7 MB per
720p frame through a pipe. Stills go through `image_face_finder`, which detects upsampled on every
image.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from dfjax import media
from dfjax.errors import UserError
from dfjax.faces.align import FACE_TYPES, alignment_matrix, transform_points, warp_face
from dfjax.faces.detect import DEFAULT_FACE_DETECTOR, FaceDetector, parse_face_detector
from dfjax.faces.gaze import estimate_gaze
from dfjax.faces.identity import FaceEncoder
from dfjax.faces.landmarks import LandmarkPredictor
from dfjax.faces.masks import MASKS, landmark_mask
from dfjax.faces.pose import estimate_pose
from dfjax.faces.quality import blur_score
from dfjax.faces.server import start_face_worker_server
from dfjax.faces.smooth import KALMAN_DEFAULTS, ONE_EURO_DEFAULTS, check_smoothing
from dfjax.faces.track import FaceTracker, TrackedFace

BLURRY = "blur below --blur-threshold"
WARMUP_FRAMES = 8
STRETCH = 48  # frames per work unit: long enough that re-detection at its start costs little
HANDS_ON, GOES_ON = "hands on", "goes on"  # a unit whose tracker the next unit continues, and that next unit


@dataclass(frozen=True)
class ExtractOptions:
    """How faces are found and what is recorded of each: the options of `dfjax extract`, which `swap`
    and `reenact` reuse for live face finding."""

    size: int = 256
    face_type: str = "face"
    coverage: float = 1.0
    mask_kind: str = "extended"
    every_n: int = 10
    detector: str = DEFAULT_FACE_DETECTOR
    max_side: int = 640
    min_size: float = 0.0
    blur_threshold: float = 0.0
    smoothing: str = "one-euro"  # one-euro | kalman | none (dfjax.faces.smooth)
    one_euro_min_cutoff: float = ONE_EURO_DEFAULTS["min_cutoff"]  # Hz: a still face's cutoff (lower: smoother, more lag)
    one_euro_beta: float = ONE_EURO_DEFAULTS["beta"]  # per px/s: how fast the cutoff rises with speed (higher: less lag)
    kalman_process_noise: float = KALMAN_DEFAULTS["process_noise"]  # px/s^2 (higher: follows turns faster)
    kalman_measurement_noise: float = KALMAN_DEFAULTS["measurement_noise"]  # px (higher: smoother)
    workers: int = 0  # 0: every core

    def smoothing_params(self) -> dict:
        """The parameters of the chosen filter, for dfjax.faces.smooth.make_smoother."""
        if self.smoothing == "one-euro":
            return {"min_cutoff": self.one_euro_min_cutoff, "beta": self.one_euro_beta}
        if self.smoothing == "kalman":
            return {"process_noise": self.kalman_process_noise, "measurement_noise": self.kalman_measurement_noise}
        return {}


def check_options(options: ExtractOptions) -> None:
    """A UserError naming the option when face type, mask, face detector or crop size is not allowed."""
    if options.face_type not in FACE_TYPES:
        raise UserError(f"unknown face type {options.face_type!r}; choose one of {', '.join(FACE_TYPES)}.")
    MASKS.get(options.mask_kind, "--mask")
    parse_face_detector(options.detector, "--detector")
    if options.size < 16 or options.coverage <= 0:
        raise UserError("--size must be at least 16 and --coverage positive; fix the option.")
    for value, low, name in ((options.every_n, 1, "--every-n"), (options.workers, 0, "--workers"),
                             (options.max_side, 16, "--max-side"), (options.min_size, 0, "--min-size"),
                             (options.blur_threshold, 0, "--blur-threshold")):
        if value < low:
            raise UserError(f"{name} {value} is out of range; give {low} or more.")
    check_smoothing(options.smoothing)
    for value, name in ((options.one_euro_min_cutoff, "--one-euro-min-cutoff"),
                        (options.kalman_process_noise, "--kalman-process-noise"),
                        (options.kalman_measurement_noise, "--kalman-measurement-noise")):
        if not value > 0:
            raise UserError(f"{name} {value} is out of range; give a number above 0.")
    if not options.one_euro_beta >= 0:
        raise UserError(f"--one-euro-beta {options.one_euro_beta} is out of range; give 0 or more.")


@dataclass
class UnitResult:
    """What one worker found in one stretch of a video (or one image)."""

    source: str
    frames_read: int = 0
    faces: list = field(default_factory=list)  # (frame, crop, mask, meta) of kept faces
    alignments: dict = field(default_factory=dict)  # frame -> [face dict]
    dropped: Counter = field(default_factory=Counter)
    tracker: dict | None = None  # the tracker's state at the end, for the unit that goes on from it


# ----------------------------------------------------------------------------- inputs

def collect_inputs(inputs: list[str | Path]) -> tuple[list[Path], list[Path]]:
    """Expand files and folders into (videos, images); bad paths are a UserError."""
    videos, images = [], []
    if not inputs:
        raise UserError("no input given; pass videos, images or folders of them.")
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise UserError(f"{path} does not exist; check the path.")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and (media.is_video(p) or media.is_image(p)))
            if not found:
                raise UserError(f"{path} contains no videos or images; point at a folder that has some.")
        else:
            if not (media.is_video(path) or media.is_image(path)):
                raise UserError(f"{path} is neither a video ({', '.join(media.VIDEO_SUFFIXES)}) "
                                f"nor an image ({', '.join(media.IMAGE_SUFFIXES)}); pass a supported file.")
            found = [path]
        for p in found:
            (videos if media.is_video(p) else images).append(p)
    return videos, images


def identity_descriptor(photo: str | Path) -> np.ndarray:
    """The face descriptor of the single largest face in a reference photo."""
    image = media.read_image(photo)
    found = FaceDetector(upsample=1)(image)
    if not found:
        raise UserError(f"no face found in the --identity photo {photo}; use a clear frontal photo.")
    box = max(found, key=lambda d: d.area).box
    return FaceEncoder()(image, LandmarkPredictor()(image, box), box)


# ----------------------------------------------------------------------------- one face

def describe_face(frame: np.ndarray, face: TrackedFace, options: ExtractOptions,
                  full: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """Aligned crop, mask and metadata of one face. Not `full`: the metadata is the geometry alone (box,
    landmarks, matrix, score, detected), without pose, gaze, blinks and blur (a swap without the
    conditioning branch uses none of them; they cost about a millisecond a face)."""
    h, w = frame.shape[:2]
    matrix = alignment_matrix(face.landmarks, options.size, options.face_type, options.coverage)
    crop = warp_face(frame, matrix, options.size)
    mask = landmark_mask(transform_points(face.landmarks, matrix), options.size, options.size, options.mask_kind)
    if not full:
        return crop, mask, {"box": np.round(face.box, 1), "landmarks": np.round(face.landmarks, 2),
                            "matrix": np.round(matrix, 6), "score": round(face.score, 3), "detected": face.detected}
    gaze = estimate_gaze(frame, face.landmarks).as_dict()
    meta = {"box": np.round(face.box, 1), "landmarks": np.round(face.landmarks, 2), "matrix": np.round(matrix, 6),
            "pose": estimate_pose(face.landmarks, w, h).as_dict(),
            "gaze": {k: gaze[k] for k in ("pitch", "yaw", "right", "left")}, "blink": gaze["blink"], "ear": gaze["ear"],
            "blur": round(blur_score(crop, mask), 2), "score": round(face.score, 3), "detected": face.detected}
    return crop, mask, meta


def image_face_finder(options: ExtractOptions, predictor: LandmarkPredictor, reference: np.ndarray | None = None,
                      encoder: FaceEncoder | None = None) -> FaceTracker:
    """A tracker for still images: upsampled detection on every call, nothing carried between images
    (call `reset()` before each image)."""
    return FaceTracker(FaceDetector(options.detector, options.max_side, upsample=1), predictor, every_n=1,
                       min_size=options.min_size, identity=reference, encoder=encoder, smoothing=False)


# ----------------------------------------------------------------------------- workers

_worker: dict = {}


def _init_worker(options: ExtractOptions, identity: np.ndarray | None, full_meta: bool = True) -> None:
    import cv2

    cv2.setNumThreads(1)
    predictor = LandmarkPredictor()
    encoder = FaceEncoder() if identity is not None else None
    _worker.update(options=options, identity=identity, full_meta=full_meta,
                   detector=FaceDetector(options.detector, options.max_side),
                   predictor=predictor, encoder=encoder)


def _record(result: UnitResult, index: int, frame: np.ndarray, face: TrackedFace | None, reason: str) -> None:
    options: ExtractOptions = _worker["options"]
    result.frames_read += 1
    if face is None:
        result.dropped[reason] += 1
        return
    crop, mask, meta = describe_face(frame, face, options, _worker.get("full_meta", True))
    keep = meta["blur"] >= options.blur_threshold if "blur" in meta else True
    result.alignments[index] = [{k: meta[k] for k in ("box", "landmarks", "matrix", "pose") if k in meta}
                                | {"kept": keep}]
    if keep:
        result.faces.append((index, crop, mask, {"source": result.source, "frame": index, **meta}))
    else:
        result.dropped[BLURRY] += 1


def _slot_frames(ref: "SlotRef") -> np.ndarray:
    """The frames a unit's slot holds, read in place (each slot is mapped once per worker)."""
    slots: dict = _worker.setdefault("slots", {})
    if ref.name not in slots:
        while len(slots) >= 64:  # slots of rings since closed (no view of them is left here)
            try:
                slots.pop(next(iter(slots))).close()
            except BufferError:
                pass
        slots[ref.name] = shared_memory.SharedMemory(ref.name)
    return np.ndarray(ref.shape, np.uint8, buffer=slots[ref.name].buf)


def _video_unit(args: tuple[str, int, "list[np.ndarray] | SlotRef", int, float, "str | dict | None"]) -> UnitResult:
    """Faces of one stretch. `link`: None; HANDS_ON (the result carries the tracker's state); or the
    state a HANDS_ON unit handed on (the tracker goes on from it, as if the two were one stretch)."""
    path, start, frames, warmup, fps, link = args
    if isinstance(frames, SlotRef):
        frames = _slot_frames(frames)
    options: ExtractOptions = _worker["options"]
    tracker = FaceTracker(_worker["detector"], _worker["predictor"], every_n=options.every_n,
                          min_size=options.min_size, identity=_worker["identity"], encoder=_worker["encoder"],
                          fps=fps, smoothing=options.smoothing, smoothing_params=options.smoothing_params())
    if isinstance(link, dict):
        tracker.resume(link)
    result = UnitResult(path)
    for offset, frame in enumerate(frames):
        index = start - warmup + offset
        face, reason = tracker(frame, index)
        if offset >= warmup:
            _record(result, index, frame, face, reason)
    if link == HANDS_ON:
        result.tracker = tracker.state()
    return result


def _image_unit(path: str) -> UnitResult:
    if "image_finder" not in _worker:  # made at the first still: its detector costs 0.2 s, which video skips
        _worker["image_finder"] = image_face_finder(_worker["options"], _worker["predictor"], _worker["identity"],
                                                    _worker["encoder"])
    tracker: FaceTracker = _worker["image_finder"]
    tracker.reset()
    result = UnitResult(path)
    frame = media.read_image(path)
    face, reason = tracker(frame, 0)
    _record(result, 0, frame, face, reason)
    return result


def _run_unit(unit: tuple) -> UnitResult:
    kind, args = unit
    return _video_unit(args) if kind == "video" else _image_unit(args)


# ----------------------------------------------------------------------------- shared frames

class SlotRef(NamedTuple):
    """Where a unit's frames lie: the shared-memory slot's name, its index in the ring, their shape."""

    name: str
    slot: int
    shape: tuple


class RingClosed(Exception):
    """Raised in a producer waiting for a free slot of a ring that is being closed."""


class FrameRing:
    """Slots of shared memory, each big enough for one unit's frames (warm-up and stretch), through
    which the main process hands frames to the face workers instead of pickling them through a pipe.

    `put` copies frames into a free slot (waiting while none is free: the ring bounds how far decoding
    runs ahead) and returns the `SlotRef` to send; `frames` reads them back in the main process;
    `release` frees the slot once its unit's result is in and its frames are no longer read.
    `close` unlinks every segment (and wakes a producer still waiting); `face_finders` calls it on
    the way out, error or Ctrl-C included.
    """

    def __init__(self, slots: int, frame_bytes: int, frames_per_slot: int = WARMUP_FRAMES + STRETCH):
        self.slot_bytes = max(1, frame_bytes * frames_per_slot)
        self._segments: list[shared_memory.SharedMemory] = []
        self._free: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        try:
            for slot in range(slots):
                self._segments.append(shared_memory.SharedMemory(create=True, size=self.slot_bytes))
                self._free.put(slot)
        except BaseException:
            self.close()
            raise

    def put(self, frames: list[np.ndarray]) -> SlotRef:
        shape = (len(frames), *frames[0].shape)
        if int(np.prod(shape)) > self.slot_bytes:
            raise ValueError(f"{shape} frames do not fit a slot of {self.slot_bytes} bytes")
        while True:
            if self._closed.is_set():
                raise RingClosed
            try:
                slot = self._free.get(timeout=0.1)
                break
            except queue.Empty:
                continue
        view = np.ndarray(shape, np.uint8, buffer=self._segments[slot].buf)
        for k, frame in enumerate(frames):
            view[k] = frame
        return SlotRef(self._segments[slot].name, slot, shape)

    def frames(self, ref: SlotRef) -> np.ndarray:
        return np.ndarray(ref.shape, np.uint8, buffer=self._segments[ref.slot].buf)

    def release(self, ref: SlotRef) -> None:
        self._free.put(ref.slot)

    def close(self) -> None:
        self._closed.set()
        for segment in self._segments:
            try:
                segment.unlink()
            except FileNotFoundError:
                pass
            try:
                segment.close()
            except BufferError:  # a view still refers to it (an error on the way): the mapping goes with the process
                pass
        self._segments = []


class FaceFinders:
    """The face workers' pool (`apply_async` as multiprocessing.Pool's) and the frame rings it hands
    frames through, which it unlinks when `face_finders` ends.

    The pool is made on a thread of its own (`starting`, a Future): its workers fork only once the
    server has loaded the models (up to a second after a cold start), and meanwhile the caller decodes
    its first frames. The first `apply_async` waits for it, and raises what making it raised.
    """

    def __init__(self, starting: Future, workers: int):
        self._starting, self.workers = starting, workers
        self._rings: list[FrameRing] = []

    @property
    def pool(self):
        return self._starting.result()

    def apply_async(self, *args, **kwargs):
        return self.pool.apply_async(*args, **kwargs)

    def no_more_work(self) -> None:
        """No unit will follow those handed out: the workers exit as soon as theirs are done, while the
        caller still reads results, instead of being stopped when `face_finders` ends."""
        self.pool.close()

    def ring(self, frame_bytes: int) -> FrameRing:
        """A ring for frames of up to `frame_bytes` each, with a slot for every unit in flight (`2 x
        workers`, the one being read back included) and one decoded ahead. Every slot is fresh memory
        the first time (about 0.1 CPU s each at 720p, for its pages), so no more are made than this."""
        ring = FrameRing(2 * self.workers + 1, frame_bytes)
        self._rings.append(ring)
        return ring

    def close(self) -> None:
        while self._rings:
            self._rings.pop().close()


# ----------------------------------------------------------------------------- driving the pool

def stretches(frames: Iterable[np.ndarray], head: int = 0) -> Iterator[tuple[int, list[np.ndarray], int, str | None]]:
    """One video's work units, from its frames in order, as (first frame, its frames with the warm-up
    frames before them, how many warm-up frames, link): stretches of STRETCH frames, each with the
    WARMUP_FRAMES before it, so that results do not depend on how the video is cut. With `head`, the
    first `head` frames go out alone as soon as they are there, as a unit that HANDS_ON its tracker to
    the rest of the first stretch (GOES_ON; see `results_in_order`): the same faces, back sooner."""
    warm: list[np.ndarray] = []
    chunk: list[np.ndarray] = []
    start, sent = 0, 0  # sent: frames of the chunk already handed out (the head)
    for index, frame in enumerate(frames):
        chunk.append(frame)
        if start == 0 and 0 < head < STRETCH and len(chunk) == head:
            yield 0, list(chunk), 0, HANDS_ON
            sent = head
        if len(chunk) == STRETCH:
            yield start + sent, warm + chunk[sent:], len(warm), GOES_ON if sent else None
            warm, chunk, start, sent = chunk[-WARMUP_FRAMES:], [], index + 1, 0
    if len(chunk) > sent:
        yield start + sent, warm + chunk[sent:], len(warm), GOES_ON if sent else None


def work_units(videos: list[Path], images: list[Path], infos: dict[str, media.VideoInfo],
               ring: FrameRing | None = None, head: int = 0) -> Iterator[tuple]:
    """Work units in input order: each video's `stretches` (decoded here, with `head` as there), images.

    The main process decodes each video once, front to back, and hands out stretches, because
    seeking inside H.264 is not reliable (see `media.iter_frames`). With a `ring` a stretch's frames
    go into one of its slots and the unit carries the `SlotRef`; without, the frames themselves.
    """
    for path in videos:
        fps = float(infos[str(path)].fps)
        for start, frames, warmup, link in stretches((frame for _, frame in media.iter_frames(path)), head):
            yield "video", (str(path), start, ring.put(frames) if ring is not None else frames, warmup, fps, link)
    for path in images:
        yield "image", str(path)


def results_in_order(pool: FaceFinders, units: Iterator[tuple], depth: int,
                     ring: FrameRing | None = None) -> Iterator[tuple[tuple, UnitResult]]:
    """Run units on the pool with at most `depth` in flight, yielding (unit, result) in input order.
    A unit that GOES_ON from the one before it is handed out once that one's result (with its
    tracker's state) is in. A unit's slot of `ring` is released when the consumer asks for the next
    one. Once every unit is handed out the pool takes no more work (`no_more_work`): one call per
    `face_finders` block."""
    pending: deque = deque()
    last = None  # the future of the unit handed out last

    def done(unit: tuple) -> None:
        if ring is not None and unit[0] == "video" and isinstance(unit[1][2], SlotRef):
            ring.release(unit[1][2])

    for unit in units:
        if unit[0] == "video" and unit[1][5] == GOES_ON:  # it needs the tracker of the unit before it
            kind, (*args, _) = unit
            unit = kind, (*args, last.get().tracker)
        last = pool.apply_async(_run_unit, (unit,))
        pending.append((unit, last))
        if len(pending) >= depth:
            unit, future = pending.popleft()
            yield unit, future.get()
            done(unit)
    pool.no_more_work()
    while pending:
        unit, future = pending.popleft()
        yield unit, future.get()
        done(unit)


def largest_frame_bytes(infos: dict[str, media.VideoInfo]) -> int:
    """Bytes of the largest RGB frame among these videos (0 when there are none)."""
    return max((info.width * info.height * 3 for info in infos.values()), default=0)


@contextmanager
def face_finders(options: ExtractOptions, reference: np.ndarray | None, full_meta: bool = True):
    """A pool of worker processes that find, align and describe faces (one per core by default), as
    (FaceFinders, worker count); the shared memory it handed frames through is unlinked on the way
    out, however the block ends. `full_meta` False: geometry only (see `describe_face`)."""
    if not full_meta and options.blur_threshold > 0:
        raise ValueError("a blur threshold needs the full metadata (the blur score)")
    check_options(options)  # here too (swap, reenact): a worker failing to start is restarted forever
    workers = options.workers or os.cpu_count() or 1
    ctx = start_face_worker_server()
    executor = ThreadPoolExecutor(1, thread_name_prefix="dfjax-face-pool")
    starting = executor.submit(ctx.Pool, workers, _init_worker, (options, reference, full_meta))
    executor.shutdown(wait=False)  # the one task still runs; the thread ends with it
    finders = FaceFinders(starting, workers)
    try:
        yield finders, workers
    finally:
        finders.close()
        if starting.exception() is None:  # waits for the pool if it is still being made
            starting.result().terminate()  # as leaving `with Pool()` does


def video_faces(finders: FaceFinders, workers: int, path: Path, info: media.VideoInfo,
                head: int = 0) -> Iterator[tuple[int, np.ndarray, list]]:
    """(frame index, frame, [(crop, mask, meta)] of the face kept there) for every frame of a video, in order.

    Decoding happens here, on a thread of its own, while the workers find faces in the stretches
    handed out before (through shared memory), so a consumer (e.g. `swap`) overlaps its own work
    with both. Each yielded frame is the consumer's own copy. `head`: the first faces come back
    once that many frames are tracked, not a whole stretch (the same faces; see `stretches`).
    """
    ring = finders.ring(info.width * info.height * 3)
    units = media.prefetch(work_units([path], [], {str(path): info}, ring, head))  # decoding on a thread of its own
    frames = None
    try:
        for unit, result in results_in_order(finders, units, 2 * workers, ring):
            _, (_, start, ref, warmup, _, _) = unit
            by_frame = {index: (crop, mask, meta) for index, crop, mask, meta in result.faces}
            frames = ring.frames(ref)
            for offset in range(ref.shape[0] - warmup):
                face = by_frame.get(start + offset)
                yield start + offset, frames[warmup + offset].copy(), [face] if face else []
            frames = None
    finally:
        frames = None
        ring.close()  # unlinks the slots and wakes the decoding thread if it waits for one,
        units.close()  # so that it ends here
