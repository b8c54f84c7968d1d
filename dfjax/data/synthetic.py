"""Procedural faces with exact ground truth: a built-in data source that needs no downloads.

Two (or more) cartoon identities move, talk, blink, look around and are lit from changing
directions in front of drifting backgrounds. Every frame comes with its exact landmarks, head pose,
gaze, blink state and face mask, and every pair of identities with the *exact* face swap (B's face
rendered inside A's frame), the answer that learned swaps are scored against.

    summary = synthesize("out/synth", frames=300, size=256, face_size=128)

writes videos/{a,b,a_as_b_truth,b_as_a_truth}.mp4, truth/<video>.npz and facesets/{a,b}/.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from dfjax import io, media
from dfjax.data.faceset import FaceSetWriter
from dfjax.data.synth_identity import IDENTITIES, Identity, get_identity, make_identity
from dfjax.data.synth_render import (FrameState, GroundTruth, neutral_state, render_frame,
                                     sample_states)
from dfjax.errors import UserError
from dfjax.faces.align import alignment_matrix, warp_face
from dfjax.faces.quality import blur_score
from dfjax.io import atomic_write, check_writable

__all__ = ["IDENTITIES", "Identity", "FrameState", "GroundTruth", "get_identity", "identity_names", "make_identity",
           "neutral_state", "render_frame", "render_swap", "render_video", "sample_states", "synthesize"]


def render_swap(context: Identity, face: Identity, state: FrameState,
                size: int | tuple[int, int] = (128, 128)) -> tuple[np.ndarray, GroundTruth]:
    """The exact face swap: `face`'s face in `context`'s frame (background, hair, ears, neck, clothes)."""
    return render_frame(face, state, size, context=context)


def render_video(identity: Identity, states: list[FrameState], path: str | Path,
                 size: int | tuple[int, int] = (256, 256), fps: float = 25.0, *,
                 context: Identity | None = None, crf: int = 18, preset: str = "veryfast",
                 on_frame=None) -> list[GroundTruth]:
    """Render `states` to an H.264 mp4 at `path`; returns the ground truth of every frame.

    on_frame(index, frame, truth) is called after each frame is written (for face sets, progress).
    """
    width, height = (size, size) if isinstance(size, int) else size
    tag = f"dfjax synthetic face={identity.name} context={(context or identity).name}"
    truths = []
    with media.VideoWriter(path, fps, width, height, crf=crf, preset=preset, metadata={"comment": tag}) as writer:
        for index, state in enumerate(states):
            frame, truth = render_frame(identity, state, (width, height), context=context)
            writer.write(frame)
            truths.append(truth)
            if on_frame is not None:
                on_frame(index, frame, truth)
    return truths


def save_truth(path: str | Path, truths: list[GroundTruth], **info) -> None:
    """Stack per-frame ground truth into one compressed .npz (written atomically)."""
    path = Path(path)
    arrays = {name: np.stack([getattr(t, name) for t in truths]) for name in
              ("landmarks", "pose", "gaze", "blink", "pupils", "eye_closure", "mouth_open", "rotation",
               "translation", "focal")}
    arrays["masks"] = np.stack([t.mask for t in truths])
    arrays.update({k: np.asarray(v) for k, v in info.items()})
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def _ear(eye: np.ndarray) -> float:
    return float((np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4]))
                 / (2.0 * max(np.linalg.norm(eye[0] - eye[3]), 1e-6)))


def _face_record(frame: np.ndarray, truth: GroundTruth, size: int, face_type: str,
                 coverage: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Aligned crop, exact mask and metadata of one rendered face (same keys as extraction)."""
    matrix = alignment_matrix(truth.landmarks, size, face_type, coverage)
    crop = warp_face(frame, matrix, size)
    mask = cv2.warpAffine(truth.mask, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    lm = truth.landmarks.astype(np.float64)
    pitch, yaw = (round(float(v), 2) + 0.0 for v in truth.gaze)
    eye = {"pitch": pitch, "yaw": yaw}
    meta = {"box": np.round(np.concatenate([lm.min(axis=0), lm.max(axis=0)]), 1),
            "landmarks": np.round(lm, 2), "matrix": np.round(matrix, 6),
            "pose": {k: round(float(v), 2) + 0.0 for k, v in zip(("yaw", "pitch", "roll"), truth.pose)},
            "gaze": {"pitch": pitch, "yaw": yaw, "right": eye, "left": eye}, "blink": truth.blink,
            "ear": [round(_ear(lm[36:42]), 3), round(_ear(lm[42:48]), 3)],
            "blur": round(blur_score(crop, mask), 2), "score": 1.0, "detected": True, "truth": True}
    return crop, mask, meta


MAX_IDENTITIES = 26


def identity_names(count: int, option: str = "--identities") -> tuple[str, ...]:
    """The names of `count` synthetic identities: the built-in a and b, then c, d, ... (random, reproducible).
    `option` names the setting in the error when `count` is out of range."""
    if not 2 <= count <= MAX_IDENTITIES:
        raise UserError(f"{option} {count} is out of range; give 2 to {MAX_IDENTITIES} (every pair of "
                        "identities gets a ground-truth swap video).")
    return tuple("abcdefghijklmnopqrstuvwxyz"[:count])


def synthesize(out_dir: str | Path, *, frames: int = 300, size: int = 256, face_size: int = 128,
               seed: int = 0, identities: tuple[str, ...] = ("a", "b"), fps: float = 25.0,
               face_type: str = "face", coverage: float = 1.0, overwrite: bool = False,
               progress=None) -> dict:
    """Render every identity's video, every pairwise ground-truth swap, their truth and face sets.

    identities: names in IDENTITIES, or any other string for a reproducible random identity.
    Identity number k moves with `sample_states(frames, seed * 1000 + k)`; `<x>_as_<y>_truth.mp4`
    is y's face in x's frames. progress: a rich Progress (or None).
    """
    out = Path(out_dir)
    if not identities or len(set(identities)) != len(identities):
        raise UserError(f"synth needs distinct identity names, got {list(identities)}; list each once.")
    if frames < 1 or size < 16 or size % 2 or face_size < 16:
        raise UserError("synth needs --frames >= 1, an even --size >= 16 (H.264) and --face-size >= 16; "
                        "fix the option.")
    check_writable(out, folder=True)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out} already exists and is not empty; choose another folder or pass --overwrite.")
    people = {name: get_identity(name) for name in identities}
    states = {name: sample_states(frames, seed * 1000 + k, fps) for k, name in enumerate(identities)}
    pairs = [(x, y) for x in identities for y in identities if x != y]
    task = progress.add_task("synth", total=frames * (len(people) + len(pairs))) if progress else None
    started = time.perf_counter()
    summary: dict = {"output": str(out), "identities": ", ".join(identities), "frames": frames,
                     "size": size, "face_size": face_size, "videos": 0, "faces": {}}

    def advance(*_):
        if progress:
            progress.advance(task)

    for name, person in people.items():
        video = out / "videos" / f"{name}.mp4"
        with FaceSetWriter(out / "facesets" / name, face_size, face_type=face_type, coverage=coverage,
                           overwrite=overwrite, extra={"synthetic": {"identity": name, "seed": seed,
                                                                     "mask_source": "rendered"}}) as writer:
            alignments: dict[int, list[dict]] = {}

            def add(index, frame, truth, writer=writer, video=video, alignments=alignments):
                crop, mask, meta = _face_record(frame, truth, face_size, face_type, coverage)
                writer.add(crop, mask, {"source": str(video), "frame": index, **meta})
                alignments[index] = [{k: meta[k] for k in ("box", "landmarks", "matrix", "pose")} | {"kept": True}]
                advance()

            truths = render_video(person, states[name], video, size, fps, on_frame=add)
            writer.add_alignments(str(video), media.probe(video).as_dict(), alignments)
        save_truth(out / "truth" / f"{name}.npz", truths, face=name, context=name, fps=fps)
        summary["faces"][name] = writer.count
        summary["videos"] += 1
    for context, face in pairs:
        stem = f"{context}_as_{face}_truth"
        truths = render_video(people[face], states[context], out / "videos" / f"{stem}.mp4", size, fps,
                              context=people[context], on_frame=advance)
        save_truth(out / "truth" / f"{stem}.npz", truths, face=face, context=context, fps=fps)
        summary["videos"] += 1
    seconds = time.perf_counter() - started
    total = frames * (len(people) + len(pairs))
    summary.update(seconds=round(seconds, 2), frames_per_second=round(total / max(seconds, 1e-9), 1))
    io.write_json(out / COMPLETE, summary)  # written last: a render stopped part-way has none
    return summary


COMPLETE = "synth.json"  # the summary of a finished render


def is_complete(out_dir: str | Path) -> bool:
    """Whether `out_dir` holds a finished `synthesize` render (not one stopped part-way)."""
    return (Path(out_dir) / COMPLETE).is_file()
