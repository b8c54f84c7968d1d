"""SAGAN self-attention (Zhang et al. 2019, "Self-Attention Generative Adversarial Networks").

Every position attends to every other position of the feature map, so a decoder can make the two
eyes agree and a discriminator can compare far-apart parts of a face. The output is
`x + gamma * attention(x)` with `gamma` a learned scalar that starts at 0: a freshly added block is
the identity, and the network learns how much non-local evidence to mix in.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import flax.linen as nn

Dtype = Any


class SelfAttention(nn.Module):
    """Self-attention over the H x W positions of an NHWC map.

    Query and key are 1x1 convolutions to C/8 channels, value a 1x1 convolution to C/`value_ratio`
    channels (SAGAN: 1, BigGAN: 2), the softmax runs over positions (in float32), and a 1x1
    convolution brings the result back to C channels. As in SAGAN the logits are not scaled.

    With `spectral_norm=True` every 1x1 convolution is spectrally normalised (as in SAGAN's
    discriminator); the power-iteration state then lives in "batch_stats" and `update_stats`
    works as in `PatchDiscriminator` (None: advance it when "batch_stats" is mutable).
    """

    value_ratio: int = 2
    spectral_norm: bool = False
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, update_stats: bool | None = None) -> jax.Array:
        if update_stats is None:
            update_stats = self.is_mutable_collection("batch_stats")
        b, h, w, c = x.shape
        qk = max(c // 8, 1)
        cv = max(c // self.value_ratio, 1)

        def conv1x1(features: int, name: str, y: jax.Array) -> jax.Array:
            layer = nn.Conv(features, (1, 1), dtype=self.dtype, param_dtype=self.param_dtype, name=name)
            if self.spectral_norm:
                return nn.SpectralNorm(layer, name=f"{name}_sn")(y, update_stats=update_stats)
            return layer(y)

        q = conv1x1(qk, "query", x).reshape(b, h * w, qk)
        k = conv1x1(qk, "key", x).reshape(b, h * w, qk)
        v = conv1x1(cv, "value", x).reshape(b, h * w, cv)
        logits = jnp.einsum("bqc,bkc->bqk", q, k, preferred_element_type=jnp.float32)
        attn = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
        o = jnp.einsum("bqk,bkc->bqc", attn, v).reshape(b, h, w, cv)
        o = conv1x1(c, "out", o)
        gamma = self.param("gamma", nn.initializers.zeros, (), self.param_dtype)
        return x + gamma.astype(o.dtype) * o
