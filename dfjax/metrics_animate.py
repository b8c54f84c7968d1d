"""Video reconstruction scores of a First Order Motion Model, measured as the paper does (Siarohin et
al. 2019, section 4.2): for each held-out video the FIRST frame is the source and EVERY frame of the
same video drives it with absolute keypoints (no relative motion transfer: source and driver are the
same person in the same crop), and each generated frame is compared with the real one.

Crops are those of training (dfjax.training.animate): one stable square crop per video, the box of
dlib's 68 landmarks over every scored frame, enlarged by the model's data.crop_scale, at the model's
resolution.

- L1: mean absolute pixel difference in [0, 1], at the model's resolution, over every frame.
- AKD: average keypoint distance, the mean over the 68 points of dlib's landmarks found on the
  generated and on the real crop, each scaled to 256 px and detected on its own (HOG), in pixels at
  256 px; frames where either side has no face found are counted (`no_face`) and left out.
- AED: average euclidean distance of dlib's 128-d face descriptors of the two crops (same frames as
  AKD). The paper uses OpenFace's descriptor; dlib's is the offline stand-in, so the figures are on
  dlib's scale (under 0.6 is the same person) and not directly comparable with the paper's 0.140.

The same three are reported for the copy-the-source baseline: the first frame shown for every frame.

With a reenactor (`reenactor=`, a `dfjax train --config configs/reenact.py` workdir trained on the person
of the videos) a third row, the DVP reenactor: its faces are found in every frame by the face pipeline as
`dfjax reenact` finds a driver's (dlib landmarks, head pose, gaze, blinks), each frame's own controls (not
retargeted: the same person) are rendered to conditioning maps and turned into that frame's face by the
reenactor, and each face is pasted with reenact's blend mask into the video's FIRST frame, the one picture
the other two rows see too, at that frame's own face position (`dfjax reenact` itself pastes into its
target's reference frame and drops in-plane head motion; here the head's place is kept so the stable crop
lines up). A frame without a face found shows the first frame unchanged. Its crops are then scored as
above.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from dfjax import media
from dfjax.animate import batched_keypoints, face_and_box, generate
from dfjax.errors import UserError

__all__ = ["evaluate_animate", "table_rows", "METHODS", "FACE_SIZE"]

FACE_SIZE = 256   # AKD is measured at this crop size, as in the paper
METHODS = {"fomm": "FOMM (reconstruction)", "copy_source": "copy source (baseline)", "dvp_reenactor": "DVP reenactor"}
PAPER_VOX = {"l1": 0.043, "akd": 1.294, "aed": 0.140}  # the paper's full model on VoxCeleb (AED with OpenFace)
AED_NOTE = ("AED: dlib's 128-d face descriptor (face_recognition_models), the offline stand-in for OpenFace; "
            "dlib's scale, not the paper's")


def reconstruct(model, crops: np.ndarray) -> np.ndarray:
    """float32 (F, R, R, 3) in [0, 1]: every crop regenerated from the first (absolute keypoints; the
    source's keypoints computed once)."""
    kp_source = batched_keypoints(model, crops[:1])
    return generate(model, crops[:1], kp_source, batched_keypoints(model, crops), as_float=True)


def reenacted_crops(reenactor, path: Path, count: int, box: np.ndarray, res: int, progress=None
                    ) -> tuple[np.ndarray, int]:
    """(uint8 crops (count, res, res, 3) at `box`, frames with a face found) of the DVP row (see the module
    doc): each of the first `count` frames re-rendered by the reenactor from its own controls and pasted
    into the first frame."""
    from dfjax.faces.retarget import controls_from_meta
    from dfjax.reenact import ReenactOptions, find_driver_faces
    from dfjax.training.animate import crop_square

    metas = find_driver_faces(reenactor, path, media.probe(path), ReenactOptions(), progress)[:count]
    first = next(frame for _, frame in media.iter_frames(path, 0, 1))
    found = [i for i, m in enumerate(metas) if m is not None]
    still = crop_square(first, box, res)
    crops = np.repeat(still[None], count, 0)
    if not found:
        return crops, 0
    controls = controls_from_meta([metas[i] for i in found])
    faces = reenactor.generate(controls, np.asarray(found))
    first_landmarks = None if metas[0] is None else np.asarray(metas[0]["landmarks"], np.float64).reshape(68, 2)
    for k, index in enumerate(found):
        frame, _ = reenactor.composite(faces[k], controls.landmarks[k], first, metas[index]["matrix"],
                                       first_landmarks)
        crops[index] = crop_square(frame, box, res)
    return crops, len(found)


# ----------------------------------------------------------------------------- crops and faces


def video_crops(path: Path, scale: float, res: int, detector, predictor, max_frames: int | None,
                progress=None) -> tuple[np.ndarray, np.ndarray, int]:
    """(uint8 crops (F, res, res, 3) of the first `max_frames` frames, the stable crop box, frames in which
    no face was found): the training crop, from the landmarks of every frame with a face."""
    from dfjax.training.animate import crop_square, stable_crop_box

    info = media.probe(path)
    total = info.frames if max_frames is None else min(info.frames, max_frames)
    task = progress.add_task(f"faces in {path.name}", total=total or None) if progress else None
    faces, count = [], 0
    for index, frame in media.iter_frames(path, 0, max_frames):
        count = index + 1
        found = face_and_box(detector, predictor, frame)
        if found is None:  # a small face: look again at twice the size
            found = face_and_box(detector, predictor, frame, upsample=1)
        if found is not None:
            faces.append(found[0])
        if progress:
            progress.advance(task)
    if count == 0:
        raise UserError(f"video {path} has no frames; pass a video with a face in it.")
    if count < 2:
        raise UserError(f"video {path} has one frame; reconstruction needs a video of two or more frames.")
    if not faces:
        raise UserError(f"no face was found in video {path} ({count} frames searched); pass a video that shows a "
                        "face (about 40 px or larger).")
    box = stable_crop_box(np.stack(faces), scale)
    crops = np.stack([crop_square(frame, box, res) for _, frame in media.iter_frames(path, 0, count)])
    return crops, box, count - len(faces)


def face_measures(crop: np.ndarray, detector, predictor, encoder) -> tuple[np.ndarray, np.ndarray] | None:
    """(68 landmarks in FACE_SIZE px, 128-d descriptor) of the most confident face in `crop` scaled to FACE_SIZE,
    or None where dlib finds no face."""
    side = crop.shape[0]
    image = np.ascontiguousarray(cv2.resize(crop, (FACE_SIZE, FACE_SIZE),
                                            interpolation=cv2.INTER_CUBIC if side < FACE_SIZE else cv2.INTER_AREA))
    found = face_and_box(detector, predictor, image)
    return None if found is None else (found[0], encoder(image, *found))


def _pair(a, b) -> tuple[float, float]:
    """(AKD, AED) between two face measures; NaN where either side has no face."""
    if a is None or b is None:
        return float("nan"), float("nan")
    return (float(np.linalg.norm(a[0] - b[0], axis=1).mean()), float(np.linalg.norm(a[1] - b[1])))


def _summary(per_frame: dict[str, list[float]]) -> dict:
    l1, akd, aed = (np.asarray(per_frame[k], np.float64) for k in ("l1", "akd", "aed"))
    scored = np.isfinite(akd)
    return {"l1": float(l1.mean()), "akd": float(akd[scored].mean()) if scored.any() else float("nan"),
            "aed": float(aed[scored].mean()) if scored.any() else float("nan"), "frames": int(len(l1)),
            "face_frames": int(scored.sum()), "no_face": int((~scored).sum())}


# ----------------------------------------------------------------------------- the evaluation


def evaluate_animate(model_dir: str | Path, videos: list[str | Path], *, max_frames: int | None = None,
                     reenactor: str | Path | None = None, progress=None) -> dict:
    """The reconstruction report of the motion model in `model_dir` on `videos` (see the module doc):
    per method pooled over every frame of every video, per video, and per frame.

    reenactor: the workdir of a reenactor trained on the person of the videos, for the DVP row."""
    from dfjax.faces.detect import FaceDetector
    from dfjax.faces.identity import FaceEncoder
    from dfjax.faces.landmarks import LandmarkPredictor
    from dfjax.training.core import load_trained

    if not videos:
        raise UserError("no video given; pass one or more held-out videos of a face.")
    if max_frames is not None and max_frames < 2:
        raise UserError(f"--max-frames {max_frames} is out of range; give 2 or more (frame 0 is the source).")
    paths = [Path(v) for v in videos]
    for path in paths:
        if not path.is_file() or not media.is_video(path):
            raise UserError(f"{path} is not a video file; pass held-out videos (.mp4, .mkv, ...) of a face.")
    model = load_trained(model_dir, "animate")
    dvp = None
    if reenactor is not None:
        from dfjax.reenact import load_reenactor

        dvp = load_reenactor(reenactor)  # a workdir of another kind: refused here, before any video is read
    methods = [m for m in METHODS if dvp is not None or m != "dvp_reenactor"]
    res, scale = model.resolution, float(model.config.data.crop_scale)
    detector, predictor, encoder = FaceDetector(), LandmarkPredictor(), FaceEncoder()

    started = time.perf_counter()
    report_videos, pooled = [], {m: {"l1": [], "akd": [], "aed": []} for m in methods}
    for path in paths:
        crops, box, faceless = video_crops(path, scale, res, detector, predictor, max_frames, progress)
        generated = reconstruct(model, crops)
        real = crops.astype(np.float32) / 255.0
        per_frame = {"fomm": {"l1": np.abs(generated - real).mean(axis=(1, 2, 3)).tolist()},
                     "copy_source": {"l1": np.abs(real[:1] - real).mean(axis=(1, 2, 3)).tolist()}}
        outputs = {"fomm": np.round(generated * 255).astype(np.uint8)}
        extra = {}
        if dvp is not None:
            outputs["dvp_reenactor"], extra["dvp_frames_with_face"] = reenacted_crops(dvp, path, len(crops), box,
                                                                                    res, progress)
            per_frame["dvp_reenactor"] = {
                "l1": np.abs(outputs["dvp_reenactor"].astype(np.float32) / 255.0 - real).mean(axis=(1, 2, 3)).tolist()}
        for m in per_frame:
            per_frame[m].update(akd=[], aed=[])
        task = progress.add_task(f"scoring {path.name}", total=len(crops)) if progress else None
        source_faces = None
        for index in range(len(crops)):
            real_faces = face_measures(crops[index], detector, predictor, encoder)
            if index == 0:
                source_faces = real_faces
            measured = {m: face_measures(out[index], detector, predictor, encoder) for m, out in outputs.items()}
            for method, faces in (*measured.items(), ("copy_source", source_faces)):
                akd, aed = _pair(faces, real_faces)
                per_frame[method]["akd"].append(akd)
                per_frame[method]["aed"].append(aed)
            if progress:
                progress.advance(task)
        for method, values in per_frame.items():
            for key, series in values.items():
                pooled[method][key].extend(series)
        report_videos.append({"video": str(path), "frames": len(crops), "crop": box.tolist(),
                              "frames_without_face_in_crop_search": faceless, **extra,
                              "methods": {m: _summary(v) for m, v in per_frame.items()}, "per_frame": per_frame})
    seconds = time.perf_counter() - started
    return {"protocol": "video reconstruction (FOMM paper 4.2): source = the first frame, every frame of the same "
                        "video drives it with absolute keypoints; stable training crop per video",
            "model": {"workdir": str(model.workdir), "step": model.step, "config_hash": model.config_hash,
                      "resolution": res, "crop_scale": scale},
            **({"reenactor": {"workdir": str(dvp.model.workdir), "step": dvp.model.step,
                              "config_hash": dvp.model.config_hash, "resolution": dvp.res,
                              "target": dvp.info.get("faceset"),
                              "protocol": "each frame's own controls (face pipeline, not retargeted) -> the "
                                          "reenactor's face, pasted into the first frame at that frame's face "
                                          "position; frames without a face show the first frame"}}
               if dvp is not None else {}),
            "units": {"l1": f"mean |generated - real| in [0, 1] at {res} px",
                      "akd": f"mean distance of dlib's 68 landmarks, pixels at {FACE_SIZE} px",
                      "aed": "mean euclidean distance of dlib's 128-d face descriptors (the offline stand-in for "
                             "OpenFace, which the paper uses; dlib's scale: under 0.6 is the same person)"},
            "paper_voxceleb": PAPER_VOX,
            "methods": {m: _summary(v) for m, v in pooled.items()},
            "videos": report_videos, "max_frames": max_frames, "seconds": round(seconds, 2)}


def table_rows(report: dict) -> list[tuple[str, ...]]:
    """(method, L1, AKD, AED, frames with a face / frames) per method, for the command's table."""
    def number(value: float, digits: int) -> str:
        return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"

    return [(label, number(m["l1"], 4), number(m["akd"], 2), number(m["aed"], 3),
             f"{m['face_frames']}/{m['frames']}")
            for key, label in METHODS.items() if key in report["methods"] for m in [report["methods"][key]]]
