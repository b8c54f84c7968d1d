"""`dfjax demo`: the whole pipeline on built-in synthetic data, on CPU, in a few minutes.

1. render the two synthetic identities with exact ground truth (videos, truth, face sets);
2. extract identity A's video again with the real dlib pipeline (detection, tracking, landmarks);
3. train the tiny swap model on the two ground-truth face sets and write its preview grid.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from dfjax.config import apply_overrides, load_config
from dfjax.data.synthetic import synthesize
from dfjax.extract import ExtractOptions, extract
from dfjax.train import train_and_evaluate


def run_demo(output: str | Path, *, frames: int = 240, steps: int = 600, progress=None) -> dict:
    output = Path(output)
    synth = synthesize(output / "synth", frames=frames, size=256, face_size=128, overwrite=True, progress=progress)
    facesets = output / "synth" / "facesets"
    extracted = extract([output / "synth" / "videos" / "a.mp4"], output / "extracted_a",
                        ExtractOptions(size=128), overwrite=True, progress=progress)
    workdir = output / "train"
    shutil.rmtree(workdir, ignore_errors=True)  # a demo always starts from scratch
    config = apply_overrides(load_config("configs/swap.py:tiny"),
                             [f"data.a='{facesets / 'a'}'", f"data.b='{facesets / 'b'}'", f"train.steps={steps}",
                              "log.preview_every=100"])
    trained = train_and_evaluate(config, workdir, progress=progress)
    return {"synthetic videos": str(output / "synth" / "videos"),
            "ground-truth face sets": f"{facesets / 'a'}, {facesets / 'b'} ({frames} faces each)",
            "dlib extraction of A": f"{extracted['output']} (face on {extracted['faces_kept']} of "
                                    f"{extracted['frames_read']} frames)",
            "swap model": f"{workdir} ({trained['step']} steps, {trained['images_per_s']} images/s)",
            "final loss": trained["loss"],
            "preview (A, A->A, A->B, mask | B, B->B, B->A, mask)": trained["preview"],
            "render seconds": synth.get("seconds")}
