"""First Order Motion Model (Siarohin et al., NeurIPS 2019) in Flax: keypoints with local affine
Jacobians, a dense motion network with an occlusion map, and a generator that warps the source's
features.

Coordinates. A point is (x, y) in [-1, 1] with align_corners semantics, as the paper's code (torch
`grid_sample` before 1.3): -1 and +1 are the *centres* of the first and last pixel, so pixel column i of
a W-wide image sits at x = 2 i / (W - 1) - 1. `warp(image, grid)` samples bilinearly at such points
(zeros outside, or reflection); `identity_grid(h, w)` is the grid that reproduces the image.

    kp = model.apply(v, image, method=FOMM.keypoints)          # {"value" (B,K,2), "jacobian" (B,K,2,2)}
    out = model.apply(v, source, kp_source, kp_driving, method=FOMM.animate)
    # {"prediction", "occlusion", "deformation", "mask"}

Differences from the paper's code, all for a functional train state: GroupNorm replaces BatchNorm
(no running statistics to carry; the same at training and inference), and heatmaps of the keypoint
detector are computed with "VALID" 7x7 convolutions as its vox-256 config (pad 0).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict

Array = jax.Array
Dtype = Any

# ----------------------------------------------------------------------------- geometry


def identity_grid(height: int, width: int) -> Array:
    """(H, W, 2) float32: (x, y) of every pixel centre in [-1, 1] (align_corners)."""
    xs = jnp.linspace(-1.0, 1.0, width) if width > 1 else jnp.zeros((1,))
    ys = jnp.linspace(-1.0, 1.0, height) if height > 1 else jnp.zeros((1,))
    return jnp.stack(jnp.meshgrid(xs, ys, indexing="xy"), axis=-1).astype(jnp.float32)


def _reflect(coord: Array, size: int) -> Array:
    """Pixel coordinates folded back into [0, size - 1] (reflection about the edge pixels' centres)."""
    if size == 1:
        return jnp.zeros_like(coord)
    period = 2.0 * (size - 1)
    coord = jnp.abs(jnp.mod(coord, period))
    return jnp.where(coord > size - 1, period - coord, coord)


def warp(image: Array, grid: Array, padding: str = "zeros") -> Array:
    """Bilinear sampling of `image` (B, H, W, C) at `grid` (B, h, w, 2) (x, y) in [-1, 1], as torch's
    `grid_sample(..., align_corners=True)`: (B, h, w, C). padding: "zeros" (the four neighbours
    outside the image count as 0) or "reflection". Differentiable in both arguments."""
    _, height, width, _ = image.shape
    x = (grid[..., 0] + 1.0) * 0.5 * (width - 1)
    y = (grid[..., 1] + 1.0) * 0.5 * (height - 1)
    if padding == "reflection":
        x, y = _reflect(x, width), _reflect(y, height)
    elif padding != "zeros":
        raise ValueError(f"padding {padding!r}: use 'zeros' or 'reflection'")
    x0, y0 = jnp.floor(x), jnp.floor(y)
    wx, wy = x - x0, y - y0
    x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)

    def tap(img, xi, yi):  # one image (H, W, C), integer coordinates (h, w): values, 0 outside
        inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
        values = img[jnp.clip(yi, 0, height - 1), jnp.clip(xi, 0, width - 1)]
        return values * inside[..., None].astype(img.dtype)

    def one(img, x0, y0, wx, wy):
        wx, wy = wx[..., None].astype(img.dtype), wy[..., None].astype(img.dtype)
        top = tap(img, x0, y0) * (1 - wx) + tap(img, x0 + 1, y0) * wx
        bottom = tap(img, x0, y0 + 1) * (1 - wx) + tap(img, x0 + 1, y0 + 1) * wx
        return top * (1 - wy) + bottom * wy

    return jax.vmap(one)(image, x0, y0, wx, wy)


def gaussian_blur_kernel(scale: float) -> np.ndarray | None:
    """The anti-aliasing Gaussian of a downscale by `scale` (the paper's AntiAliasInterpolation2d)."""
    if scale == 1:
        return None
    sigma = (1 / scale - 1) / 2
    size = 2 * round(sigma * 4) + 1
    xs = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(xs ** 2) / (2 * sigma ** 2))
    kernel = np.outer(g, g)
    return (kernel / kernel.sum()).astype(np.float32)


def downsample(image: Array, scale: float) -> Array:
    """`image` (B, H, W, C) blurred and subsampled by 1/scale (an integer), as AntiAliasInterpolation2d."""
    kernel = gaussian_blur_kernel(scale)
    if kernel is None:
        return image
    step = int(round(1 / scale))
    channels, size = image.shape[-1], kernel.shape[0]
    pad = (size - 1) // 2
    weights = jnp.tile(jnp.asarray(kernel)[:, :, None, None], (1, 1, 1, channels)).astype(image.dtype)
    blurred = jax.lax.conv_general_dilated(image, weights, (1, 1), ((pad, pad), (pad, pad)),
                                           dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels)
    return blurred[:, ::step, ::step]


def kp_to_gaussian(kp: Array, height: int, width: int, variance: float) -> Array:
    """(B, H, W, K) Gaussians of std sqrt(variance) (in [-1, 1] units) around keypoints (B, K, 2)."""
    grid = identity_grid(height, width)
    d = grid[None, :, :, None, :] - kp[:, None, None, :, :]
    return jnp.exp(-0.5 * jnp.sum(d ** 2, -1) / variance)


def sparse_motions(kp_source: dict, kp_driving: dict, height: int, width: int) -> Array:
    """(B, K + 1, H, W, 2): where each driving-frame pixel comes from in the source, per keypoint (the
    first-order expansion T(z) = kp_s + J_s J_d^-1 (z - kp_d)) and for the background (identity)."""
    grid = identity_grid(height, width)
    batch = kp_source["value"].shape[0]
    jacobian = kp_source["jacobian"] @ jnp.linalg.inv(kp_driving["jacobian"])     # (B, K, 2, 2)
    z = grid[None, None] - kp_driving["value"][:, :, None, None, :]                 # (B, K, H, W, 2)
    moved = jnp.einsum("bkij,bkhwj->bkhwi", jacobian, z) + kp_source["value"][:, :, None, None, :]
    background = jnp.broadcast_to(grid[None, None], (batch, 1, height, width, 2))
    return jnp.concatenate([background, moved], axis=1)


# ----------------------------------------------------------------------------- blocks


def _norm(channels: int, dtype: Dtype, name: str | None = None) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=math.gcd(channels, 8), dtype=dtype, name=name)


class ConvNormRelu(nn.Module):
    features: int
    kernel: int = 3
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = nn.Conv(self.features, (self.kernel, self.kernel), padding="SAME", dtype=self.dtype)(x)
        return nn.relu(_norm(self.features, self.dtype)(x))


class DownBlock(nn.Module):
    features: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        return nn.avg_pool(ConvNormRelu(self.features, dtype=self.dtype)(x), (2, 2), (2, 2))


class UpBlock(nn.Module):
    features: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        b, h, w, c = x.shape
        x = jax.image.resize(x, (b, 2 * h, 2 * w, c), "nearest")
        return ConvNormRelu(self.features, dtype=self.dtype)(x)


class ResBlock(nn.Module):
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        c = x.shape[-1]
        y = nn.Conv(c, (3, 3), padding="SAME", dtype=self.dtype)(nn.relu(_norm(c, self.dtype)(x)))
        y = nn.Conv(c, (3, 3), padding="SAME", dtype=self.dtype)(nn.relu(_norm(c, self.dtype)(y)))
        return x + y


class Hourglass(nn.Module):
    """U-Net-like encoder/decoder; the output has block_expansion + input channels."""

    block_expansion: int
    max_features: int
    num_blocks: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        width = lambda i: min(self.max_features, self.block_expansion * 2 ** i)  # noqa: E731
        skips = [x]
        for i in range(self.num_blocks):
            skips.append(DownBlock(width(i + 1), self.dtype, name=f"down{i}")(skips[-1]))
        out = skips.pop()
        for i in reversed(range(self.num_blocks)):
            out = UpBlock(width(i), self.dtype, name=f"up{i}")(out)
            out = jnp.concatenate([out, skips.pop()], axis=-1)
        return out


# ----------------------------------------------------------------------------- the three networks


class KeypointDetector(nn.Module):
    """Image (B, H, W, 3) in [0, 1] -> keypoints {"value" (B, K, 2) in [-1, 1], "jacobian" (B, K, 2, 2)}:
    soft-argmax of per-keypoint heatmaps (softmax with `temperature`), Jacobians as heatmap-weighted
    averages of a 4K-channel map initialised to the identity."""

    num_kp: int = 10
    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    scale: float = 0.25
    temperature: float = 0.1
    estimate_jacobian: bool = True
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, image: Array) -> dict:
        x = downsample(image.astype(jnp.float32), self.scale).astype(self.dtype)
        features = Hourglass(self.block_expansion, self.max_features, self.num_blocks, self.dtype,
                             name="predictor")(x)
        logits = nn.Conv(self.num_kp, (7, 7), padding="VALID", dtype=self.dtype, name="kp")(features)
        b, h, w, k = logits.shape
        heatmap = jax.nn.softmax(logits.astype(jnp.float32).reshape(b, h * w, k) / self.temperature, axis=1)
        heatmap = heatmap.reshape(b, h, w, k)
        value = jnp.einsum("bhwk,hwi->bki", heatmap, identity_grid(h, w))
        out = {"value": value, "heatmap": heatmap}
        if self.estimate_jacobian:
            bias = lambda *_: jnp.tile(jnp.array([1.0, 0.0, 0.0, 1.0], jnp.float32), self.num_kp)  # noqa: E731
            jmap = nn.Conv(4 * self.num_kp, (7, 7), padding="VALID", dtype=self.dtype,
                           kernel_init=nn.initializers.zeros, bias_init=bias, name="jacobian")(features)
            jmap = jmap.astype(jnp.float32).reshape(b, h, w, self.num_kp, 4)
            out["jacobian"] = jnp.einsum("bhwk,bhwkj->bkj", heatmap, jmap).reshape(b, self.num_kp, 2, 2)
        else:
            out["jacobian"] = jnp.broadcast_to(jnp.eye(2, dtype=jnp.float32), (b, self.num_kp, 2, 2))
        return out


class DenseMotion(nn.Module):
    """Source (B, H, W, 3) and both keypoint sets -> the dense backward flow {"deformation" (B, h, w, 2)},
    the per-keypoint mask {"mask" (B, h, w, K+1)} and {"occlusion" (B, h, w, 1)} at `scale`."""

    block_expansion: int = 64
    max_features: int = 1024
    num_blocks: int = 5
    scale: float = 0.25
    kp_variance: float = 0.01
    occlusion: bool = True
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, source: Array, kp_driving: dict, kp_source: dict) -> dict:
        source = downsample(source.astype(jnp.float32), self.scale)
        b, h, w, _ = source.shape
        heat = kp_to_gaussian(kp_driving["value"], h, w, self.kp_variance) - \
            kp_to_gaussian(kp_source["value"], h, w, self.kp_variance)
        heat = jnp.concatenate([jnp.zeros((b, h, w, 1), heat.dtype), heat], axis=-1)              # (B, h, w, K+1)
        motions = sparse_motions(kp_source, kp_driving, h, w)                                       # (B, K+1, h, w, 2)
        k1 = motions.shape[1]
        deformed = warp(jnp.repeat(source, k1, axis=0), motions.reshape(b * k1, h, w, 2))
        deformed = deformed.reshape(b, k1, h, w, 3).transpose(0, 2, 3, 1, 4)                       # (B, h, w, K+1, 3)
        x = jnp.concatenate([heat[..., None], deformed], axis=-1).reshape(b, h, w, k1 * 4)
        features = Hourglass(self.block_expansion, self.max_features, self.num_blocks, self.dtype,
                             name="hourglass")(x.astype(self.dtype))
        mask = nn.Conv(k1, (7, 7), padding="SAME", dtype=self.dtype, name="mask")(features)
        mask = jax.nn.softmax(mask.astype(jnp.float32), axis=-1)
        deformation = jnp.einsum("bhwk,bkhwi->bhwi", mask, motions)
        out = {"deformation": deformation, "mask": mask}
        if self.occlusion:
            occ = nn.Conv(1, (7, 7), padding="SAME", dtype=self.dtype, name="occlusion")(features)
            out["occlusion"] = jax.nn.sigmoid(occ.astype(jnp.float32))
        return out


class OcclusionAwareGenerator(nn.Module):
    """Source image and keypoints -> the source redrawn in the driving pose: encode the source,
    warp its features by the dense flow, multiply by the occlusion map, decode (sigmoid, [0, 1]).

    image_skip (not in the paper; configs/animate.py:tiny): the decoder also draws a blend map, and the
    prediction is blend * (the source warped by the same flow, at full resolution) + (1 - blend) *
    the decoded image, so a small network trained briefly keeps the source's detail where it only moves
    and paints where it must (occluded or new pixels)."""

    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    num_bottleneck_blocks: int = 6
    dense_motion: FrozenDict | None = None  # DenseMotion's fields (a FrozenDict: modules are hashed)
    image_skip: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, source: Array, kp_driving: dict, kp_source: dict) -> dict:
        width = lambda i: min(self.max_features, self.block_expansion * 2 ** i)  # noqa: E731
        x = ConvNormRelu(self.block_expansion, 7, self.dtype, name="first")(source.astype(self.dtype))
        for i in range(self.num_down_blocks):
            x = DownBlock(width(i + 1), self.dtype, name=f"down{i}")(x)
        motion = DenseMotion(**(self.dense_motion or {}), dtype=self.dtype, name="dense_motion")(
            source, kp_driving, kp_source)
        b, h, w, c = x.shape
        deformation = motion["deformation"]
        if deformation.shape[1:3] != (h, w):
            deformation = jax.image.resize(deformation, (b, h, w, 2), "bilinear")
        x = warp(x.astype(jnp.float32), deformation).astype(self.dtype)
        occlusion = motion.get("occlusion")
        if occlusion is not None:
            if occlusion.shape[1:3] != (h, w):
                occlusion = jax.image.resize(occlusion, (b, h, w, 1), "bilinear")
            x = x * occlusion.astype(self.dtype)
        for i in range(self.num_bottleneck_blocks):
            x = ResBlock(self.dtype, name=f"bottleneck{i}")(x)
        for i in range(self.num_down_blocks):
            x = UpBlock(width(self.num_down_blocks - i - 1), self.dtype, name=f"up{i}")(x)
        x = nn.Conv(4 if self.image_skip else 3, (7, 7), padding="SAME", dtype=self.dtype, name="final")(x)
        prediction = jax.nn.sigmoid(x.astype(jnp.float32))
        if self.image_skip:
            full = jax.image.resize(motion["deformation"], (b, *source.shape[1:3], 2), "bilinear")
            warped = warp(source.astype(jnp.float32), full)
            blend = prediction[..., 3:]
            prediction = blend * warped + (1 - blend) * prediction[..., :3]
        out = {"prediction": prediction, "deformation": motion["deformation"], "mask": motion["mask"]}
        if occlusion is not None:
            out["occlusion"] = motion["occlusion"]
        return out


class FOMM(nn.Module):
    """The keypoint detector and the generator as one module (one parameter tree, one checkpoint).

    `__call__(source, driving)` reconstructs `driving` from `source` (training); `keypoints` and
    `animate` are the two halves, for inference with keypoints computed once per frame."""

    keypoints_cfg: FrozenDict  # KeypointDetector's fields
    generator_cfg: FrozenDict  # OcclusionAwareGenerator's fields
    dtype: Dtype = jnp.float32

    def setup(self):
        self.kp_detector = KeypointDetector(**self.keypoints_cfg, dtype=self.dtype)
        self.generator = OcclusionAwareGenerator(**self.generator_cfg, dtype=self.dtype)

    def keypoints(self, image: Array) -> dict:
        return self.kp_detector(image)

    def animate(self, source: Array, kp_source: dict, kp_driving: dict) -> dict:
        return self.generator(source, kp_driving, kp_source)

    def __call__(self, source: Array, driving: Array) -> dict:
        kp_source, kp_driving = self.kp_detector(source), self.kp_detector(driving)
        return {**self.generator(source, kp_driving, kp_source), "kp_source": kp_source, "kp_driving": kp_driving}


def fomm_from_config(model) -> FOMM:
    """The FOMM of a config's `model` section (configs/animate.py)."""
    kp, gen, dm = model.keypoints, model.generator, model.dense_motion
    keypoints = dict(num_kp=model.num_kp, block_expansion=kp.block_expansion, max_features=kp.max_features,
                     num_blocks=kp.num_blocks, scale=kp.scale, temperature=kp.temperature,
                     estimate_jacobian=model.estimate_jacobian)
    dense = dict(block_expansion=dm.block_expansion, max_features=dm.max_features, num_blocks=dm.num_blocks,
                 scale=dm.scale, kp_variance=dm.kp_variance, occlusion=gen.occlusion)
    generator = dict(block_expansion=gen.block_expansion, max_features=gen.max_features,
                     num_down_blocks=gen.num_down_blocks, num_bottleneck_blocks=gen.num_bottleneck_blocks,
                     dense_motion=FrozenDict(dense), image_skip=bool(gen.get("image_skip", False)))
    return FOMM(FrozenDict(keypoints), FrozenDict(generator), jnp.dtype(model.dtype))


# ----------------------------------------------------------------------------- equivariance transform


def random_tps(key: Array, batch: int, sigma_affine: float, sigma_tps: float, points_tps: int) -> dict:
    """Parameters of a random affine + thin-plate-spline warp per batch item (the paper's Transform)."""
    k_a, k_t = jax.random.split(key)
    theta = jnp.eye(2, 3, dtype=jnp.float32)[None] + sigma_affine * jax.random.normal(k_a, (batch, 2, 3))
    control = identity_grid(points_tps, points_tps).reshape(-1, 2)
    params = sigma_tps * jax.random.normal(k_t, (batch, points_tps ** 2))
    return {"theta": theta, "control": control, "params": params}


def tps_points(tps: dict, points: Array) -> Array:
    """Points (B, N, 2) moved by the warps `tps` (coordinates of the transformed frame -> original)."""
    theta = tps["theta"]
    moved = jnp.einsum("bij,bnj->bni", theta[:, :, :2], points) + theta[:, None, :, 2]
    distances = jnp.sum(jnp.abs(points[:, :, None, :] - tps["control"][None, None]), -1)  # (B, N, P)
    radial = distances ** 2 * jnp.log(distances + 1e-6)
    return moved + jnp.sum(radial * tps["params"][:, None, :], -1, keepdims=True)


def tps_jacobian(tps: dict, points: Array) -> Array:
    """(B, N, 2, 2) d tps_points / d points at `points` (B, N, 2): two forward-mode derivatives (each
    point moves on its own, so a tangent of ones along x or y gives one column for every point)."""
    f = lambda p: tps_points(tps, p)  # noqa: E731
    columns = [jax.jvp(f, (points,), (jnp.zeros_like(points).at[..., i].set(1.0),))[1] for i in range(2)]
    return jnp.stack(columns, axis=-1)


def tps_frame(tps: dict, frames: Array) -> Array:
    """`frames` (B, H, W, C) resampled through the warps (reflection padding, as the paper)."""
    b, h, w, _ = frames.shape
    grid = jnp.broadcast_to(identity_grid(h, w).reshape(1, h * w, 2), (b, h * w, 2))
    return warp(frames, tps_points(tps, grid).reshape(b, h, w, 2), padding="reflection")


# ----------------------------------------------------------------------------- discriminator


class Discriminator(nn.Module):
    """One scale of the paper's discriminator: strided blocks (4x4 conv, instance norm after the
    first, LeakyReLU 0.2, 2x2 average pool but after the last), a 1x1 conv to a logit map. Returns
    (feature maps, logits) for feature matching."""

    block_expansion: int = 32
    max_features: int = 512
    num_blocks: int = 4
    spectral_norm: bool = True
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, update_stats: bool | None = None) -> tuple[list[Array], Array]:
        if update_stats is None:
            update_stats = self.is_mutable_collection("batch_stats")

        def conv(y, features, kernel, name):
            layer = nn.Conv(features, (kernel, kernel), padding="VALID", dtype=self.dtype, name=name)
            if self.spectral_norm:
                return nn.SpectralNorm(layer, name=f"{name}_sn")(y, update_stats=update_stats)
            return layer(y)

        features = []
        x = x.astype(self.dtype)
        for i in range(self.num_blocks):
            x = conv(x, min(self.max_features, self.block_expansion * 2 ** (i + 1)), 4, f"conv{i}")
            if i > 0:
                x = nn.InstanceNorm(use_scale=True, use_bias=True, dtype=self.dtype, name=f"norm{i}")(x)
            x = nn.leaky_relu(x, 0.2)
            if i != self.num_blocks - 1:
                x = nn.avg_pool(x, (2, 2), (2, 2))
            features.append(x.astype(jnp.float32))
        return features, conv(x, 1, 1, "logits").astype(jnp.float32)


class MultiScaleDiscriminator(nn.Module):
    """A Discriminator per scale of an image pyramid: {scale: (features, logits)}."""

    scales: Sequence[float] = (1.0,)
    block_expansion: int = 32
    max_features: int = 512
    num_blocks: int = 4
    spectral_norm: bool = True
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, image: Array, update_stats: bool | None = None) -> dict:
        out = {}
        for scale in self.scales:
            name = f"disc_{str(scale).replace('.', '_')}"
            out[str(scale)] = Discriminator(self.block_expansion, self.max_features, self.num_blocks,
                                            self.spectral_norm, self.dtype, name=name)(
                downsample(image, scale), update_stats)
        return out


# ----------------------------------------------------------------------------- VGG19 for the perceptual loss

VGG19_CONVS = (("conv1_1", 3, 64), ("conv1_2", 64, 64), ("conv2_1", 64, 128), ("conv2_2", 128, 128),
               ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256),
               ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512), ("conv4_4", 512, 512),
               ("conv5_1", 512, 512))
_TORCHVISION_VGG19 = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)  # features.N of each conv above
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


class VGG19(nn.Module):
    """VGG19 up to relu5_1 (the paper's perceptual network): images (B, H, W, 3) in [0, 1] ->
    [relu1_1, relu2_1, relu3_1, relu4_1, relu5_1]. `widths` are the 13 convolutions' output channels
    (VGG19's by default; `load_vgg19` reads them from the file). Pools pad ("SAME"), so small pyramid
    levels work."""

    widths: tuple[int, ...] = tuple(c for _, _, c in VGG19_CONVS)

    @nn.compact
    def __call__(self, x: Array) -> list[Array]:
        x = (x.astype(jnp.float32) - _IMAGENET_MEAN) / _IMAGENET_STD
        out = []
        for (name, _, _), features in zip(VGG19_CONVS, self.widths):
            if name.endswith("_1") and name != "conv1_1":
                x = nn.max_pool(x, (2, 2), (2, 2), padding="SAME")
            x = nn.relu(nn.Conv(features, (3, 3), padding="SAME", name=name)(x))
            if name.endswith("_1"):
                out.append(x)
        return out


def load_vgg19(path) -> tuple[VGG19, dict]:
    """(module, parameters) of VGG19 from a local .npz (never a download, never pickle): Keras-style names
    ("conv1_1/kernel" HWIO, "conv1_1/bias") or torchvision's state dict ("features.0.weight" OIHW, ...),
    conv1_1 .. conv5_1. The widths come from the file (VGG19's are 64 .. 512; a test may write a narrow
    one). A ValueError names the file and the first missing or misshapen layer."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file() or path.suffix.lower() != ".npz":
        raise ValueError(f"VGG19 weights file {path} is not an .npz file")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"VGG19 weights file {path} is not readable ({exc.__class__.__name__})") from None
    params, widths, cin = {}, [], 3
    for (name, _, _), index in zip(VGG19_CONVS, _TORCHVISION_VGG19):
        kernel, bias = data.get(f"{name}/kernel"), data.get(f"{name}/bias")
        if kernel is None and f"features.{index}.weight" in data:
            kernel = np.transpose(data[f"features.{index}.weight"], (2, 3, 1, 0))
            bias = data.get(f"features.{index}.bias")
        if kernel is None or bias is None or kernel.ndim != 4 or kernel.shape[:3] != (3, 3, cin) \
                or bias.shape != kernel.shape[3:]:
            raise ValueError(f"VGG19 weights file {path} has no (3, 3, {cin}, N) kernel and (N,) bias for layer {name}")
        params[name] = {"kernel": jnp.asarray(kernel, jnp.float32), "bias": jnp.asarray(bias, jnp.float32)}
        cin = kernel.shape[3]
        widths.append(int(cin))
    return VGG19(tuple(widths)), params
