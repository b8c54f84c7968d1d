"""The two face sets a swap model trains on, as uint8 arrays ready to go onto the devices once.

Each side is (faces (N,S,S,3), maps (N,S,S,3)) where the three map channels are the face mask,
the eye regions and the mouth region (drawn from the stored landmarks). Geometry augmentation moves
all three with the face, so the mask loss and the eye/mouth priority weights stay aligned.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfjax.data.faceset import FaceSet
from dfjax.errors import UserError
from dfjax.faces.align import transform_points
from dfjax.faces.landmarks import LEFT_EYE, MOUTH, RIGHT_EYE


@dataclass
class Side:
    name: str
    path: str
    faces: np.ndarray  # uint8 (N, S, S, 3)
    maps: np.ndarray   # uint8 (N, S, S, 3): mask, eyes, mouth


def listed_identities(config) -> list[str]:
    """The face-set folders of `data.identities` (comma-separated), as given."""
    return [p.strip() for p in str(config.data.get("identities", "") or "").split(",") if p.strip()]

def region_maps(landmarks_crop: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Eye and mouth regions (uint8 0/255) of one aligned face, slightly dilated like faceswap's."""
    eyes = np.zeros((size, size), np.uint8)
    mouth = np.zeros((size, size), np.uint8)
    for region in (RIGHT_EYE, LEFT_EYE):
        cv2.fillConvexPoly(eyes, cv2.convexHull(np.round(landmarks_crop[region]).astype(np.int32)), 255)
    cv2.fillConvexPoly(mouth, cv2.convexHull(np.round(landmarks_crop[MOUTH]).astype(np.int32)), 255)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, size // 24) | 1,) * 2)
    return cv2.dilate(eyes, kernel), cv2.dilate(mouth, kernel)


def load_side(name: str, path: str | Path, cache_dir: str | Path | None = None) -> Side:
    """Faces stay memory-mapped; with `cache_dir` the maps go to a memory-mapped file there too,
    so face sets larger than memory can stream from disk."""
    path = Path(path)
    faceset = FaceSet(path)
    if len(faceset) < 2:
        raise UserError(f"face set {path} has {len(faceset)} face(s); a model needs at least 2 per side.")
    faceset.require("landmarks", "matrix")
    size = faceset.size
    shape = (len(faceset), size, size, 3)
    if cache_dir is None:
        maps = np.zeros(shape, np.uint8)
    else:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        maps = np.lib.format.open_memmap(Path(cache_dir) / f"maps_{name}.npy", "w+", np.uint8, shape)
    maps[..., 0] = faceset.masks
    for i, (landmarks, matrix) in enumerate(zip(faceset.landmarks(), faceset.matrices())):
        maps[i, ..., 1], maps[i, ..., 2] = region_maps(transform_points(landmarks, matrix), size)
    return Side(name, str(path), faceset.faces, maps)


def synthetic_facesets(workdir: Path, frames: int, size: int, progress=None,
                       identities: tuple[str, ...] = ("a", "b")) -> list[Path]:
    """Render the synthetic `identities` once into the workdir and return their face sets."""
    from dfjax.data.synthetic import is_complete, synthesize

    out = workdir / "synth"
    if not is_complete(out):  # never rendered, or stopped part-way (Ctrl-C, kill): render it again
        shutil.rmtree(out, ignore_errors=True)
        synthesize(out, frames=frames, size=max(2 * size, 128), face_size=size, identities=identities,
                   progress=progress, overwrite=True)
    return [out / "facesets" / name for name in identities]
