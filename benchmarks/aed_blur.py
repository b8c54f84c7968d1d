"""How much of the AED that `dfjax evaluate-animate` reports is sharpness rather than identity: the real
crops of a video scored against themselves after a Gaussian blur (what a generator that reproduced
every frame exactly but softly would score), and the copy-the-source baseline blurred the same way.

  python benchmarks/aed_blur.py VIDEO --res 64 --crop-scale 1.8 --out benchmarks/results/aed-blur-$(date +%F).jsonl

Crops, faces and descriptors exactly as evaluate-animate makes them (dfjax.metrics_animate: the stable
crop at the model's resolution, dlib's landmarks and 128-d descriptor at 256 px). One JSON line per
blur sigma (pixels at the crop's resolution): the mean AKD and AED of the blurred crops against the
sharp ones, and the AED of the blurred first frame against every sharp frame.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from report import Reporter  # noqa: E402

from dfjax.faces.detect import FaceDetector  # noqa: E402
from dfjax.faces.identity import FaceEncoder  # noqa: E402
from dfjax.faces.landmarks import LandmarkPredictor  # noqa: E402
from dfjax.metrics_animate import _pair, face_measures, video_crops  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--res", type=int, default=64, help="the model's resolution")
    parser.add_argument("--crop-scale", type=float, default=1.8, help="the model's data.crop_scale")
    parser.add_argument("--sigmas", default="0,0.5,0.8,1,1.5,2")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    emit = Reporter()
    detector, predictor, encoder = FaceDetector(), LandmarkPredictor(), FaceEncoder()
    crops, _, _ = video_crops(Path(args.video), args.crop_scale, args.res, detector, predictor, None)
    sharp = [face_measures(crop, detector, predictor, encoder) for crop in crops]

    def mean(values: list[float], digits: int) -> float | None:  # None where no frame could be scored
        finite = [v for v in values if np.isfinite(v)]
        return round(float(np.mean(finite)), digits) if finite else None

    def blurred(crop: np.ndarray, sigma: float) -> np.ndarray:
        return crop if sigma == 0 else cv2.GaussianBlur(crop, (0, 0), sigma)

    emit({"benchmark": "aed_blur", "case": "header", "date": date.today().isoformat(), "video": Path(args.video).name,
          "frames": len(crops), "res": args.res, "crop_scale": args.crop_scale})
    for sigma in (float(s) for s in args.sigmas.split(",")):
        pairs = [_pair(face_measures(blurred(crop, sigma), detector, predictor, encoder), real)
                 for crop, real in zip(crops, sharp)]
        first = face_measures(blurred(crops[0], sigma), detector, predictor, encoder)
        emit({"benchmark": "aed_blur", "sigma_px": sigma, "akd_px256": mean([p[0] for p in pairs], 2),
              "aed": mean([p[1] for p in pairs], 3), "frames_scored": int(np.isfinite([p[1] for p in pairs]).sum()),
              "copy_source_aed": mean([_pair(first, real)[1] for real in sharp], 3)})
    if args.out:
        emit.save(args.out)


if __name__ == "__main__":
    main()
