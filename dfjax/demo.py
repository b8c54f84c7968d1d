"""`dfjax demo`: the whole pipeline on built-in synthetic data, on CPU, in a few minutes.

Renders the two synthetic identities (videos, exact ground truth, face sets), then extracts faces
from identity A's video with the real dlib pipeline to show that path too.
"""

from __future__ import annotations

from pathlib import Path

from dfjax.data.synthetic import synthesize
from dfjax.extract import ExtractOptions, extract


def run_demo(output: str | Path, *, frames: int = 240, progress=None) -> dict:
    output = Path(output)
    synth = synthesize(output / "synth", frames=frames, size=256, face_size=128, overwrite=True, progress=progress)
    extracted = extract([output / "synth" / "videos" / "a.mp4"], output / "extracted_a",
                        ExtractOptions(size=128), overwrite=True, progress=progress)
    return {"synthetic videos": str(output / "synth" / "videos"),
            "face set A (ground truth)": str(output / "synth" / "facesets" / "a"),
            "face set B (ground truth)": str(output / "synth" / "facesets" / "b"),
            "faces rendered per identity": frames,
            "face set A (dlib extraction)": extracted["output"],
            "dlib found a face on": f"{extracted['faces_kept']} of {extracted['frames_read']} frames",
            "render seconds": synth.get("seconds")}
