"""The building blocks shared by the face-swap networks: conv, pixel-shuffle upscale, residual.

Notation of the reference network specs: `Conv(k, s, c)`, `Up(c)`, `Res(c)`. Every block computes in
`dtype` (e.g. bfloat16) and keeps its parameters in `param_dtype` (float32).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import flax.linen as nn

Dtype = Any


def pixel_shuffle(x: jax.Array, r: int = 2) -> jax.Array:
    """Depth-to-space on NHWC in PyTorch's `PixelShuffle` channel order.

    Input channel `c * r * r + i * r + j` at (h, w) goes to output channel `c` at (h * r + i, w * r + j),
    which is what `torch.nn.PixelShuffle(r)` does on NCHW; so weights ported from a PyTorch peer give
    the same image. (TensorFlow's `depth_to_space` uses the order `(i * r + j) * C + c` instead.)
    """
    b, h, w, cin = x.shape
    if cin % (r * r):
        raise ValueError(f"pixel_shuffle needs channels divisible by {r * r}, got {cin}")
    c = cin // (r * r)
    x = x.reshape(b, h, w, c, r, r)          # (..., c, i, j)
    x = x.transpose(0, 1, 4, 2, 5, 3)        # (b, h, i, w, j, c)
    return x.reshape(b, h * r, w * r, c)


def Conv(features: int, kernel: int = 3, strides: int = 1, *, dtype: Dtype = jnp.float32,  # noqa: N802
         param_dtype: Dtype = jnp.float32, name: str | None = None) -> nn.Conv:
    """`Conv(k, s, c)`: a k x k convolution, stride s, "same" padding, with bias.

    A factory for `flax.linen.Conv`, so parameters sit flat under the caller's name.
    "same" pads like TensorFlow/Keras (faceswap's backend): for a stride-2 5x5 conv on an even input
    that is 1 pixel before and 2 after, where PyTorch's `padding=2` pads 2 and 2; shapes, parameter
    counts and FLOPs are identical, the sampling grid is offset by one pixel.
    """
    return nn.Conv(features, (kernel, kernel), (strides, strides), padding="SAME", dtype=dtype,
                   param_dtype=param_dtype, name=name)


class Upscale(nn.Module):
    """`Up(c)`: Conv(3, 1, 4c), LeakyReLU(0.1) unless `activation=False`, 2x pixel shuffle to c."""

    features: int
    activation: bool = True
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = Conv(4 * self.features, 3, 1, dtype=self.dtype, param_dtype=self.param_dtype, name="conv")(x)
        if self.activation:
            x = nn.leaky_relu(x, 0.1)
        return pixel_shuffle(x, 2)


class Residual(nn.Module):
    """`Res(c)`: x + Conv(3,1,c)(lrelu(0.2)(Conv(3,1,c)(x))), then LeakyReLU(0.2)."""

    features: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        y = Conv(self.features, 3, 1, name="conv1", **kw)(x)
        y = Conv(self.features, 3, 1, name="conv2", **kw)(nn.leaky_relu(y, 0.2))
        return nn.leaky_relu(x.astype(y.dtype) + y, 0.2)
