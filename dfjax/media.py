"""Video and image input/output through PyAV (FFmpeg's libraries).

Everything dfjax reads or writes as pixels goes through here: RGB uint8 frames in, H.264 with the
input's audio stream copied out, and container metadata (the provenance tag of swapped output).
Writers go to a temporary name beside the target (dfjax.io) and are renamed only when complete, so a
crash never leaves a half-written file that looks finished.

A video that decodes to fewer frames than its container lists (cut short by a failed download or
copy) is a UserError naming both numbers, unless the caller runs inside `allow_truncated()` (the
commands' `--allow-truncated`): then it is a warning and the frames that decode are used. Fakes are
labelled in the standard vocabulary too: IPTC's digital source type `trainedAlgorithmicMedia`, as an
XMP packet in PNG and JPEG and as container tags in MP4/MKV (`synthetic_tags`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import queue
import threading
from contextvars import ContextVar
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator
from xml.sax.saxutils import escape

import av
import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

from dfjax.errors import UserError, warn
from dfjax.io import atomic_write, partial_path

# x264's speed presets, fastest first (each slower one compresses better at the same CRF); placebo left out
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
DEFAULT_PRESET = "medium"  # x264's own default (cli.PRESET repeats it: the CLI imports this module only inside its commands)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# IPTC NewsCodes digital source type of media made by a trained model (a face swap, a reenactment)
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
_XMP = ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">\n'
        '   <Iptc4xmpExt:DigitalSourceType>{}</Iptc4xmpExt:DigitalSourceType>\n'
        '  </rdf:Description>\n'
        ' </rdf:RDF>\n'
        '</x:xmpmeta>\n'
        '<?xpacket end="r"?>')

_allow_truncated: ContextVar[bool] = ContextVar("dfjax_allow_truncated", default=False)


def synthetic_tags(source_type: str = TRAINED_ALGORITHMIC_MEDIA) -> dict[str, str]:
    """Metadata tags that say, in IPTC's vocabulary, how a file was made: `DigitalSourceType` (the code,
    e.g. trainedAlgorithmicMedia) and `DigitalSourceTypeURI` (the full NewsCodes URI). Given to
    `write_image`, they also go into an XMP packet (Iptc4xmpExt:DigitalSourceType)."""
    return {"DigitalSourceType": source_type.rsplit("/", 1)[-1], "DigitalSourceTypeURI": source_type}


def xmp_packet(source_type: str) -> str:
    """An XMP packet holding the IPTC digital source type `source_type` (a NewsCodes URI)."""
    return _XMP.format(escape(source_type))


@contextlib.contextmanager
def allow_truncated(allowed: bool = True) -> Iterator[None]:
    """Inside this block a video that ends before its container's frame count is a warning, not an error."""
    token = _allow_truncated.set(allowed)
    try:
        yield
    finally:
        _allow_truncated.reset(token)


def _listed_frames(stream) -> int | None:
    """The frame count the container states for `stream`, where it states one (MP4/MOV do, MKV does not).

    An edit list can hide leading frames of an MP4 that a stream copy kept (`ffmpeg -ss -c copy`); its
    stream duration is then shorter than the sample count says, so the smaller of the two is used."""
    if not stream.frames:
        return None
    listed = int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    if stream.duration is not None and stream.time_base is not None and rate:
        listed = min(listed, max(1, round(float(stream.duration * stream.time_base * rate))))
    return listed


def _short_video(path: str | Path, decoded: int, listed: int) -> None:
    """A video found shorter than its container says: refused, or (allowed) warned about."""
    what = f"{path} decodes to {decoded} of the {listed} frames its container lists"
    if _allow_truncated.get():
        warn(f"{what}; going on with those {decoded} (--allow-truncated).")
        return
    raise UserError(f"{what}, so it is probably truncated; re-download or re-encode it, or pass "
                    f"--allow-truncated to use the {decoded} frames that decode.")


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    """What a reader needs to know about a video before decoding it."""

    path: str
    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float
    has_audio: bool

    def as_dict(self) -> dict:
        return {"path": self.path, "width": self.width, "height": self.height,
                "fps": float(self.fps), "frames": self.frames,
                "duration": round(self.duration, 4), "has_audio": self.has_audio}


def _open(path: str | Path) -> av.container.InputContainer:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; check the path.")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a readable video ({exc.__class__.__name__}); "
                        "re-encode it (e.g. ffmpeg -i in -c:v libx264 out.mp4) or remove it.") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{path} has no video stream; pass a video or an image instead.")
    return container


def container_metadata(path: str | Path) -> dict[str, str]:
    """The container-level metadata tags (e.g. dfjax's provenance tag)."""
    with _open(path) as container:
        return dict(container.metadata)


def probe(path: str | Path) -> VideoInfo:
    """Read size, frame rate, frame count and audio presence without decoding pixels."""
    with _open(path) as container:
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate or Fraction(25)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        frames = stream.frames or int(round(duration * float(fps)))
        return VideoInfo(str(path), stream.codec_context.width, stream.codec_context.height,
                         Fraction(fps), frames, duration, bool(container.streams.audio))


def iter_frames(path: str | Path, start: int = 0, stop: int | None = None,
                gray: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame index, RGB uint8 frame) from `start` (inclusive) to `stop` (exclusive).

    Decodes from the first frame and skips (without colour conversion) up to `start`: seeking to a
    key frame gave broken pictures on real H.264 files (FaceForensics++ sequence 004 decodes
    green after a seek to its second IDR frame), and a wrong frame is worse than a slow one.

    A video that ends (or fails to decode) before `stop` and before the frame count its container
    lists is a UserError with both numbers, or a warning inside `allow_truncated()`.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        listed = _listed_frames(stream)
        index = -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index < start:
                    continue
                if stop is not None and index >= stop:
                    return
                yield index, frame.to_ndarray(format="gray" if gray else "rgb24")
        except av.error.FFmpegError as exc:
            if not _allow_truncated.get():
                raise UserError(f"{path} could not be decoded past frame {index} ({exc.__class__.__name__}); the "
                                "file may be truncated: re-encode or re-download it, or pass --allow-truncated "
                                "to use the frames before it.") from None
            warn(f"{path} could not be decoded past frame {index} ({exc.__class__.__name__}); going on with the "
                 f"{index + 1} frames before it (--allow-truncated).")
            return
        wanted = listed if stop is None or listed is None else min(listed, stop)
        if wanted is not None and index + 1 < wanted:
            _short_video(path, index + 1, listed)


def check_preset(preset: str, name: str = "--preset") -> None:
    """A UserError naming option `name` when `preset` is not one of x264's speed presets."""
    if preset not in X264_PRESETS:
        raise UserError(f"{name} {preset!r} is unknown; choose one of {', '.join(X264_PRESETS)} (x264's speed "
                        "presets, fastest first).")


class VideoWriter:
    """H.264 writer with optional audio stream copy and container metadata.

    Use as a context manager; the file appears under its final name only if the block completes.
    PyAV writes to a path (FFmpeg picks the muxer by its suffix and seeks in it), so the writer fills
    `dfjax.io.partial_path` itself and renames it when closed.
    """

    def __init__(self, path: str | Path, fps: float | Fraction, width: int, height: int, *,
                 crf: int = 18, preset: str = DEFAULT_PRESET, threads: int = 0, lossless: bool = False, gray: bool = False,
                 metadata: dict[str, str] | None = None, audio_from: str | Path | None = None):
        """`lossless`: RGB H.264 (libx264rgb, CRF 0), bit-exact. `gray`: single-channel FFV1 (lossless,
        for masks; use a .mkv path). `preset`: x264's speed preset (X264_PRESETS); `threads`: x264's
        encoding threads (0: x264 chooses, about 1.5 per core). Custom `metadata` keys are kept in
        MP4/MOV too."""
        self.path = Path(path)
        self._tmp = partial_path(self.path)
        self._format = "gray" if gray else "rgb24"
        options = {"movflags": "use_metadata_tags"} if self.path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._out = av.open(str(self._tmp), "w", options=options)
        except (OSError, av.error.FFmpegError) as exc:
            raise UserError(f"cannot write {self.path} ({exc}); choose a writable output path.") from None
        for key, value in (metadata or {}).items():
            self._out.metadata[key] = str(value)
        rate = Fraction(fps).limit_denominator(1001)
        x264_threads = {"threads": str(threads)} if threads else {}
        if gray:
            self._video = self._out.add_stream("ffv1", rate=rate)
            self._video.pix_fmt = "gray"
        elif lossless:
            self._video = self._out.add_stream("libx264rgb", rate=rate)
            self._video.pix_fmt = "rgb24"
            self._video.options = {"crf": "0", "preset": preset, **x264_threads}
        else:
            self._video = self._out.add_stream("libx264", rate=rate)
            self._video.pix_fmt = "yuv420p"
            self._video.options = {"crf": str(crf), "preset": preset, **x264_threads}
        self._video.width, self._video.height = width, height
        self._frame_time = 1 / rate
        self._audio_in = self._audio_out = None
        if audio_from is not None:
            source = _open(audio_from)
            if source.streams.audio:
                self._audio_in = source
                self._audio_out = self._out.add_stream_from_template(source.streams.audio[0])
            else:
                source.close()
        self.frames_written = 0

    def write(self, frame: np.ndarray) -> None:
        """One frame: RGB uint8 (H, W, 3), or (H, W) uint8 for a gray writer."""
        # wraps the array without copying it: FFmpeg has read it (converted it to YUV, or x264 and FFV1
        # copied it in) before encode returns, so the caller may reuse the array once `write` returns
        video_frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(frame), format=self._format)
        video_frame.pts = self.frames_written  # x264's rate control reads frame durations from these
        video_frame.time_base = self._frame_time
        for packet in self._video.encode(video_frame):
            self._out.mux(packet)
        self.frames_written += 1

    def _copy_audio(self) -> None:
        audio = self._audio_in.streams.audio[0]
        for packet in self._audio_in.demux(audio):
            if packet.dts is None:
                continue
            packet.stream = self._audio_out
            self._out.mux(packet)

    def close(self, ok: bool = True) -> None:
        try:
            if ok:
                for packet in self._video.encode():
                    self._out.mux(packet)
                if self._audio_in is not None:
                    self._copy_audio()
        finally:
            self._out.close()
            if self._audio_in is not None:
                self._audio_in.close()
        if ok:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(ok=exc_type is None)


class BackgroundWriter:
    """Writes frames to one or more VideoWriters, each on a thread of its own behind a bounded queue, so
    encoding overlaps the caller's work and the writers overlap each other (PyAV releases the GIL while
    it converts and encodes; a swap's H.264 video and FFV1 masks are encoded side by side).

        with media.BackgroundWriter(video, masks) as write:
            write(frame, mask)          # returns once queued; each queue holds `depth` frames at most

    An error in a thread is raised at the next `write` or on leaving the block; leaving the block
    waits until every queued frame is written.
    """

    def __init__(self, *writers: VideoWriter, depth: int = 16):
        self.writers = writers
        self._queues = [queue.Queue(depth) for _ in writers]
        self._error: BaseException | None = None
        self._threads = [threading.Thread(target=self._run, args=(writer, frames), name=f"dfjax-writer-{k}",
                                          daemon=True) for k, (writer, frames) in enumerate(zip(writers, self._queues))]

    def _run(self, writer: VideoWriter, frames: queue.Queue) -> None:
        while (frame := frames.get()) is not None:
            if self._error is None:
                try:
                    writer.write(frame)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                    self._error = exc

    def __call__(self, *frames: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        for queued, frame in zip(self._queues, frames):
            queued.put(frame)

    def __enter__(self) -> "BackgroundWriter":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for queued in self._queues:
            queued.put(None)
        for thread in self._threads:
            thread.join()
        if exc_type is None and self._error is not None:
            raise self._error


def prefetch(items, depth: int = 2):
    """Iterate `items` on a thread of its own, `depth` items ahead (e.g. decoding while the caller works);
    an error there is raised here, at the item where it happened. The thread runs in a copy of the
    caller's context, so that `allow_truncated()` around the caller holds for the decoding too."""
    buffer: queue.Queue = queue.Queue(depth)
    done = object()
    stop = threading.Event()

    def run() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put((item, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            buffer.put((None, exc))
        buffer.put((done, None))

    thread = threading.Thread(target=contextvars.copy_context().run, args=(run,), name="dfjax-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # let a producer blocked on a full buffer finish
            try:
                buffer.get_nowait()
            except queue.Empty:
                thread.join(0.01)


def read_image(path: str | Path) -> np.ndarray:
    """An RGB uint8 image, with EXIF orientation applied; 16-bit images are scaled to 8 bits."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; check the path.")
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode.startswith("I"):  # 16-bit (or 32-bit integer) grey: convert("RGB") would clip it white
                wide = np.asarray(image).astype(np.float64)
                grey = np.clip(np.round(wide / 257.0), 0, 255).astype(np.uint8)
                return np.repeat(grey[..., None], 3, axis=-1)
            return np.asarray(image.convert("RGB"))
    except Image.DecompressionBombError as exc:
        raise UserError(f"{path} has more pixels than Pillow's decompression-bomb limit allows ({exc}); "
                        "downscale it (e.g. to 4000 px on the long side) and pass that.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"{path} is not a readable image ({exc.__class__.__name__}); "
                        "replace or remove it.") from None


def write_image(path: str | Path, image: np.ndarray, metadata: dict[str, str] | None = None) -> None:
    """Write a PNG or JPEG atomically; `metadata` goes into PNG text chunks or the JPEG comment, and a
    `DigitalSourceTypeURI` in it (see `synthetic_tags`) also into an XMP packet (PNG iTXt
    "XML:com.adobe.xmp", JPEG APP1), where exiftool and photo tools read the IPTC digital source type."""
    pil = Image.fromarray(np.ascontiguousarray(image))
    metadata = metadata or {}
    source_type = metadata.get("DigitalSourceTypeURI")
    xmp = xmp_packet(source_type) if source_type else None
    if Path(path).suffix.lower() == ".png":
        info = PngImagePlugin.PngInfo()
        for key, value in metadata.items():
            info.add_text(key, str(value))
        if xmp:
            info.add_itxt("XML:com.adobe.xmp", xmp)
        atomic_write(path, lambda f: pil.save(f, format="PNG", pnginfo=info))
    else:
        comment = "; ".join(f"{k}={v}" for k, v in metadata.items()).encode()
        extra = {"xmp": xmp.encode()} if xmp else {}
        atomic_write(path, lambda f: pil.save(f, format="JPEG", quality=95, comment=comment, **extra))
