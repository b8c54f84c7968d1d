"""`dfjax demo`: the whole pipeline on built-in synthetic data, on CPU, in a few minutes.

1. render the two synthetic identities with exact ground truth (videos, truth, face sets);
2. extract identity A's video again with the real dlib pipeline (detection, tracking, landmarks);
3. train the tiny swap model on the two ground-truth face sets and write its preview grid;
4. swap A's video to B (video, lossless masks, sidecar, provenance tag) and score the swap against
   the exact ground-truth swap the renderer made;
5. forge the two identities with First Order Motion Model (`dfjax forge`, method DFJaxFOMM): a tiny FOMM
   trained on both videos animates each identity's still with the other's video;
6. train and score every registered detector on the demo's own real clips and fakes (the ground-truth
   swap, dfjax's swap and the FOMM animations), and fill the cross-method matrix (train on one
   method's fakes, score every method's);
7. train the tiny deep-video-portrait reenactor on A, score it on A's held-out frames, and drive it with
   B's video: a side-by-side clip of driver and reenacted face.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from dfjax.config import load_config
from dfjax.data.synthetic import synthesize
from dfjax.errors import UserError
from dfjax.extract import extract
from dfjax.faces.pipeline import ExtractOptions
from dfjax.forge import forge, read_csv_rows
from dfjax.io import check_writable
from dfjax.metrics import evaluate_swap, save_report
from dfjax.swap import SwapOptions, swap
from dfjax.training.core import train

# HOG alone loses A's face on the last 27 of the 240 frames (a turned head); the CNN finds it there
DEMO_DETECTOR = "hog,cnn"
MIN_FRAMES = 40  # the detection step samples 40 frames of every video (detect.run.DEMO_FRAMES)
FOMM_STEPS, FOMM_BATCH = 150, 4  # the demo's FOMM: enough to place a blurred face that moves, in about a minute


def run_demo(output: str | Path, *, frames: int = 240, steps: int = 600, progress=None) -> dict:
    from detect.run import demo_detect  # the demo is the one place outside cli.py that reaches into detect/
    from dfjax.reenact import demo_reenact

    output = Path(output)
    if frames < MIN_FRAMES or steps < 1:
        raise UserError(f"the demo needs --frames {MIN_FRAMES} or more and --steps 1 or more (got --frames {frames}, "
                        f"--steps {steps}); fix the option.")
    check_writable(output, folder=True)
    synthesize(output / "synth", frames=frames, size=256, face_size=128, overwrite=True, progress=progress)
    facesets = output / "synth" / "facesets"
    extracted = extract([output / "synth" / "videos" / "a.mp4"], output / "extracted_a",
                        ExtractOptions(size=128, detector=DEMO_DETECTOR), overwrite=True, progress=progress)
    workdir = output / "train"
    for stale in (workdir, output / "forge"):
        shutil.rmtree(stale, ignore_errors=True)  # a demo always starts from scratch
    config = load_config("swap.py:tiny", [f"data.a='{facesets / 'a'}'", f"data.b='{facesets / 'b'}'",
                                          f"train.steps={steps}", "log.preview_every=100"])
    trained = train(config, workdir, progress=progress)
    videos = output / "synth" / "videos"
    fake = output / "swap" / "a_to_b.mp4"
    swapped = swap(videos / "a.mp4", fake, workdir, SwapOptions(direction="a2b", color="none", detector=DEMO_DETECTOR),
                   overwrite=True, progress=progress)
    report = evaluate_swap(videos / "a.mp4", fake, target_faces=facesets / "b", truth_video=videos / "a_as_b_truth.mp4",
                           progress=progress)
    save_report(report, output / "swap" / "a_to_b.metrics.json")
    fidelity = report["truth_fidelity"]
    animated = forge(output / "synth", output / "forge", load_config("forge.py:tiny", [
        "methods='DFJaxFOMM'", "split.test=0", f"fomm.steps={FOMM_STEPS}", f"fomm.batch={FOMM_BATCH}"]),
        progress=progress)
    fomm = [output / "forge" / r["path"] for r in read_csv_rows(output / "forge" / "manifest.csv") if r["label"] == "1"]
    detection = demo_detect([videos / "a.mp4", videos / "b.mp4"], [videos / "a_as_b_truth.mp4", fake, *fomm],
                            output / "detect", progress=progress)
    reenacted = demo_reenact(output / "synth", output, progress=progress)
    return {"synthetic videos": str(output / "synth" / "videos"),
            "ground-truth face sets": f"{facesets / 'a'}, {facesets / 'b'} ({frames} faces each)",
            "dlib extraction of A": f"{extracted['output']} (face on {extracted['faces_kept']} of "
                                    f"{extracted['frames_read']} frames)",
            "swap model": f"{workdir} ({trained['step']} steps, {trained['images_per_s']} images/s)",
            "final loss": trained["loss"],
            "preview (A, A->A, A->B, mask | B, B->B, B->A, mask)": trained["preview"],
            "swapped video (A -> B)": f"{fake} ({swapped['frames_swapped']} of {swapped['frames']} frames swapped)",
            "its masks and sidecar": f"{swapped['masks']}, {swapped['sidecar']}",
            "swap vs ground truth": f"PSNR {fidelity['psnr']:.2f} dB, SSIM {fidelity['ssim']:.3f} "
                                    f"(face box: {fidelity['face_psnr']:.2f} dB, {fidelity['face_ssim']:.3f})",
            "nearer B than A (dlib)": f"{report['identity']['nearer_target_share']:.0%} of scored frames",
            "metrics": str(output / "swap" / "a_to_b.metrics.json"),
            "detectors (frame AUC on held-out frames)": ", ".join(
                f"{name} {d['frame_auc']:.2f}" for name, d in detection["detectors"].items()),
            "FOMM animations (dfjax forge)": f"{', '.join(str(p) for p in fomm)} ({animated['fake_frames']} frames, "
                                             f"FOMM {FOMM_STEPS} steps; manifest {output / 'forge' / 'manifest.csv'})",
            **{f"cross-method, {name} (frame AUC; rows: trained on)": "; ".join(
                f"{m}: " + " ".join(f"{a:.2f}" for a in row) for m, row in zip(c["methods"], c["auc"]))
               + f" (columns: {', '.join(c['methods'])})" for name, c in detection["cross_method"].items()},
            "detection report": detection["report"],
            **{("reenactment metrics" if k == "metrics" else k): v for k, v in reenacted.items()}}
