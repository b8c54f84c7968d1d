"""Losses for training the generators: pixel, structural, frequency, perceptual (feature, style), total
variation and GAN.

Every loss is a pure, jittable function of float32 NHWC images in [0, 1] (masks and weight maps
NHW1) that returns a scalar averaged over the batch. Image losses are registered by name in
`IMAGE_LOSSES` (`@IMAGE_LOSSES.register("l1")`); a config weighs each by `loss.<name>` and
`reconstruction` sums those with a non-zero weight. GAN objectives are registered in `GAN_OBJECTIVES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import flax.linen as nn
import numpy as np

from dfjax.registry import Registry

Array = jax.Array

IMAGE_LOSSES = Registry("image loss")        # (prediction, target, weight map) -> scalar
GAN_OBJECTIVES = Registry("GAN objective")   # (d_loss, g_loss) pairs

# ----------------------------------------------------------------------------- pixel losses


@IMAGE_LOSSES.register("l1")
def l1(a: Array, b: Array, weight: Array | None = None) -> Array:
    """Mean absolute error; `weight` (NHW1, e.g. eye and mouth priority maps) scales each pixel's error."""
    err = jnp.abs(a - b)
    return jnp.mean(err if weight is None else err * weight)


@IMAGE_LOSSES.register("mse")
def mse(a: Array, b: Array, weight: Array | None = None) -> Array:
    """Mean squared error; `weight` (NHW1) scales each pixel's error."""
    err = jnp.square(a - b)
    return jnp.mean(err if weight is None else err * weight)


def mask_loss(pred_mask: Array, target_mask: Array) -> Array:
    """The learned mask's loss, MSE as in faceswap."""
    return mse(pred_mask, target_mask)


# ----------------------------------------------------------------------------- SSIM, MS-SSIM
# Wang et al. 2004 / 2003 with a Gaussian window (11 taps, sigma 1.5), K1 = 0.01, K2 = 0.03, "valid"
# filtering (no padding), averaged over pixels and channels: the same numbers as TensorFlow's
# tf.image.ssim and skimage's structural_similarity(gaussian_weights=True, sigma=1.5,
# use_sample_covariance=False). A window wider than the image is cut to the image.

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _gaussian_filter(x: Array, size: int, sigma: float) -> Array:
    """Separable Gaussian blur of each channel of an NHWC batch, "valid" region only."""
    t = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
    g = jnp.exp(-0.5 * jnp.square(t / sigma))
    g = g / jnp.sum(g)
    b, h, w, c = x.shape
    y = x.transpose(0, 3, 1, 2).reshape(b * c, h, w, 1)
    dn = ("NHWC", "HWIO", "NHWC")
    y = jax.lax.conv_general_dilated(y, g.reshape(size, 1, 1, 1), (1, 1), "VALID", dimension_numbers=dn)
    y = jax.lax.conv_general_dilated(y, g.reshape(1, size, 1, 1), (1, 1), "VALID", dimension_numbers=dn)
    return y.reshape(b, c, *y.shape[1:3]).transpose(0, 2, 3, 1)


def _ssim_and_cs(a: Array, b: Array, max_val: float, filter_size: int, filter_sigma: float,
                 k1: float, k2: float) -> tuple[Array, Array]:
    """Per-image mean SSIM and mean contrast-structure term, each (B,)."""
    a, b = a.astype(jnp.float32), b.astype(jnp.float32)
    size = min(filter_size, a.shape[1], a.shape[2])
    f = lambda x: _gaussian_filter(x, size, filter_sigma)  # noqa: E731
    mu_a, mu_b = f(a), f(b)
    var_a = f(a * a) - mu_a * mu_a
    var_b = f(b * b) - mu_b * mu_b
    cov = f(a * b) - mu_a * mu_b
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    cs = (2 * cov + c2) / (var_a + var_b + c2)
    luminance = (2 * mu_a * mu_b + c1) / (mu_a * mu_a + mu_b * mu_b + c1)
    return jnp.mean(luminance * cs, axis=(1, 2, 3)), jnp.mean(cs, axis=(1, 2, 3))


def ssim(a: Array, b: Array, max_val: float = 1.0, filter_size: int = 11, filter_sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> Array:
    """Structural similarity of each image pair, shape (B,); 1 for identical images."""
    return _ssim_and_cs(a, b, max_val, filter_size, filter_sigma, k1, k2)[0]


def ssim_loss(a: Array, b: Array, max_val: float = 1.0) -> Array:
    """1 - SSIM, averaged over the batch."""
    return 1.0 - jnp.mean(ssim(a, b, max_val))


def ms_ssim_scales(size: int, filter_size: int = 11) -> int:
    """How many MS-SSIM scales an image of `size` px supports: up to 5, while the coarsest is
    still at least `filter_size` px (64 px -> 3, 128 -> 4, 256 -> 5)."""
    n = 1
    while n < len(MS_SSIM_WEIGHTS) and size // 2 ** n >= filter_size:
        n += 1
    return n


def _halve(x: Array) -> Array:
    """2x2 average pooling (an odd last row or column is dropped)."""
    b, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def ms_ssim(a: Array, b: Array, max_val: float = 1.0, scales: int | None = None) -> Array:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003) of each image pair, shape (B,).

    The product over scales of the contrast-structure term, with the full SSIM at the coarsest
    scale, each raised to Wang's weights. Images too small for five scales use the first
    `ms_ssim_scales(size)` (or `scales`) weights renormalised to sum to 1, so the value stays in
    [0, 1] and is 1 for identical images. Terms are clipped at 1e-6 so gradients stay finite.
    """
    n = scales or ms_ssim_scales(min(a.shape[1], a.shape[2]))
    w = jnp.asarray(MS_SSIM_WEIGHTS[:n], jnp.float32)
    w = w / jnp.sum(w)
    terms = []
    for i in range(n):
        s, cs = _ssim_and_cs(a, b, max_val, 11, 1.5, 0.01, 0.03)
        terms.append(s if i == n - 1 else cs)
        if i < n - 1:
            a, b = _halve(a), _halve(b)
    terms = jnp.maximum(jnp.stack(terms, axis=-1), 1e-6)
    return jnp.prod(terms ** w, axis=-1)


def ms_ssim_loss(a: Array, b: Array, max_val: float = 1.0) -> Array:
    """1 - MS-SSIM, averaged over the batch; the number of scales follows the image size."""
    return 1.0 - jnp.mean(ms_ssim(a, b, max_val))


# ----------------------------------------------------------------------------- focal frequency


def focal_frequency_loss(a: Array, b: Array, alpha: float = 1.0) -> Array:
    """Focal frequency loss (Jiang et al. 2021, ICCV).

    Squared distance between the orthonormal 2-D spectra of each channel, weighted per frequency
    by |difference|^alpha divided by its maximum over the image's spectrum (per image and channel),
    with the weight held constant for the gradient: the frequencies the generator gets most wrong
    count most. 0 for identical images.
    """
    fa = jnp.fft.fft2(a.astype(jnp.float32), axes=(1, 2), norm="ortho")
    fb = jnp.fft.fft2(b.astype(jnp.float32), axes=(1, 2), norm="ortho")
    dist = jnp.square(jnp.abs(fa - fb))
    w = jnp.sqrt(dist) ** alpha
    peak = jnp.max(w, axis=(1, 2), keepdims=True)
    w = jax.lax.stop_gradient(jnp.clip(jnp.where(peak > 0, w / jnp.where(peak > 0, peak, 1.0), 0.0), 0, 1))
    return jnp.mean(w * dist)


# ----------------------------------------------------------------------------- GAN objectives


def hinge_d(real_logits: Array, fake_logits: Array) -> Array:
    """Discriminator hinge loss: E[relu(1 - D(real))] + E[relu(1 + D(fake))]."""
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hinge_g(fake_logits: Array) -> Array:
    """Generator hinge loss: -E[D(fake)]."""
    return -jnp.mean(fake_logits)


def lsgan_d(real_logits: Array, fake_logits: Array) -> Array:
    """Least-squares GAN (Mao et al. 2017), discriminator: 1/2 E[(D(real) - 1)^2] + 1/2 E[D(fake)^2]."""
    return 0.5 * (jnp.mean(jnp.square(real_logits - 1.0)) + jnp.mean(jnp.square(fake_logits)))


def lsgan_g(fake_logits: Array) -> Array:
    """Least-squares GAN, generator: 1/2 E[(D(fake) - 1)^2]."""
    return 0.5 * jnp.mean(jnp.square(fake_logits - 1.0))


GAN_OBJECTIVES.register("hinge")((hinge_d, hinge_g))
GAN_OBJECTIVES.register("lsgan")((lsgan_d, lsgan_g))


def gan_losses(kind: str) -> tuple[Callable[[Array, Array], Array], Callable[[Array], Array]]:
    """(d_loss(real_logits, fake_logits), g_loss(fake_logits)) of the objective `kind` (a config's
    gan.objective, checked when it was loaded)."""
    if kind not in GAN_OBJECTIVES:
        raise ValueError(f"unknown GAN loss {kind!r}; choose one of {', '.join(GAN_OBJECTIVES.names())}")
    return GAN_OBJECTIVES.get(kind)


@IMAGE_LOSSES.register("ssim")
def _ssim_term(a: Array, b: Array, weight: Array | None = None) -> Array:
    return ssim_loss(a, b)


@IMAGE_LOSSES.register("ms_ssim")
def _ms_ssim_term(a: Array, b: Array, weight: Array | None = None) -> Array:
    return ms_ssim_loss(a, b)


@IMAGE_LOSSES.register("ffl")
def _ffl_term(a: Array, b: Array, weight: Array | None = None) -> Array:
    return focal_frequency_loss(a, b)


def total_variation(x: Array) -> Array:
    """Anisotropic total variation: the mean absolute difference between horizontally and between
    vertically adjacent pixels, summed (per pixel and channel, so the weight does not depend on the
    image size), averaged over the batch: 0 for a flat image, 2 for a one-pixel checkerboard of 0 and 1."""
    x = x.astype(jnp.float32)
    return jnp.mean(jnp.abs(x[:, 1:] - x[:, :-1])) + jnp.mean(jnp.abs(x[:, :, 1:] - x[:, :, :-1]))


@IMAGE_LOSSES.register("tv")
def _tv_term(a: Array, b: Array, weight: Array | None = None) -> Array:
    """Total variation of the generated face (a smoothness prior: the target is not used)."""
    return total_variation(a)


def reconstruction(config, face: Array, target: Array, maps: Array, vgg=None, vgg_params=None) -> Array:
    """The weighted sum of the image losses the config turns on (`loss.<name>` > 0) and the VGG16
    feature (`loss.perceptual`) and style (`loss.style`) terms, which share one pass of VGG16 over each
    image. Pixel losses weigh eye and mouth regions by `data.eye_weight` / `data.mouth_weight`
    and, as faceswap's penalised mask loss, pixels outside the face mask by `loss.outside_mask_weight`."""
    mask = maps[..., :1]
    weights = (1.0 + (config.data.eye_weight - 1.0) * maps[..., 1:2] + (config.data.mouth_weight - 1.0) * maps[..., 2:3])
    weights = weights * (config.loss.outside_mask_weight + (1.0 - config.loss.outside_mask_weight) * mask)
    total = 0.0
    feature_weight, style_weight = config.loss.get("perceptual", 0.0), config.loss.get("style", 0.0)
    if vgg is not None and (feature_weight or style_weight):
        fa, fb = vgg.apply({"params": vgg_params}, face), vgg.apply({"params": vgg_params}, target)
        if feature_weight:
            total += feature_weight * perceptual_loss(fa, fb)
        if style_weight:
            total += style_weight * style_loss(fa, fb)
    for name, loss in IMAGE_LOSSES.items():
        if config.loss.get(name, 0.0):
            total += config.loss[name] * loss(face, target, weights)
    return total


# ----------------------------------------------------------------------------- VGG16 perceptual
# Parameters are named like Keras' VGG16 ("block1_conv1" ... "block5_conv3", each with a HWIO
# "kernel" and a "bias"). Weights come only from a file the user names; nothing is downloaded.

VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
VGG16_CONVS = tuple(f"block{b + 1}_conv{i + 1}" for b, (_, n) in enumerate(VGG16_BLOCKS) for i in range(n))
VGG16_FEATURES = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")
# torchvision's vgg16().features indices of the 13 convolutions, in order
_TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
# pix2pixHD's VGG loss weights
DEFAULT_LAYER_WEIGHTS = {"conv1_2": 1 / 32, "conv2_2": 1 / 16, "conv3_3": 1 / 8, "conv4_3": 1 / 4,
                         "conv5_3": 1.0}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def _vgg16_shapes() -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    shapes, cin = {}, 3
    for b, (c, n) in enumerate(VGG16_BLOCKS):
        for i in range(n):
            shapes[f"block{b + 1}_conv{i + 1}"] = ((3, 3, cin, c), (c,))
            cin = c
    return shapes


class PerceptualVGG16(nn.Module):
    """VGG16's conv features after ReLU: {"conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3"}.

    Input RGB NHWC in [0, 1]. `preprocess` must match the weights: "torch" (torchvision: ImageNet
    mean/std on [0, 1] RGB) or "caffe" (Keras' file: BGR, 0-255, mean subtracted);
    `load_vgg16_weights` says which. Only the layers up to the deepest in `features` run. Keep its
    parameters out of the optimizer: they are a fixed measuring instrument.
    """

    preprocess: str = "torch"
    features: tuple[str, ...] = VGG16_FEATURES
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> dict[str, Array]:
        x = x.astype(jnp.float32)
        if self.preprocess == "torch":
            x = (x - jnp.asarray(_IMAGENET_MEAN)) / jnp.asarray(_IMAGENET_STD)
        elif self.preprocess == "caffe":
            x = x[..., ::-1] * 255.0 - jnp.asarray(_CAFFE_MEAN_BGR)
        else:
            raise ValueError(f"preprocess must be 'torch' or 'caffe', got {self.preprocess!r}")
        x = x.astype(self.dtype)
        deepest = max(VGG16_FEATURES.index(f) for f in self.features)
        out = {}
        for b, (c, n) in enumerate(VGG16_BLOCKS[: deepest + 1]):
            if b:
                x = nn.max_pool(x, (2, 2), (2, 2))
            for i in range(n):
                x = nn.relu(nn.Conv(c, (3, 3), padding="SAME", dtype=self.dtype,
                                    param_dtype=self.param_dtype, name=f"block{b + 1}_conv{i + 1}")(x))
            name = VGG16_FEATURES[b]
            if name in self.features:
                out[name] = x
        return out


class VGG16Weights(NamedTuple):
    params: dict            # {"block1_conv1": {"kernel", "bias"}, ...} for PerceptualVGG16
    preprocess: str         # the PerceptualVGG16.preprocess these weights expect


def _read_npz(path: Path) -> tuple[dict[str, tuple[np.ndarray | None, np.ndarray | None]], str]:
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    if any(k.startswith("features.") for k in data):
        raw = {name: (data.get(f"features.{j}.weight"), data.get(f"features.{j}.bias"))
               for name, j in zip(VGG16_CONVS, _TORCHVISION_INDEX)}
        layers = {n: (None if k is None else np.transpose(k, (2, 3, 1, 0)), bias)
                  for n, (k, bias) in raw.items()}
        default = "torch"
    else:
        layers = {n: (data.get(f"{n}/kernel"), data.get(f"{n}/bias")) for n in VGG16_CONVS}
        default = "caffe"
    preprocess = str(data["preprocess"]) if "preprocess" in data else default
    if preprocess not in ("torch", "caffe"):
        raise ValueError(f"VGG16 weights file {path}: preprocess must be 'torch' or 'caffe', got {preprocess!r}")
    return layers, preprocess


def _read_h5(path: Path) -> dict[str, tuple[np.ndarray | None, np.ndarray | None]]:
    import h5py

    layers = {}
    with h5py.File(path, "r") as f:
        # Keras 2 full-model saves nest the weights under model_weights; Keras 3 under layers/
        roots = [f[k] for k in ("model_weights", "layers") if k in f] + [f]
        root = next((r for r in roots if VGG16_CONVS[0] in r), f)
        for name in VGG16_CONVS:
            if name not in root:
                layers[name] = (None, None)
                continue
            arrays: list[np.ndarray] = []
            root[name].visititems(lambda _, o: arrays.append(np.asarray(o)) if isinstance(o, h5py.Dataset) else None)
            kernels = [a for a in arrays if a.ndim == 4]
            biases = [a for a in arrays if a.ndim == 1]
            layers[name] = (kernels[0] if len(kernels) == 1 else None, biases[0] if len(biases) == 1 else None)
    return layers


def load_vgg16_weights(path: str | Path) -> VGG16Weights:
    """Read VGG16 convolution weights for `PerceptualVGG16` from a local file.

    - `.h5`: Keras' vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 (or any Keras save with
      groups block1_conv1 ... block5_conv3, each holding a 4-D kernel and a 1-D bias) -> "caffe".
    - `.npz` with torchvision state-dict names ("features.0.weight", OIHW) -> "torch", or with
      Keras names ("block1_conv1/kernel" HWIO, "block1_conv1/bias") -> "caffe". An optional
      "preprocess" entry overrides the guess.

    Raises ValueError naming the file and the layer when one is missing or has the wrong shape.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"VGG16 weights file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        layers, preprocess = _read_npz(path)
    elif suffix in (".h5", ".hdf5", ".keras"):
        layers, preprocess = _read_h5(path), "caffe"
    else:
        raise ValueError(f"VGG16 weights file {path} must be .npz or .h5")
    params = {}
    for name, (kshape, bshape) in _vgg16_shapes().items():
        kernel, bias = layers[name]
        if kernel is None or bias is None:
            raise ValueError(f"VGG16 weights file {path} has no kernel and bias for layer {name}")
        if kernel.shape != kshape or bias.shape != bshape:
            raise ValueError(f"VGG16 weights file {path}: layer {name} has kernel {kernel.shape} and "
                             f"bias {bias.shape}, expected {kshape} and {bshape}")
        params[name] = {"kernel": jnp.asarray(kernel, jnp.float32), "bias": jnp.asarray(bias, jnp.float32)}
    return VGG16Weights(params, preprocess)


def perceptual_loss(features_a: Mapping[str, Array], features_b: Mapping[str, Array],
                    layer_weights: Mapping[str, float] | None = None) -> Array:
    """Weighted sum over layers of the mean absolute feature difference (pix2pixHD's VGG loss).

    `layer_weights` maps feature names to weights (default `DEFAULT_LAYER_WEIGHTS`); only those
    layers are compared.
    """
    weights = DEFAULT_LAYER_WEIGHTS if layer_weights is None else layer_weights
    total = jnp.float32(0.0)
    for name, w in weights.items():
        fa = features_a[name].astype(jnp.float32)
        fb = features_b[name].astype(jnp.float32)
        total = total + w * jnp.mean(jnp.abs(fa - fb))
    return total


# Johnson, Alahi & Fei-Fei 2016 (after Gatys et al.): style from relu1_2, relu2_2, relu3_3, relu4_3
STYLE_LAYERS = ("conv1_2", "conv2_2", "conv3_3", "conv4_3")


def gram_matrix(features: Array) -> Array:
    """Gram matrices (B, C, C) of feature maps (B, H, W, C), normalised by H * W * C (Johnson et al.)."""
    b, h, w, c = features.shape
    f = features.astype(jnp.float32).reshape(b, h * w, c)
    return jnp.einsum("bnc,bnd->bcd", f, f) / (h * w * c)


def style_loss(features_a: Mapping[str, Array], features_b: Mapping[str, Array],
               layers: tuple[str, ...] = STYLE_LAYERS) -> Array:
    """Sum over `layers` of the squared Frobenius distance between the two images' Gram matrices,
    averaged over the batch: the style reconstruction loss of Johnson et al. 2016. It compares which
    features occur together (texture, sharpness), not where, so it is 0 for images with the same
    feature statistics in different places."""
    total = jnp.float32(0.0)
    for name in layers:
        diff = gram_matrix(features_a[name]) - gram_matrix(features_b[name])
        total = total + jnp.mean(jnp.sum(jnp.square(diff), axis=(1, 2)))
    return total
