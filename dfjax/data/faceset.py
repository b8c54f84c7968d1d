"""The on-disk face set: aligned crops, masks and per-face metadata, plus per-video alignments.

Layout of a face-set folder:

    faceset.json      size, face type, coverage, mask kind, count, dfjax version
    faces.npy         uint8 (N, S, S, 3), opened with mmap
    masks.npy         uint8 (N, S, S), 0..255
    meta.jsonl        one JSON object per face: source, frame, box, 68 landmarks (frame coords),
                      the 2x3 alignment matrix, pose, gaze, blink, blur score
    alignments/       one JSON file per source video, faces keyed by frame index, so `swap`
                      can reuse the extraction instead of finding faces again

The writer builds everything in a hidden temporary folder (dfjax.io.atomic_dir) and renames it
when closed without error, so an interrupted extraction never leaves a face set that looks finished.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np

from dfjax import __version__
from dfjax.errors import UserError
from dfjax.io import atomic_dir, dumps, write_json, write_text

_CHUNK = 512


class FaceSetWriter:
    """Collects faces and writes a face set atomically (context manager)."""

    def __init__(self, path: str | Path, size: int, *, face_type: str = "face", coverage: float = 1.0,
                 mask_kind: str = "extended", overwrite: bool = False, extra: dict | None = None):
        self.path = Path(path)
        if self.path.exists() and any(self.path.iterdir()) and not overwrite:
            raise UserError(f"{self.path} already exists and is not empty; "
                            "choose another output folder or pass --overwrite.")
        self._folder = contextlib.ExitStack()  # closing it renames the finished folder into place
        try:
            self._tmp = self._folder.enter_context(atomic_dir(self.path, overwrite=True))
            (self._tmp / "alignments").mkdir()
        except OSError as exc:
            self._folder.__exit__(type(exc), exc, exc.__traceback__)
            raise UserError(f"cannot write {self.path} ({exc.strerror}); choose a writable folder.") from None
        self.info = {"size": size, "face_type": face_type, "coverage": coverage,
                     "mask_kind": mask_kind, "dfjax_version": __version__, **(extra or {})}
        self.count = 0
        self._faces: list[np.ndarray] = []
        self._masks: list[np.ndarray] = []
        self._chunks: list[Path] = []
        self._meta = open(self._tmp / "meta.jsonl", "w")
        self._alignment_names: set[str] = set()

    def add(self, face: np.ndarray, mask: np.ndarray, meta: dict) -> int:
        """Append one aligned face (S, S, 3) uint8 with its mask (S, S) uint8; returns its index."""
        size = self.info["size"]
        if face.shape != (size, size, 3) or mask.shape != (size, size):
            raise ValueError(f"face {face.shape} / mask {mask.shape} do not match size {size}")
        index = self.count
        self._faces.append(face.astype(np.uint8, copy=False))
        self._masks.append(mask.astype(np.uint8, copy=False))
        self._meta.write(dumps({"index": index, **meta}) + "\n")
        self.count += 1
        if len(self._faces) >= _CHUNK:
            self._flush()
        return index

    def add_alignments(self, source: str, video_info: dict, frames: dict[int, list[dict]]) -> Path:
        """Write the per-frame faces of one source video to alignments/<name>.json."""
        name = Path(source).stem
        while name in self._alignment_names:
            name += "_"
        self._alignment_names.add(name)
        target = self._tmp / "alignments" / f"{name}.json"
        payload = {"source": str(source), "video": video_info,
                   "faces": {str(k): v for k, v in sorted(frames.items())}}
        write_text(target, dumps(payload))
        return self.path / "alignments" / target.name

    def _flush(self) -> None:
        if not self._faces:
            return
        chunk = self._tmp / f"chunk{len(self._chunks):05d}.npz"
        np.savez(chunk, faces=np.stack(self._faces), masks=np.stack(self._masks))
        self._chunks.append(chunk)
        self._faces, self._masks = [], []

    def _finish(self) -> None:
        self._flush()
        self._meta.close()
        size = self.info["size"]
        faces = np.lib.format.open_memmap(self._tmp / "faces.npy", "w+", np.uint8, (self.count, size, size, 3))
        masks = np.lib.format.open_memmap(self._tmp / "masks.npy", "w+", np.uint8, (self.count, size, size))
        start = 0
        for chunk in self._chunks:
            with np.load(chunk) as data:
                n = len(data["faces"])
                faces[start:start + n] = data["faces"]
                masks[start:start + n] = data["masks"]
            start += n
            chunk.unlink()
        faces.flush(), masks.flush()
        del faces, masks
        write_json(self._tmp / "faceset.json", {**self.info, "count": self.count}, indent=1)
        self._folder.close()

    def abort(self, exc: BaseException | None = None) -> None:
        """Remove the temporary folder; the destination stays as it was."""
        self._meta.close()
        exc = exc or RuntimeError("face set aborted")
        self._folder.__exit__(type(exc), exc, exc.__traceback__)

    def __enter__(self) -> "FaceSetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._finish()
        else:
            self.abort(exc)


class FaceSet:
    """A face set opened for reading; faces and masks are memory-mapped."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"face set {self.path} does not exist; make it with `dfjax extract VIDEO -o {self.path}`.")
        info_file = self.path / "faceset.json"
        if not info_file.exists():
            raise UserError(f"{self.path} is not a face set (no faceset.json); "
                            "make one with `dfjax extract VIDEO -o FOLDER` or `dfjax synth`.")
        try:
            self.info = json.loads(info_file.read_text())
            self.faces = np.load(self.path / "faces.npy", mmap_mode="r", allow_pickle=False)
            self.masks = np.load(self.path / "masks.npy", mmap_mode="r", allow_pickle=False)
            with open(self.path / "meta.jsonl") as f:
                self.meta = [json.loads(line) for line in f]
            count = int(self.info["count"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0][:100]
            raise UserError(f"face set {self.path} is damaged ({reason}); extract it again.") from None
        if not (len(self.faces) == len(self.masks) == len(self.meta) == count):
            raise UserError(f"face set {self.path} is inconsistent (faces, masks and meta.jsonl differ in length); "
                            "extract it again.")
        if not all(isinstance(m, dict) for m in self.meta):
            line = next(i for i, m in enumerate(self.meta) if not isinstance(m, dict)) + 1
            raise UserError(f"face set {self.path} is damaged (meta.jsonl line {line} is not a JSON object); "
                            "extract it again.")

    def require(self, *keys: str) -> None:
        """A UserError naming the first meta.jsonl line that lacks one of `keys` (what a caller reads)."""
        for line, record in enumerate(self.meta, start=1):
            missing = [key for key in keys if key not in record]
            if missing:
                raise UserError(f"face set {self.path} lacks {', '.join(missing)} in meta.jsonl line {line}, "
                                "which this command needs; extract it again with `dfjax extract`.")

    @property
    def size(self) -> int:
        return int(self.info["size"])

    def __len__(self) -> int:
        return len(self.meta)

    def landmarks(self) -> np.ndarray:
        """(N, 68, 2) float32 landmarks in frame coordinates."""
        return np.asarray([m["landmarks"] for m in self.meta], np.float32).reshape(len(self), 68, 2)

    def matrices(self) -> np.ndarray:
        """(N, 2, 3) alignment matrices (frame -> crop)."""
        return np.asarray([m["matrix"] for m in self.meta], np.float64).reshape(len(self), 2, 3)

    def alignment_files(self) -> list[Path]:
        return sorted((self.path / "alignments").glob("*.json"))


def load_alignments(path: str | Path) -> dict:
    """One alignments file: {"source", "video", "faces": {frame index (int): [face, ...]}}."""
    data = json.loads(Path(path).read_text())
    data["faces"] = {int(k): v for k, v in data["faces"].items()}
    return data
