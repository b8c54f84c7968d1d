"""The face-swap autoencoder: one shared encoder, one decoder per identity (faceswap / DeepFaceLab).

Architectures, registered by name in `ARCHITECTURES` (layer for layer as the reference networks that
benchmarks/train.py times against a PyTorch peer):

- "original": faceswap's Original, 64 px, 94,455,560 parameters.
- "sae128", "sae256": faceswap's DFL-SAE (df layout, encoder_dims 42, decoder_dims 21, ae_dims 512),
  137,476,404 and 286,996,788 parameters.
- "tiny": the "original" layout with every width divided by 8 (convs 16-128, dense 128, decoders
  32-16-8), `tiny_res` px (64 by default); 1,481,448 parameters, trains on a CPU in minutes.
- "liae_tiny": DeepFaceLab's LIAE at the "tiny" widths: a shared encoder, an `inter_ab` bottleneck
  shared by both identities, an `inter_b` bottleneck that only B faces use, and ONE shared decoder
  fed with [inter_b(z), inter_ab(z)] for B and [inter_ab(z), inter_ab(z)] for A (and for swaps);
  2,255,748 parameters.

Any of them takes the deep-video-portrait conditioning branch with `cond_channels > 0`
(dfjax.models.modulation): the forward pass then also takes each side's stacked conditioning maps
(N, R, R, cond_channels), encoded once by a shared `ConditionEncoder`, and every decoder is
modulated by them at four scales. With `cond_channels=0` the model is exactly the plain one.

With `latent="vae"` the bottleneck is variational (Kingma & Welling 2014): the first dense layer of
every bottleneck (the shared encoder's; LIAE's `inter_ab` and `inter_b`) gives the mean of the code
and a second dense layer of the same shape beside it (`logvar`) its log-variance. Given an rng named
"latent" (`rngs={"latent": key}`, as training does) the code is sampled with the reparameterisation
z = mean + exp(logvar / 2) * eps; without one (swap, previews, any plain `apply`) it is the mean, so
inference is deterministic. Each bottleneck records its KL divergence to N(0, I) (summed over the
code, averaged over the batch) in the "losses" collection: `apply(..., mutable=["losses"])`. With the
default `latent="ae"` the model is exactly the plain autoencoder (same parameters, same outputs).

Images are NHWC in [0, 1]; faces and masks come out of float32 sigmoids whatever `dtype` computes.
Typical use::

    model = FaceSwapAE("original", dtype=jnp.bfloat16)
    params = model.init(key, x_a, x_b)["params"]          # both decoders in one init
    out = model.apply({"params": params}, x_a, x_b)       # face_a, mask_a, face_b, mask_b
    fake_b, mask = model.apply({"params": params}, x_a, "b", method=FaceSwapAE.swap)

    vae = FaceSwapAE("tiny", latent="vae")                     # sampled codes in training, the mean otherwise
    out, kl = vae.apply({"params": p}, x_a, x_b, rngs={"latent": key}, mutable=["losses"])

    dvp = FaceSwapAE("tiny", cond_channels=27)                  # C_MAPS (9) maps x a window of 3
    out = dvp.apply({"params": p}, x_a, x_b, cond_a, cond_b)     # maps (N, R, R, 27) per side
    fake_b, mask = dvp.apply({"params": p}, x_a, "b", maps_a_as_b, method=FaceSwapAE.swap)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import flax.linen as nn

from dfjax.models.attention import SelfAttention
from dfjax.models.blocks import Conv, Residual, Upscale
from dfjax.models.modulation import ConditionEncoder, Modulation, condition_widths
from dfjax.registry import Registry

Dtype = Any

# name -> (tiny_res) -> ArchSpec; a new architecture is a module in dfjax/models registering its spec
ARCHITECTURES = Registry("swap architecture", discover="dfjax.models")
SIDES = ("a", "b")
LATENTS = ("ae", "vae")  # model.latent: a plain code, or a variational one (mean and log-variance heads)


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """The layer widths of one swap architecture (the notation of the reference specs)."""

    res: int                       # input and output resolution
    enc_dims: int                  # width of the first encoder conv; then x2, x4, x8
    dense: int                     # bottleneck width
    dense_ch: int                  # channels of the reshaped (res/16)^2 map after the second dense
    up_ch: int                     # channels after the bottleneck's Up
    decoder: str                   # "original" (Up chain) or "sae" (Up + Res + Res stages)
    face_ch: tuple[int, int, int]
    mask_ch: tuple[int, int, int]
    liae: bool = False


@ARCHITECTURES.register("original")
def _original(tiny_res: int) -> ArchSpec:
    return ArchSpec(64, 128, 1024, 1024, 512, "original", (256, 128, 64), (256, 128, 64))


@ARCHITECTURES.register("sae128")
def _sae128(tiny_res: int) -> ArchSpec:
    return ArchSpec(128, 126, 512, 512, 512, "sae", (504, 252, 126), (168, 84, 42))


@ARCHITECTURES.register("sae256")
def _sae256(tiny_res: int) -> ArchSpec:
    return ArchSpec(256, 126, 512, 512, 512, "sae", (504, 252, 126), (168, 84, 42))


def _tiny_spec(tiny_res: int, liae: bool) -> ArchSpec:
    if tiny_res % 16 or tiny_res < 16:
        raise ValueError(f"tiny_res must be a multiple of 16, got {tiny_res}")
    return ArchSpec(tiny_res, 16, 128, 128, 64, "original", (32, 16, 8), (32, 16, 8), liae=liae)


@ARCHITECTURES.register("tiny")
def _tiny(tiny_res: int) -> ArchSpec:
    return _tiny_spec(tiny_res, liae=False)


@ARCHITECTURES.register("liae_tiny")
def _liae_tiny(tiny_res: int) -> ArchSpec:
    return _tiny_spec(tiny_res, liae=True)


def _spec(arch: str, tiny_res: int = 64) -> ArchSpec:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES.names())}")
    return ARCHITECTURES.get(arch)(tiny_res)


def resolution(arch: str, tiny_res: int = 64) -> int:
    """Input (and output) size in pixels of `arch`; `tiny_res` applies to the tiny ones."""
    return _spec(arch, tiny_res).res


def kl_to_standard_normal(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mean, exp(logvar)) || N(0, I)) summed over the code's last axis, averaged over the batch."""
    mean, logvar = mean.astype(jnp.float32), logvar.astype(jnp.float32)
    return jnp.mean(0.5 * jnp.sum(jnp.square(mean) + jnp.exp(logvar) - 1.0 - logvar, axis=-1))


class Bottleneck(nn.Module):
    """Dense -> Dense -> reshape to (res/16)^2 x dense_ch -> Up(up_ch), on a flattened code.

    `variational`: the first Dense is the code's mean and a `logvar` Dense beside it its log-variance;
    the code is sampled when an rng "latent" is given, else it is the mean (see the module docstring).
    """

    spec: ArchSpec
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    variational: bool = False

    @nn.compact
    def __call__(self, flat: jax.Array) -> jax.Array:
        s, r = self.spec, self.spec.res // 16
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        x = nn.Dense(s.dense, name="dense1", **kw)(flat)
        if self.variational:
            logvar = jnp.clip(nn.Dense(s.dense, name="logvar", **kw)(flat).astype(jnp.float32), -30.0, 20.0)
            self.sow("losses", "kl", kl_to_standard_normal(x, logvar))
            if self.has_rng("latent"):
                eps = jax.random.normal(self.make_rng("latent"), x.shape, jnp.float32)
                x = (x.astype(jnp.float32) + jnp.exp(0.5 * logvar) * eps).astype(x.dtype)
        x = nn.Dense(r * r * s.dense_ch, name="dense2", **kw)(x)
        x = x.reshape(x.shape[0], r, r, s.dense_ch)
        return Upscale(s.up_ch, name="up", **kw)(x)


class Encoder(nn.Module):
    """Four Conv(5, 2) + LeakyReLU(0.1), flattened in NHWC order; then the bottleneck unless LIAE."""

    spec: ArchSpec
    bottleneck: bool = True
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    variational: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        s = self.spec
        if x.shape[1:3] != (s.res, s.res):
            raise ValueError(f"this model takes {s.res}x{s.res} faces, got {x.shape[1]}x{x.shape[2]}")
        x = x.astype(self.dtype)
        for i, m in enumerate((1, 2, 4, 8)):
            x = Conv(s.enc_dims * m, 5, 2, dtype=self.dtype, param_dtype=self.param_dtype,
                     name=f"conv{i}")(x)
            x = nn.leaky_relu(x, 0.1)
        x = x.reshape(x.shape[0], -1)
        if self.bottleneck:
            x = Bottleneck(s, self.dtype, self.param_dtype, self.variational, name="bottleneck")(x)
        return x


class Decoder(nn.Module):
    """A face head (3 channels) and a mask head (1 channel), each ending in a float32 sigmoid.

    With `attention_res` set, a SAGAN self-attention block runs on the face head's feature map at
    that resolution (the code's resolution, or after any of its three upscales). Its attention
    matrix is (res^2)^2 per image: 64 MiB in float32 at 64 x 64, so keep it at 32 or below for
    large batches.

    With `conditioned`, `cond` maps each resolution to condition features (a ConditionEncoder's
    output) and a `Modulation` runs on the code and after every upscale of both heads.
    """

    spec: ArchSpec
    attention_res: int | None = None
    conditioned: bool = False
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, cond: dict[int, jax.Array] | None = None) -> tuple[jax.Array, jax.Array]:
        s = self.spec
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        if self.conditioned and cond is None:
            raise ValueError("this decoder is conditioned: pass the condition features")

        def modulate(x: jax.Array, name: str) -> jax.Array:
            return Modulation(name=name, **kw)(x, cond[x.shape[1]]) if self.conditioned else x

        z = modulate(z, "cond_code")
        valid = [z.shape[1] * 2 ** k for k in range(4)]
        if self.attention_res is not None and self.attention_res not in valid:
            raise ValueError(f"attention_res must be one of {valid} for this model, "
                             f"got {self.attention_res}")

        def attend(x: jax.Array) -> jax.Array:
            if x.shape[1] == self.attention_res:
                x = SelfAttention(name="face_attention", **kw)(x)
            return x

        x = attend(z)
        for i, c in enumerate(s.face_ch):
            if s.decoder == "sae":
                x = nn.leaky_relu(Upscale(c, activation=False, name=f"face_up{i}", **kw)(x), 0.2)
                x = Residual(c, name=f"face_res{i}a", **kw)(x)
                x = Residual(c, name=f"face_res{i}b", **kw)(x)
            else:
                x = Upscale(c, name=f"face_up{i}", **kw)(x)
            x = attend(modulate(x, f"face_cond{i}"))
        face = Conv(3, 5, 1, name="face_out", **kw)(x)

        m = z
        for i, c in enumerate(s.mask_ch):
            m = modulate(Upscale(c, name=f"mask_up{i}", **kw)(m), f"mask_cond{i}")
        mask = Conv(1, 5, 1, name="mask_out", **kw)(m)
        return nn.sigmoid(face.astype(jnp.float32)), nn.sigmoid(mask.astype(jnp.float32))


class FaceSwapAE(nn.Module):
    """Shared encoder and one decoder per identity (or LIAE's intermediates and shared decoder).

    `identities` names them (default a and b: the two-identity model of faceswap and DeepFaceLab,
    parameters `decoder_a`, `decoder_b`). With N names there are N decoders `decoder_<name>` (LIAE: the
    shared `inter_ab` and one `inter_<name>` for every identity after the first), so one model serves
    all N(N-1) swap directions; the encoder is shared by all.

    `cond_channels` > 0 adds the conditioning branch: stacked maps with that many channels drive
    the decoders through a shared ConditionEncoder of base width `cond_width` (0: a quarter of the
    encoder's first width, at least 16). `latent` is "ae" (a plain code) or "vae" (variational
    bottlenecks; see the module docstring).
    """

    arch: str = "original"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    attention_res: int | None = None
    cond_channels: int = 0
    tiny_res: int = 64
    cond_width: int = 0
    latent: str = "ae"
    identities: tuple[str, ...] = SIDES

    def setup(self) -> None:
        if self.cond_channels < 0:
            raise ValueError(f"cond_channels must be >= 0, got {self.cond_channels}")
        if self.latent not in LATENTS:
            raise ValueError(f"latent must be one of {', '.join(LATENTS)}, got {self.latent!r}")
        if len(self.identities) < 2 or len(set(self.identities)) != len(self.identities):
            raise ValueError(f"identities must be two or more distinct names, got {self.identities!r}")
        spec = _spec(self.arch, self.tiny_res)
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        conditioned, variational = self.cond_channels > 0, self.latent == "vae"
        self.encoder = Encoder(spec, bottleneck=not spec.liae, variational=variational, **kw)
        if conditioned:
            base = self.cond_width or max(16, spec.enc_dims // 4)
            self.cond_encoder = ConditionEncoder(condition_widths(base), **kw)
        if spec.liae:
            self.inter_ab = Bottleneck(spec, variational=variational, **kw)
            self.inters = {name: Bottleneck(spec, variational=variational, name=f"inter_{name}", **kw)
                           for name in self.identities[1:]}
            self.decoder = Decoder(spec, self.attention_res, conditioned, **kw)
        else:
            self.decoders = {name: Decoder(spec, self.attention_res, conditioned, name=f"decoder_{name}", **kw)
                             for name in self.identities}

    @property
    def resolution(self) -> int:
        """Input and output size in pixels."""
        return resolution(self.arch, self.tiny_res)

    def encode(self, x: jax.Array) -> jax.Array:
        """Faces (N, R, R, 3) in [0, 1] -> the shared code (a feature map; flat for LIAE)."""
        return self.encoder(x)

    def _condition(self, cond: jax.Array | None) -> dict[int, jax.Array] | None:
        """Condition features of stacked maps (None for a plain model); checks they fit the model."""
        if not self.cond_channels:
            if cond is not None:
                raise ValueError("this model has no conditioning branch (cond_channels=0); pass no maps")
            return None
        r = self.resolution
        if cond is None or cond.shape[1:] != (r, r, self.cond_channels):
            got = None if cond is None else tuple(cond.shape[1:])
            raise ValueError(f"this model is conditioned: pass maps of shape (N, {r}, {r}, {self.cond_channels}), "
                             f"got {got}")
        return self.cond_encoder(cond)

    def decode(self, z: jax.Array, side: str, cond: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """Code -> (face (N, R, R, 3), mask (N, R, R, 1)) as identity `side` (one of `identities`).

        cond: the stacked conditioning maps (N, R, R, cond_channels) of a conditioned model.
        """
        if side not in self.identities:
            raise ValueError(f"side must be one of {', '.join(self.identities)}, got {side!r}")
        features = self._condition(cond)
        if _spec(self.arch, self.tiny_res).liae:
            shared = self.inter_ab(z)
            own = shared if side == self.identities[0] else self.inters[side](z)
            return self.decoder(jnp.concatenate([own, shared], axis=-1), features)
        return self.decoders[side](z, features)

    def __call__(self, *inputs: jax.Array) -> dict[str, jax.Array]:
        """The training forward pass: each identity's faces through its own decoder.

        inputs: one batch of faces per identity, in the order of `identities` (for a, b: x_a, x_b), then,
        for a conditioned model, each identity's stacked maps in the same order (cond_a, cond_b).
        Returns face_<name> and mask_<name> for every identity. The shared encoder runs once per
        identity rather than on the concatenated batch: with the batch sharded over devices,
        concatenating and splitting would move rows between devices.
        """
        n = len(self.identities)
        if len(inputs) not in (n, 2 * n):
            raise ValueError(f"pass {n} batches of faces (and, conditioned, {n} of maps), got {len(inputs)} arrays")
        faces, conds = inputs[:n], inputs[n:] or (None,) * n
        out = {}
        for name, x, cond in zip(self.identities, faces, conds):
            out[f"face_{name}"], out[f"mask_{name}"] = self.decode(self.encode(x), name, cond)
        return out

    def swap(self, x: jax.Array, to: str, cond: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """Render the faces `x` as identity `to`: decode(encode(x), to, cond).

        For a conditioned model, `cond` is the maps the output should follow: at swap time the
        source frame's, retargeted to identity `to` (dfjax.faces.retarget).
        """
        return self.decode(self.encode(x), to, cond)


def count_params(tree: Any) -> int:
    """Number of scalars in a pytree of arrays or ShapeDtypeStructs."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))


def param_count(arch: str, **fields: Any) -> int:
    """Exact parameter count of `FaceSwapAE(arch, **fields)`, via `jax.eval_shape` (no memory)."""
    model = FaceSwapAE(arch, **fields)
    r = model.resolution
    x = jax.ShapeDtypeStruct((1, r, r, 3), jnp.float32)
    n = len(model.identities)
    cond = (jax.ShapeDtypeStruct((1, r, r, model.cond_channels), jnp.float32),) * n if model.cond_channels else ()
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), *(x,) * n, *cond)
    return count_params(shapes["params"])
