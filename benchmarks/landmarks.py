"""Landmark benchmark: dlib's 68-point predictor against the labelled photos in ../shared/data/real/landmarks.

Run (about 15 seconds):

    .venv/bin/python benchmarks/landmarks.py --out benchmarks/results/landmarks-$(date +%F).jsonl

For each imglab XML file (testing_with_face_landmarks.xml and training_with_face_landmarks.xml,
reported separately) the error is the mean point-to-point distance over the 68 points divided by
the ground truth's inter-ocular distance (outer eye corners 36 and 45, the 300-W normaliser),
averaged over faces, with the predictor run on
(a) the labelled boxes, and
(b) boxes from our `FaceDetector` (full resolution, upsample 0, 1 and 2: the faces are 37-109 px
    and dlib's HOG window is 80 px), each labelled face matched to the detection of highest IoU
    (>= 0.5, one detection per face); the line says how many labelled faces were detected.
Boxes marked ignore and boxes without 68 parts are left out and counted. Caveat: dlib's comment in
these files says their landmarks were produced by the same shape_predictor_68_face_landmarks model
that face_recognition_models ships, so (a) checks agreement with dlib's own output, not accuracy
against human labels. Missing files give one `"skipped"` line and exit 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Reporter  # noqa: E402

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "real" / "landmarks"
DEFAULT_FILES = [DATA / "testing_with_face_landmarks.xml", DATA / "training_with_face_landmarks.xml"]
MATCH_IOU = 0.5
UPSAMPLES = (0, 1, 2)


def load(xml_path: Path) -> tuple[list[dict], dict]:
    """[{"file", "faces": [{"box": [x0, y0, x1, y1], "points": (68, 2)}]}] and counts of left-out boxes."""
    images, left_out = [], {"ignored": 0, "incomplete": 0}
    for image in ET.parse(xml_path).getroot().iter("image"):
        faces = []
        for box in image.iter("box"):
            if box.get("ignore", "0") not in ("0", ""):
                left_out["ignored"] += 1
                continue
            parts = {int(p.get("name")): (float(p.get("x")), float(p.get("y"))) for p in box.iter("part")}
            if sorted(parts) != list(range(68)):
                left_out["incomplete"] += 1
                continue
            left, top = float(box.get("left")), float(box.get("top"))
            width, height = float(box.get("width")), float(box.get("height"))
            # imglab boxes are inclusive: right = left + width - 1, as dlib.rectangle has it
            faces.append({"box": np.array([left, top, left + width - 1, top + height - 1], np.float32),
                          "points": np.array([parts[i] for i in range(68)], np.float64)})
        images.append({"file": image.get("file"), "faces": faces})
    return images, left_out


def nme(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean point error over the ground truth's outer-eye-corner distance."""
    from dfjax.faces.quality import inter_ocular_distance

    return float(np.linalg.norm(predicted - truth, axis=1).mean() / inter_ocular_distance(truth))


def summary(errors: list[tuple[float, str, np.ndarray]]) -> dict:
    """Statistics of (nme, image file, labelled box) triples, naming the worst face."""
    if not errors:
        return {"faces": 0}
    e = np.array([err for err, _, _ in errors])
    worst = errors[int(e.argmax())]
    return {"faces": len(e), "nme_mean": round(float(e.mean()), 4), "nme_median": round(float(np.median(e)), 4),
            "nme_max": round(float(e.max()), 4), "share_below_0.05": round(float((e < 0.05).mean()), 3),
            "share_below_0.10": round(float((e < 0.10).mean()), 3),
            "worst": {"image": worst[1], "box": [int(v) for v in worst[2]]}}


def match(truth_boxes: list[np.ndarray], found: list) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching by IoU: (face index, detection index, IoU) with IoU >= MATCH_IOU."""
    from dfjax.faces.detect import iou

    pairs = sorted(((iou(t, d.box), i, j) for i, t in enumerate(truth_boxes) for j, d in enumerate(found)),
                   reverse=True)
    used_faces, used_dets, out = set(), set(), []
    for overlap, i, j in pairs:
        if overlap < MATCH_IOU:
            break
        if i in used_faces or j in used_dets:
            continue
        used_faces.add(i)
        used_dets.add(j)
        out.append((i, j, overlap))
    return out


def bench_file(xml_path: Path, emit: Reporter) -> None:
    from dfjax import media
    from dfjax.faces.detect import FaceDetector
    from dfjax.faces.landmarks import LandmarkPredictor

    images, left_out = load(xml_path)
    predictor = LandmarkPredictor()
    photos = {im["file"]: media.read_image(xml_path.parent / im["file"]) for im in images}
    total = sum(len(im["faces"]) for im in images)
    base = {"benchmark": "landmarks", "file": xml_path.name, "images": len(images), "labelled_faces": total,
            "left_out": left_out}

    errors = [(nme(predictor(photos[im["file"]], f["box"]), f["points"]), im["file"], f["box"])
              for im in images for f in im["faces"]]
    emit({**base, "boxes": "labelled", **summary(errors)})

    for upsample in UPSAMPLES:
        detector = FaceDetector(max_side=0, upsample=upsample)
        errors, ious, detections, seconds = [], [], 0, 0.0
        for im in images:
            image = photos[im["file"]]
            start = time.perf_counter()
            found = detector(image)
            seconds += time.perf_counter() - start
            detections += len(found)
            for i, j, overlap in match([f["box"] for f in im["faces"]], found):
                face = im["faces"][i]
                errors.append((nme(predictor(image, found[j].box), face["points"]), im["file"], face["box"]))
                ious.append(overlap)
        emit({**base, "boxes": f"detector(max_side=0, upsample={upsample})", "detected": len(errors),
              "detected_share": round(len(errors) / max(1, total), 3),
              "unmatched_detections": detections - len(errors),
              "match_iou_mean": round(float(np.mean(ious)), 3) if ious else None,
              "detect_seconds": round(seconds, 3), **summary(errors)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES)
    parser.add_argument("--out", type=Path, help="also write the JSON lines here")
    args = parser.parse_args(argv)
    emit = Reporter()
    missing = [str(f) for f in args.files if not f.exists()]
    if missing:
        emit({"benchmark": "landmarks", "skipped": f"files not found: {', '.join(missing)}"})
        return 0
    import dlib

    emit({"benchmark": "landmarks", "case": "header", "date": dt.date.today().isoformat(),
          "cpu_count": os.cpu_count(), "python": platform.python_version(), "dlib": dlib.__version__,
          "files": [str(f) for f in args.files]})
    for xml_path in args.files:
        bench_file(xml_path, emit)
    if args.out:
        emit.save(args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
