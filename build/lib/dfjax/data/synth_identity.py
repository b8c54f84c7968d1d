"""Identities for the procedural face renderer: 3-D face shape, colours, hair, and expressions.

An identity has two halves. Its *face* (3-D shape, skin, eyes, brows, lips, beard) is what a face
swap replaces; its *context* (hair, skull, ears, neck, clothes) stays with the frame. The renderer
takes the face from one identity and the context from another to make the exact answer of a swap.

All 3-D points are in `dfjax.faces.model3d` model coordinates (mm, x right, y down, z away, origin
at the head centre). A face has the 68 landmarks followed by `N_EXTRA` mesh-only points (forehead,
cheeks, chin) that give the shading mesh its shape.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import Delaunay

from dfjax.faces.model3d import MODEL_68, MIRROR_68

# Mesh-only points in the model's frame, given for the left half (x <= 0) and mirrored.
# Forehead up to the hairline, a mid-forehead row, cheeks, the side of the nose, the chin.
_EXTRA_HALF = np.array([
    [-70.0, -37.0, -18.0], [-60.0, -63.0, -32.0], [-42.0, -79.0, -48.0], [-21.0, -86.0, -58.0],
    [-45.0, -53.0, -50.0], [-22.0, -59.0, -65.0],
    [-50.0, 10.0, -52.0], [-30.0, 10.0, -68.0], [-45.0, 40.0, -45.0], [-40.0, 60.0, -48.0],
    [-18.0, 10.0, -75.0], [-14.0, 83.0, -70.0],
])
_EXTRA_MID = np.array([[0.0, -88.0, -60.0], [0.0, -61.0, -69.0], [0.0, 85.0, -76.0]])
_EXTRA = np.concatenate([_EXTRA_HALF, _EXTRA_HALF * [-1, 1, 1], _EXTRA_MID])
N_EXTRA = len(_EXTRA)
HAIRLINE = [0, 1, 2, 3, 2 * len(_EXTRA_HALF), 3 + len(_EXTRA_HALF), 2 + len(_EXTRA_HALF),
            1 + len(_EXTRA_HALF), len(_EXTRA_HALF)]  # extra-point indices, left temple to right

_LOWER_CHEEKS = (68 + 9, 68 + 9 + len(_EXTRA_HALF))
#: Outline of a beard: the lower jaw, up the cheeks to the nostrils (so it includes a moustache).
BEARD = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, _LOWER_CHEEKS[1], 35, 34, 33, 32, 31, _LOWER_CHEEKS[0]]

MEAN_FACE = np.concatenate([MODEL_68, _EXTRA])
MEAN_FACE.setflags(write=False)
_MIRROR_ALL = np.concatenate([MIRROR_68, 68 + np.concatenate([
    np.arange(len(_EXTRA_HALF)) + len(_EXTRA_HALF), np.arange(len(_EXTRA_HALF)),
    2 * len(_EXTRA_HALF) + np.arange(len(_EXTRA_MID))])])


def _mesh() -> np.ndarray:
    """Triangles (T, 3) of the face, a Delaunay mesh of the frontal projection, facing the camera."""
    tri = Delaunay(MEAN_FACE[:, :2]).simplices
    a, b, c = (MEAN_FACE[tri[:, i]] for i in range(3))
    normal_z = np.cross(b - a, c - a)[:, 2]
    tri[normal_z > 0] = tri[normal_z > 0][:, ::-1]  # outward normals point to -z (the camera)
    return tri.astype(np.int32)


MESH = _mesh()

HAIR_STYLES = ("short", "long", "bangs", "bob", "bald")


@dataclass(frozen=True, eq=False)
class Identity:
    """One synthetic person. Colours are RGB uint8 triples; lengths are millimetres."""

    name: str
    face: np.ndarray = field(repr=False)  # (68 + N_EXTRA, 3) neutral face points
    skin: tuple[int, int, int]
    iris: tuple[int, int, int]
    lips: tuple[int, int, int]
    brows: tuple[int, int, int]
    hair: tuple[int, int, int]
    clothes: tuple[int, int, int]
    hair_style: str = "short"
    brow_thickness: float = 4.0
    beard: float = 0.0               # 0: clean-shaven .. 1: dark stubble
    skull: tuple[float, float, float] = (80.0, 108.0, 100.0)  # ellipsoid radii
    params: dict = field(default_factory=dict, repr=False)


def _shape(p: dict) -> np.ndarray:
    """Neutral face points from shape parameters (all symmetric, zero = the mean face)."""
    pts = MEAN_FACE.copy()
    inner_upper, inner_lower = [61, 62, 63], [67, 66, 65]
    pts[inner_upper, 1] = pts[inner_lower, 1] = (pts[inner_upper, 1] + pts[inner_lower, 1]) / 2  # lips closed
    jaw = np.arange(0, 17)
    lower = np.clip((pts[:, 1] - pts[36, 1]) / (pts[8, 1] - pts[36, 1]), 0.0, 1.0)  # 0 at eyes, 1 at chin
    pts[:, 0] *= 1.0 + p.get("width", 0.0)
    pts[:, 1] += lower * (pts[:, 1] - pts[36, 1]) * p.get("length", 0.0)
    jaw_weight = np.zeros(len(pts))
    jaw_weight[jaw] = np.sin(np.linspace(0.0, np.pi, 17)) ** 2
    pts[:, 0] *= 1.0 + p.get("jaw", 0.0) * jaw_weight
    pts[[6, 7, 8, 9, 10], 1] += p.get("chin", 0.0) * np.array([0.4, 0.8, 1.0, 0.8, 0.4])
    for eye in (slice(36, 42), slice(42, 48)):
        centre = pts[eye].mean(axis=0)
        pts[eye] = centre + (pts[eye] - centre) * (1.0 + p.get("eye_size", 0.0))
    spacing = p.get("eye_spacing", 0.0)
    pts[17:22, 0] -= spacing
    pts[36:42, 0] -= spacing
    pts[22:27, 0] += spacing
    pts[42:48, 0] += spacing
    nose = np.arange(31, 36)
    pts[nose, 0] *= 1.0 + p.get("nose_width", 0.0)
    pts[[30, 31, 32, 33, 34, 35], 1] += p.get("nose_length", 0.0)
    pts[[29, 30], 2] -= p.get("nose_depth", 0.0) * np.array([0.5, 1.0])
    mouth = np.arange(48, 68)
    centre = pts[mouth].mean(axis=0)
    pts[mouth, 0] = centre[0] + (pts[mouth, 0] - centre[0]) * (1.0 + p.get("mouth_width", 0.0))
    pts[mouth, 1] += p.get("mouth_height", 0.0)
    pts[[49, 50, 51, 52, 53], 1] -= p.get("upper_lip", 0.0) * np.array([0.6, 1.0, 0.8, 1.0, 0.6])
    pts[[55, 56, 57, 58, 59], 1] += p.get("lower_lip", 0.0) * np.array([0.6, 0.9, 1.0, 0.9, 0.6])
    pts[17:27, 1] -= p.get("brow_height", 0.0)
    pts[[18, 19, 20, 23, 24, 25], 1] -= p.get("brow_arch", 0.0) * np.array([0.6, 1.0, 0.7, 0.7, 1.0, 0.6])
    forehead = 68 + np.array(HAIRLINE)
    pts[forehead, 1] -= p.get("forehead", 0.0)
    return (pts + pts[_MIRROR_ALL] * [-1, 1, 1]) / 2.0


def _identity(name: str, params: dict, **rest) -> Identity:
    face = _shape(params)
    face.setflags(write=False)
    return Identity(name=name, face=face, params=dict(params), **rest)


IDENTITIES: dict[str, Identity] = {
    # A: narrow pale face, long chin, big blue eyes, thin arched brows, short brown hair, blue shirt.
    "a": _identity("a", dict(width=-0.06, length=0.10, jaw=-0.10, chin=5.0, eye_size=0.15,
                             eye_spacing=-1.0, nose_width=-0.10, nose_length=3.0, nose_depth=4.0,
                             mouth_width=-0.12, upper_lip=-0.5, lower_lip=0.5, brow_height=3.0,
                             brow_arch=4.0, forehead=6.0),
                   skin=(241, 201, 176), iris=(60, 130, 210), lips=(214, 104, 118),
                   brows=(110, 72, 40), hair=(128, 80, 40), clothes=(40, 90, 170),
                   hair_style="short", brow_thickness=2.6, beard=0.0, skull=(80.0, 110.0, 100.0)),
    # B: wide round dark face, short square jaw, small dark eyes, thick straight brows, full lips,
    # stubble, long black hair, red shirt.
    "b": _identity("b", dict(width=0.10, length=-0.08, jaw=0.10, chin=-4.0, eye_size=-0.12,
                             eye_spacing=2.0, nose_width=0.30, nose_length=-2.0, nose_depth=-2.0,
                             mouth_width=0.12, upper_lip=2.5, lower_lip=3.0, brow_height=-3.0,
                             brow_arch=-1.5, forehead=-4.0),
                   skin=(140, 90, 60), iris=(60, 36, 20), lips=(120, 56, 50),
                   brows=(24, 18, 16), hair=(22, 18, 18), clothes=(180, 40, 40),
                   hair_style="long", brow_thickness=5.5, beard=0.6, skull=(86.0, 106.0, 102.0)),
}

_SKINS = [(246, 214, 190), (236, 188, 160), (214, 160, 120), (180, 125, 90), (140, 90, 60), (96, 62, 44)]
_IRISES = [(60, 130, 210), (70, 140, 90), (120, 80, 40), (60, 36, 20), (110, 120, 130)]
_HAIRS = [(22, 18, 18), (70, 45, 25), (128, 80, 40), (220, 180, 110), (170, 70, 30), (170, 170, 170)]
_CLOTHES = [(40, 90, 170), (180, 40, 40), (40, 140, 70), (60, 60, 60), (220, 200, 80), (140, 70, 160)]


def make_identity(seed: int, name: str | None = None) -> Identity:
    """A random identity, the same for the same seed."""
    rng = np.random.default_rng([seed, 0x5EED])
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    params = dict(width=u(-0.08, 0.1), length=u(-0.08, 0.1), jaw=u(-0.1, 0.1), chin=u(-4, 5),
                  eye_size=u(-0.12, 0.15), eye_spacing=u(-1.5, 2), nose_width=u(-0.1, 0.3),
                  nose_length=u(-2, 3), nose_depth=u(-2, 4), mouth_width=u(-0.12, 0.12),
                  upper_lip=u(-0.5, 2.5), lower_lip=u(0, 3), brow_height=u(-3, 3),
                  brow_arch=u(-1.5, 4), forehead=u(-4, 6))
    pick = lambda options: tuple(int(v) for v in options[rng.integers(len(options))])  # noqa: E731
    jitter = lambda colour, amount=12: tuple(  # noqa: E731
        int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)
    skin = jitter(pick(_SKINS))
    hair = jitter(pick(_HAIRS))
    lips = tuple(int(np.clip(0.55 * s + 0.45 * l, 0, 255)) for s, l in zip(skin, (200, 70, 80)))
    brows = tuple(int(0.7 * h) for h in hair)
    return _identity(name or f"seed{seed}", params, skin=skin, iris=jitter(pick(_IRISES)), lips=lips,
                     brows=brows, hair=hair, clothes=jitter(pick(_CLOTHES), 30),
                     hair_style=HAIR_STYLES[rng.integers(len(HAIR_STYLES))],
                     brow_thickness=u(2.2, 6.0), beard=u(0.0, 0.7) if rng.random() < 0.35 else 0.0,
                     skull=(u(76, 88), u(102, 112), u(96, 104)))


def get_identity(name: str) -> Identity:
    """A built-in identity by name, or a reproducible random one named after any other string."""
    if name in IDENTITIES:
        return IDENTITIES[name]
    return make_identity(zlib.crc32(name.encode()), name=name)


def expressed_face(identity: Identity, eye_closure: float, mouth_open: float, smile: float) -> np.ndarray:
    """The identity's face points (68 + N_EXTRA, 3) with blink, mouth opening and smile applied."""
    pts = identity.face.copy()
    c = float(np.clip(eye_closure, 0.0, 1.0))
    for upper, lower in (((37, 38), (41, 40)), ((43, 44), (47, 46))):
        up, lo = list(upper), list(lower)
        closed = pts[up] * 0.08 + pts[lo] * 0.92
        pts[lo, 1] -= 0.15 * c * (pts[lo, 1] - pts[up, 1])
        pts[up] = pts[up] * (1.0 - c) + closed * c
    o = float(np.clip(mouth_open, 0.0, 1.0)) * 16.0
    pts[[55, 56, 57, 58, 59, 65, 66, 67], 1] += o * np.array([0.55, 0.9, 1.0, 0.9, 0.55, 0.8, 1.0, 0.8])
    pts[[4, 5, 6, 7, 8, 9, 10, 11, 12], 1] += o * 0.7 * np.array([0.1, 0.35, 0.7, 0.9, 1.0, 0.9, 0.7, 0.35, 0.1])
    pts[[4, 5, 6, 7, 8, 9, 10, 11, 12], 2] += o * 0.15
    extra = 68 + np.array([9, 11, 9 + len(_EXTRA_HALF), 11 + len(_EXTRA_HALF), 2 * len(_EXTRA_HALF) + 2])
    pts[extra, 1] += o * 0.75
    pts[[48, 54, 60, 64], 1] += o * 0.25
    pts[[61, 62, 63], 1] -= o * 0.06
    s = float(np.clip(smile, 0.0, 1.0))
    for corner, side in ((48, -1), (60, -1), (54, 1), (64, 1)):
        pts[corner] += s * np.array([4.0 * side, -4.0, 1.5])
    pts[[49, 53, 59, 55], 1] -= s * 1.5
    return pts


# ------------------------------------------------------------------------------ context geometry

def _sphere(n: int = 120) -> np.ndarray:
    """Unit vectors spread evenly over the sphere (Fibonacci lattice)."""
    i = np.arange(n) + 0.5
    polar, azimuth = np.arccos(1 - 2 * i / n), np.pi * (1 + 5 ** 0.5) * i
    return np.stack([np.sin(polar) * np.cos(azimuth), np.cos(polar), np.sin(polar) * np.sin(azimuth)], 1)


_UNIT_SPHERE = _sphere()
_SKULL_CENTRE = np.array([0.0, -22.0, 8.0])

# Hair over the forehead, as closed 3-D outlines a little in front of the mean forehead.
_BANGS = np.array([
    [-76, -40, -10], [-64, -72, -30], [-42, -98, -46], [0, -108, -56], [42, -98, -46], [64, -72, -30],
    [76, -40, -10], [72, -44, -17], [56, -52, -46], [36, -47, -62], [16, -53, -68], [0, -49, -70],
    [-16, -53, -68], [-36, -47, -62], [-56, -52, -46], [-72, -44, -17]], dtype=np.float64)
_SWOOP = np.array([
    [-66, -66, -30], [-34, -92, -58], [8, -96, -62], [48, -84, -50], [74, -54, -22], [62, -62, -42],
    [34, -72, -60], [4, -80, -66], [-30, -76, -60], [-56, -60, -44]], dtype=np.float64)


def hair_pieces(identity: Identity) -> list[np.ndarray]:
    """3-D point clouds (head coordinates) whose projected convex hulls are the hair behind the face."""
    skull = _SKULL_CENTRE + _UNIT_SPHERE * np.array(identity.skull)
    cap = skull[skull[:, 1] < -8.0 + 0.9 * np.maximum(skull[:, 2] - _SKULL_CENTRE[2], 0.0)]
    if identity.hair_style not in ("long", "bob"):
        return [cap]
    bottom = 150.0 if identity.hair_style == "long" else 75.0
    pieces = [cap]
    for side in (-1.0, 1.0):
        upper = cap[side * cap[:, 0] > 25.0]
        fall = np.array([[side * 88, bottom - 10, -22], [side * 92, bottom, 30], [side * 70, bottom, 80],
                         [side * 86, 10, -30]])
        pieces.append(np.concatenate([upper, fall]))
    return pieces


def fringe(identity: Identity) -> np.ndarray | None:
    """The hair drawn over the forehead, (K, 3) head coordinates, or None."""
    return {"bangs": _BANGS, "short": _SWOOP}.get(identity.hair_style)


def ears(identity: Identity) -> np.ndarray | None:
    """Outlines (2, K, 3) of the right and left ear in head coordinates, or None when hair hides them."""
    if identity.hair_style in ("long", "bob"):
        return None
    theta = np.linspace(0.0, 2 * np.pi, 16, endpoint=False)
    back = (np.cos(theta) + 1) / 2  # 0 at the front edge, 1 at the back edge
    half_width = identity.skull[0] - 6.0
    one = np.stack([half_width + 10.0 * back, 8.0 + 28.0 * np.sin(theta), 12.0 + 14.0 * np.cos(theta)], 1)
    return np.stack([one * [-1, 1, 1], one])
