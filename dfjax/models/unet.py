"""The conditional U-Net of the reenactment mode: conditioning maps in, an RGB face out.

After pix2pix (Isola et al. 2017) and the rendering-to-video translation network of Deep Video
Portraits (Kim et al. 2018): an encoder of `depth` stride-2 4x4 convolutions (widths doubling
from `features`, capped at `max_features`), and a decoder that upsamples (nearest neighbour + 3x3
convolution, which avoids the checkerboards of transposed convolutions), concatenates the encoder
map of the same size (the skip connection that carries the maps' fine geometry straight to the
output) and refines it with another 3x3 convolution. Group normalisation (stateless, so there are no
batch statistics to carry) follows every convolution but the first and the innermost; instance
normalisation would subtract away all that the constant head-pose channels add to a feature map,
a group keeps their differences across its channels. The output is a float32 sigmoid in [0, 1].

    UNet(features=16, depth=4, max_features=128)   # "tiny": 64 px, 0.38 M parameters (27 map channels)
    UNet(features=64, depth=7)                      # 256 px, pix2pix-like widths, 39.8 M
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import flax.linen as nn

Dtype = Any


def upsample(x: jax.Array) -> jax.Array:
    """Nearest-neighbour 2x upsampling of NHWC as a broadcast (its gradient is a sum, not a scatter)."""
    b, h, w, c = x.shape
    return jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c)).reshape(b, 2 * h, 2 * w, c)


class UNet(nn.Module):
    """Maps (B, R, R, C) -> RGB (B, R, R, 3); R must be divisible by 2**depth."""

    features: int = 64
    depth: int = 7
    max_features: int = 512
    groups: int = 8
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    def _norm(self, x: jax.Array, name: str) -> jax.Array:
        groups = next(g for g in range(min(self.groups, x.shape[-1]), 0, -1) if x.shape[-1] % g == 0)
        return nn.GroupNorm(num_groups=groups, dtype=self.dtype, param_dtype=self.param_dtype, name=name)(x)

    @nn.compact
    def __call__(self, maps: jax.Array) -> jax.Array:
        size = maps.shape[1]
        if size % 2 ** self.depth or maps.shape[2] != size:
            raise ValueError(f"this U-Net takes square inputs divisible by {2 ** self.depth}, got {maps.shape[1:3]}")
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        widths = [min(self.features * 2 ** i, self.max_features) for i in range(self.depth)]
        x = maps.astype(self.dtype)
        skips = []
        for i, width in enumerate(widths):
            x = nn.Conv(width, (4, 4), (2, 2), padding="SAME", name=f"down{i}", **kw)(x)
            if 0 < i < self.depth - 1:
                x = self._norm(x, f"down{i}_norm")
            x = nn.leaky_relu(x, 0.2)
            skips.append(x)
        for i in reversed(range(self.depth - 1)):
            x = upsample(x)
            x = nn.relu(self._norm(nn.Conv(widths[i], (3, 3), name=f"up{i}", **kw)(x), f"up{i}_norm"))
            x = jnp.concatenate([x, skips[i]], axis=-1)
            x = nn.relu(self._norm(nn.Conv(widths[i], (3, 3), name=f"refine{i}", **kw)(x), f"refine{i}_norm"))
        x = upsample(x)
        x = nn.relu(nn.Conv(self.features, (3, 3), name="up_out", **kw)(x))
        x = nn.Conv(3, (3, 3), name="rgb", **kw)(x)
        return nn.sigmoid(x.astype(jnp.float32))
