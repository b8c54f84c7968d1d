"""The deep-video-portrait conditioning branch of the swap GAN: a map encoder and decoder modulation.

Deep Video Portraits (Kim et al. 2018) drives its generator with rendered images of what the head,
eyes and face region are doing. In the shared-encoder / two-decoder swap model the face's code
still comes from the source face; these maps (dfjax.models.conditioning, stacked over a causal
window of frames) steer how each decoder draws it:

- `ConditionEncoder`: a small conv encoder over the stacked maps (B, R, R, C), shared by both
  decoders (the maps carry geometry, not identity), giving features at R, R/2, R/4 and R/8;
- `Modulation`: SPADE-style (Park et al. 2019) spatially-varying modulation of a decoder feature
  map x by the condition features c at its resolution: x * (1 + gamma(c)) + beta(c), where gamma
  and beta are 3x3 convs of a shared 3x3 conv of c. Unlike SPADE, x is not normalised first and
  gamma and beta start at zero, so an untrained branch leaves the plain decoder exactly as it is
  (ControlNet's "zero convolution" idea) and training only adds what the maps explain.

The decoders (dfjax.models.autoencoder.Decoder) modulate their code and every upscale stage of
both heads (face and mask) when built with `conditioned=True`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import flax.linen as nn

from dfjax.models.blocks import Conv

Dtype = Any


def condition_widths(base: int) -> tuple[int, int, int, int]:
    """Channels of the condition features at R, R/2, R/4, R/8 for a base width."""
    return (base, base, 2 * base, 4 * base)


class ConditionEncoder(nn.Module):
    """Stacked maps (B, R, R, C) -> {resolution: features} at R, R/2, R/4 and R/8.

    One Conv(3, 1) then three Conv(3, 2), each followed by LeakyReLU(0.2).
    """

    widths: tuple[int, ...] = condition_widths(16)
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, maps: jax.Array) -> dict[int, jax.Array]:
        x = maps.astype(self.dtype)
        features = {}
        for i, width in enumerate(self.widths):
            x = Conv(width, 3, 1 if i == 0 else 2, dtype=self.dtype, param_dtype=self.param_dtype,
                     name=f"conv{i}")(x)
            x = nn.leaky_relu(x, 0.2)
            features[x.shape[1]] = x
        return features


class Modulation(nn.Module):
    """x * (1 + gamma(c)) + beta(c), with gamma and beta zero at initialisation (see the module doc)."""

    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, cond: jax.Array) -> jax.Array:
        if cond.shape[1:3] != x.shape[1:3]:
            raise ValueError(f"condition features {cond.shape[1:3]} do not match the feature map {x.shape[1:3]}")
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        hidden = nn.leaky_relu(Conv(cond.shape[-1], 3, 1, name="shared", **kw)(cond), 0.2)
        zero = dict(padding="SAME", kernel_init=nn.initializers.zeros, **kw)
        gamma = nn.Conv(x.shape[-1], (3, 3), name="gamma", **zero)(hidden)
        beta = nn.Conv(x.shape[-1], (3, 3), name="beta", **zero)(hidden)
        return x * (1 + gamma) + beta


__all__ = ["ConditionEncoder", "Modulation", "condition_widths"]
