"""MesoNet (Afchar et al. 2018, "MesoNet: a Compact Facial Video Forgery Detection Network").

Layer for layer as the authors' Keras code (DariusAf/MesoNet, classifiers.py):

    Meso-4            conv 8 3x3 -> conv 8 5x5 -> conv 16 5x5 -> conv 16 5x5
    MesoInception-4   inception(1,4,4,2) -> inception(2,4,4,2) -> conv 16 5x5 -> conv 16 5x5

each block ReLU -> batch norm -> max-pool (2, 2, 2 and 4), then flatten -> dropout 0.5 ->
dense 16 -> LeakyReLU(0.1) -> dropout 0.5 -> dense 1. An inception module concatenates a 1x1
conv, 1x1 -> 3x3, 1x1 -> 3x3 dilated 2 and 1x1 -> 3x3 dilated 3 branches, all ReLU. 'same'
padding everywhere, so any input size works (the flatten width follows it; 256 px gives 8x8x16).
Batch norm keeps Keras' epsilon (1e-3); its momentum is a field because short runs need a faster one.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from detect.models import CNN_MODELS

Dtype = Any


class _MesoBase(nn.Module):
    dropout: float = 0.5
    bn_momentum: float = 0.99
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    def _conv(self, x, features: int, kernel: int, dilation: int = 1):
        return nn.relu(nn.Conv(features, (kernel, kernel), padding="SAME", kernel_dilation=dilation,
                               dtype=self.dtype, param_dtype=self.param_dtype)(x))

    def _norm_pool(self, x, pool: int, train: bool):
        x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-3,
                         dtype=self.dtype, param_dtype=self.param_dtype)(x)
        return nn.max_pool(x, (pool, pool), (pool, pool), padding="SAME")

    def _head(self, x, train: bool):
        x = x.reshape(x.shape[0], -1)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = nn.leaky_relu(nn.Dense(16, dtype=self.dtype, param_dtype=self.param_dtype)(x), 0.1)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = nn.Dense(1, dtype=self.dtype, param_dtype=self.param_dtype)(x)
        return x[:, 0].astype(jnp.float32)

    def _inception(self, x, a: int, b: int, c: int, d: int):
        branches = [self._conv(x, a, 1),
                    self._conv(self._conv(x, b, 1), b, 3),
                    self._conv(self._conv(x, c, 1), c, 3, dilation=2),
                    self._conv(self._conv(x, d, 1), d, 3, dilation=3)]
        return jnp.concatenate(branches, axis=-1)


@CNN_MODELS.register("meso4")
class Meso4(_MesoBase):
    """Images (B, H, W, 3) in [0, 1] -> (B,) float32 logits."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = x.astype(self.dtype)
        for features, kernel, pool in ((8, 3, 2), (8, 5, 2), (16, 5, 2), (16, 5, 4)):
            x = self._norm_pool(self._conv(x, features, kernel), pool, train)
        return self._head(x, train)


@CNN_MODELS.register("mesoinception4")
class MesoInception4(_MesoBase):
    """Images (B, H, W, 3) in [0, 1] -> (B,) float32 logits."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = x.astype(self.dtype)
        x = self._norm_pool(self._inception(x, 1, 4, 4, 2), 2, train)
        x = self._norm_pool(self._inception(x, 2, 4, 4, 2), 2, train)
        x = self._norm_pool(self._conv(x, 16, 5), 2, train)
        x = self._norm_pool(self._conv(x, 16, 5), 4, train)
        return self._head(x, train)
