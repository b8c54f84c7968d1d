"""Preview grids of a swap model: for a few fixed faces, A | A->A | A->B | mask, B | B->B | B->A | mask;
with N identities, an N x N grid: each identity's faces (rows), as they are and as every identity (columns).

Written as PNG every K steps (and to TensorBoard), so a researcher can see at a glance whether the
model reconstructs each identity and carries the other's pose and expression across. The PNGs carry
IPTC's digital source type trainedAlgorithmicMedia (they show generated faces).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from dfjax import media

TILE = 128


def make_previewer(generator, faces: dict[str, np.ndarray], res: int, cond: dict[str, jax.Array] | None = None):
    """A function params -> uint8 grid image for the fixed preview faces (jitted once).

    cond: for a conditioned generator, each side's stacked maps of its preview faces; both the
    reconstruction and the swap follow them (a preview, so the maps are not retargeted).
    """
    inputs = {s: jnp.asarray(np.stack([cv2.resize(f, (res, res), interpolation=cv2.INTER_AREA) for f in faces[s]]),
                             jnp.float32) / 255.0 for s in faces}

    names = list(faces)

    def decode(params, z, s, to):
        return generator.apply({"params": params}, z, to, None if cond is None else cond[s], method=generator.decode)

    @jax.jit
    def run(params):
        out = {}
        if len(names) == 2:  # A | A->A | A->B | mask, B | B->B | B->A | mask, side by side
            for s, other in (names, names[::-1]):
                z = generator.apply({"params": params}, inputs[s], method=generator.encode)
                same, _ = decode(params, z, s, s)
                swapped, mask = decode(params, z, s, other)
                out[s] = jnp.concatenate([inputs[s], same, swapped, jnp.repeat(mask, 3, -1)], axis=2)
            return jnp.concatenate([out[names[0]], out[names[1]]], axis=2)
        for s in names:  # each identity's faces as they are, then decoded as every identity
            z = generator.apply({"params": params}, inputs[s], method=generator.encode)
            out[s] = jnp.concatenate([inputs[s], *(decode(params, z, s, to)[0] for to in names)], axis=2)
        return jnp.concatenate([out[s] for s in names], axis=0)

    def grid(params) -> np.ndarray:
        rows = np.asarray(jax.device_get(run(params)), np.float32)  # (faces, res, columns * res, 3)
        image = (np.clip(np.concatenate(list(rows), axis=0), 0, 1) * 255).round().astype(np.uint8)
        scale = max(1, TILE // res)
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) if scale > 1 else image

    return grid


def write_preview(workdir: Path, step: int, image: np.ndarray, tb=None,
                  layout: str = "A, A->A, A->B, mask | B, B->B, B->A, mask") -> Path:
    """previews/step_N.png and previews/latest.png (and TensorBoard); `layout` says what the grid shows."""
    folder = workdir / "previews"
    path = folder / f"step_{step:07d}.png"
    tags = {"dfjax": f"preview step {step}: {layout}", **media.synthetic_tags()}  # it shows generated faces
    media.write_image(path, image, tags)
    media.write_image(folder / "latest.png", image, tags)
    if tb is not None:
        tb.add_image("preview", image, step, dataformats="HWC")
    return path
