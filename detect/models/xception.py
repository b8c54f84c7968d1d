"""Xception (Chollet 2017), the backbone of FaceForensics++ and DeepfakeBench's default detector.

Entry flow: conv 32 3x3 s2 -> conv 64 3x3, then three residual blocks (128, 256, 728) of two
separable convs and a 3x3 s2 max-pool, with a 1x1 s2 conv + BN shortcut. Middle flow:
`middle_blocks` (8 in the paper) residual blocks of three ReLU -> separable conv -> BN. Exit flow:
a residual block (728 -> 1024, pooled), separable convs 1536 and 2048 with ReLU, global average
pool, optional dropout, one logit. Every width is multiplied by `width` (rounded to a multiple of
8), so `width=0.125, middle_blocks=1` is a network that compiles in seconds on a CPU. 'same'
padding throughout: any input size works. Inputs in [0, 1] are mapped to [-1, 1] as in the
FaceForensics++ preprocessing.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from detect.models import CNN_MODELS

Dtype = Any
ENTRY = (32, 64)
BLOCKS = (128, 256, 728)
EXIT = (1024, 1536, 2048)


@CNN_MODELS.register("xception")
class Xception(nn.Module):
    """Images (B, H, W, 3) in [0, 1] -> (B,) float32 logits."""

    width: float = 1.0
    middle_blocks: int = 8
    dropout: float = 0.0
    bn_momentum: float = 0.99
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    def _w(self, channels: int) -> int:
        return channels if self.width == 1.0 else max(8, int(round(channels * self.width / 8)) * 8)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)

        def bn(y):
            return nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-3, **kw)(y)

        def conv(y, features: int, kernel: int, strides: int = 1):
            return nn.Conv(features, (kernel, kernel), (strides, strides), padding="SAME", use_bias=False, **kw)(y)

        def separable(y, features: int):
            y = nn.Conv(y.shape[-1], (3, 3), padding="SAME", feature_group_count=y.shape[-1], use_bias=False, **kw)(y)
            return conv(y, features, 1)

        def pooled_block(y, widths: tuple[int, int], relu_first: bool):
            shortcut = bn(conv(y, widths[1], 1, 2))
            for i, features in enumerate(widths):
                if i or relu_first:
                    y = nn.relu(y)
                y = bn(separable(y, features))
            return nn.max_pool(y, (3, 3), (2, 2), padding="SAME") + shortcut

        x = x.astype(self.dtype) * 2 - 1
        x = nn.relu(bn(conv(x, self._w(ENTRY[0]), 3, 2)))          # entry flow
        x = nn.relu(bn(conv(x, self._w(ENTRY[1]), 3)))
        for i, features in enumerate(BLOCKS):
            x = pooled_block(x, (self._w(features),) * 2, relu_first=i > 0)
        middle = self._w(BLOCKS[-1])
        for _ in range(self.middle_blocks):                           # middle flow
            y = x
            for _ in range(3):
                y = bn(separable(nn.relu(y), middle))
            x = x + y
        x = pooled_block(x, (middle, self._w(EXIT[0])), relu_first=True)  # exit flow
        x = nn.relu(bn(separable(x, self._w(EXIT[1]))))
        x = nn.relu(bn(separable(x, self._w(EXIT[2]))))
        x = jnp.mean(x, axis=(1, 2))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(1, **kw)(x)[:, 0].astype(jnp.float32)
