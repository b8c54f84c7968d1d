"""pix2pix's PatchGAN discriminator (Isola et al. 2017), spectrally normalised by default.

It scores overlapping patches (70 x 70 pixels with the default three layers) as real or fake, so
the generator is pushed towards sharp local texture without a full-image critic. Layers: a 4x4
stride-2 conv without normalisation, `n_layers - 1` more stride-2 convs doubling the width (capped at
8x), a stride-1 conv, and a stride-1 conv to one logit per patch; LeakyReLU(0.2) between them and
padding 1, as in pix2pix, so a 256 px input gives 30 x 30 logits and a 64 px input 6 x 6.

Spectral normalisation (Miyato et al. 2018) replaces pix2pix's batch/instance norm and wraps every
conv with `flax.linen.SpectralNorm`, which keeps its power-iteration vector `u` and the estimate
`sigma` in the "batch_stats" collection:

    variables = disc.init(key, images)                      # {"params", "batch_stats"}
    # discriminator step: advance the power iteration and keep the new state
    logits, new = disc.apply(variables, images, update_stats=True, mutable=["batch_stats"])
    variables = {"params": ..., "batch_stats": new["batch_stats"]}
    # generator step and evaluation: read the state, change nothing
    logits = disc.apply(variables, fakes)

`update_stats` left as None follows `mutable`: the state advances exactly when the caller lets
"batch_stats" change, so `mutable=["batch_stats"]` alone is enough (and a generator step that
passes it and drops the result changes nothing either).

Without spectral norm the middle layers use instance normalisation and there is no "batch_stats".
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import flax.linen as nn

from dfjax.models.attention import SelfAttention

Dtype = Any


class PatchDiscriminator(nn.Module):
    """Images NHWC in [0, 1] (any channel count, e.g. face and mask stacked) -> NHW1 float32 logits.

    `attention_res` inserts a SAGAN self-attention block after the layer whose output has that
    spatial size (input/2, input/4, ...).
    """

    features: int = 64
    n_layers: int = 3
    spectral_norm: bool = True
    attention_res: int | None = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, update_stats: bool | None = None) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        if update_stats is None:
            update_stats = self.is_mutable_collection("batch_stats")

        def conv(y: jax.Array, features: int, strides: int, name: str) -> jax.Array:
            layer = nn.Conv(features, (4, 4), (strides, strides), padding=((1, 1), (1, 1)),
                            name=name, **kw)
            if self.spectral_norm:
                return nn.SpectralNorm(layer, name=f"{name}_sn")(y, update_stats=update_stats)
            return layer(y)

        widths = [self.features * min(2 ** i, 8) for i in range(self.n_layers + 1)]
        strides = [2] * self.n_layers + [1]
        x = x.astype(self.dtype) * 2 - 1
        seen, attended = [], False
        for i, (width, stride) in enumerate(zip(widths, strides)):
            x = conv(x, width, stride, f"conv{i}")
            if i > 0 and not self.spectral_norm:
                x = nn.InstanceNorm(use_scale=False, use_bias=False, name=f"norm{i}", **kw)(x)
            x = nn.leaky_relu(x, 0.2)
            seen.append(x.shape[1])
            if self.attention_res is not None and x.shape[1] == self.attention_res and not attended:
                x = SelfAttention(spectral_norm=self.spectral_norm, name="attention", **kw)(
                    x, update_stats=update_stats)
                attended = True
        if self.attention_res is not None and not attended:
            raise ValueError(f"attention_res must be one of {seen} for this input, got {self.attention_res}")
        return conv(x, 1, 1, "logits").astype(jnp.float32)


def discriminator_from_config(gan, dtype) -> PatchDiscriminator | None:
    """The PatchGAN a config's `gan` section describes (None when `gan.enabled` is off)."""
    if not gan.enabled:
        return None
    return PatchDiscriminator(features=gan.features, n_layers=gan.n_layers, spectral_norm=gan.spectral_norm,
                              attention_res=gan.get("attention_res", 0) or None, dtype=dtype, param_dtype=jnp.float32)
