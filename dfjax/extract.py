"""`dfjax extract`: videos and images in, one face set out.

The face pipeline itself (detection, tracking, smoothing, alignment, masks, pose, gaze, the worker
pool) is the library `dfjax.faces.pipeline`; this command feeds it every input in order, writes
the faces it keeps and each video's alignments into a face set, and sums up what was found and
what was dropped, and why.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from dfjax import media
from dfjax.data.faceset import FaceSetWriter
from dfjax.errors import UserError
from dfjax.faces.pipeline import (ExtractOptions, check_options, collect_inputs, face_finders, identity_descriptor,
                                  largest_frame_bytes, results_in_order, work_units)
from dfjax.faces.track import NO_FACE
from dfjax.io import check_writable


def extract(inputs: list[str | Path], output: str | Path, options: ExtractOptions = ExtractOptions(), *,
            identity: str | Path | None = None, overwrite: bool = False, progress=None) -> dict:
    """Run the whole extraction and write the face set; returns the summary dict."""
    check_options(options)
    check_writable(output, folder=True)
    videos, images = collect_inputs(inputs)
    infos = {str(p): media.probe(p) for p in videos}
    total = sum(info.frames for info in infos.values()) + len(images)
    reference = identity_descriptor(identity) if identity else None
    started = time.perf_counter()
    summary = {"frames_read": 0, "faces_kept": 0, "frames_without_face": 0, "dropped": Counter()}
    per_video: dict[str, dict] = {}
    task = progress.add_task("extract", total=total) if progress else None
    with FaceSetWriter(output, options.size, face_type=options.face_type, coverage=options.coverage,
                       mask_kind=options.mask_kind, overwrite=overwrite,
                       extra={"extract_options": asdict(options)}) as writer:
        with face_finders(options, reference) as (finders, workers):
            ring = finders.ring(largest_frame_bytes(infos)) if videos else None  # frames go through shared memory
            units = work_units(videos, images, infos, ring)
            for _, result in results_in_order(finders, units, depth=2 * workers, ring=ring):
                for _, crop, mask, meta in result.faces:
                    writer.add(crop, mask, meta)
                if result.source in infos:
                    per_video.setdefault(result.source, {}).update(result.alignments)
                summary["frames_read"] += result.frames_read
                summary["faces_kept"] += len(result.faces)
                summary["frames_without_face"] += result.dropped.pop(NO_FACE, 0)
                summary["dropped"].update(result.dropped)
                if progress:
                    progress.advance(task, result.frames_read)
        for source, frames in per_video.items():
            writer.add_alignments(source, infos[source].as_dict(), frames)
        if writer.count == 0:
            reasons = ", ".join(f"{k}: {v}" for k, v in summary["dropped"].items()) or "no face in any frame"
            raise UserError(f"no usable face found in {', '.join(map(str, inputs))} ({reasons}); "
                            "check the input shows a face, or relax --min-size / --blur-threshold.")
    seconds = time.perf_counter() - started
    summary.update(output=str(output), videos=len(videos), images=len(images), workers=workers,
                   seconds=round(seconds, 2), frames_per_second=round(summary["frames_read"] / seconds, 1),
                   dropped=dict(summary["dropped"]))
    return summary
