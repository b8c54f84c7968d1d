"""Losses: pixel, SSIM / MS-SSIM, eye & mouth weights, focal frequency, GAN, VGG16 weights."""

from __future__ import annotations

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.transform
from skimage.metrics import structural_similarity

from dfjax import losses


@pytest.fixture(scope="module")
def face(astronaut):
    """A 64 px float32 crop of the astronaut's face, batched (1, 64, 64, 3)."""
    crop = skimage.transform.resize(astronaut[:256, 128:384], (64, 64), anti_aliasing=True)
    return crop.astype(np.float32)[None]


def noisy(image, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 1).astype(np.float32)


# ----------------------------------------------------------------------------- pixel


def test_pixel_losses_and_weights():
    a, b = jnp.zeros((2, 4, 4, 3)), jnp.full((2, 4, 4, 3), 0.5)
    assert float(losses.l1(a, b)) == pytest.approx(0.5)
    assert float(losses.mse(a, b)) == pytest.approx(0.25)
    w = jnp.ones((2, 4, 4, 1)).at[:, :2].set(3.0)
    assert float(losses.l1(a, b, w)) == pytest.approx(0.5 * 2.0)
    assert float(losses.mask_loss(a[..., :1], b[..., :1])) == pytest.approx(0.25)


# ----------------------------------------------------------------------------- SSIM


def test_ssim_matches_skimage_and_is_one_for_identical(face):
    rough = noisy(face, 0.1)
    ref = structural_similarity(face[0], rough[0], channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=1.0)
    assert float(losses.ssim(face, rough)[0]) == pytest.approx(ref, abs=1e-4)
    assert float(losses.ssim(face, face)[0]) == pytest.approx(1.0, abs=1e-5)
    assert float(losses.ssim_loss(face, face)) == pytest.approx(0.0, abs=1e-5)
    assert losses.ssim(face, noisy(face, 0.05))[0] > losses.ssim(face, noisy(face, 0.2))[0]


def test_ms_ssim_scales_value_and_gradient(face):
    assert [losses.ms_ssim_scales(s) for s in (16, 32, 64, 128, 256, 512)] == [1, 2, 3, 4, 5, 5]
    assert float(losses.ms_ssim(face, face)[0]) == pytest.approx(1.0, abs=1e-5)
    mild, strong = losses.ms_ssim(face, noisy(face, 0.05))[0], losses.ms_ssim(face, noisy(face, 0.2))[0]
    assert 1.0 > mild > strong > 0.0
    g = jax.jit(jax.grad(losses.ms_ssim_loss))(jnp.asarray(noisy(face, 0.1)), face)
    assert bool(jnp.isfinite(g).all()) and float(jnp.abs(g).max()) > 0
    # one scale is plain SSIM
    np.testing.assert_allclose(losses.ms_ssim(face, noisy(face, 0.1), scales=1),
                               losses.ssim(face, noisy(face, 0.1)), rtol=1e-5)


# ----------------------------------------------------------------------------- eye & mouth priority


def test_focal_frequency_loss(face):
    assert float(losses.focal_frequency_loss(face, face)) == 0.0
    x = np.arange(64)
    grating = 0.1 * np.sin(2 * np.pi * 8 * x / 64)[None, :, None, None] * np.ones((1, 64, 64, 3))
    white = np.random.default_rng(0).normal(0, 1, grating.shape)
    white *= np.sqrt((grating ** 2).sum() / (white ** 2).sum())  # equal energy, equal MSE
    g_err = face + grating.astype(np.float32)
    w_err = face + white.astype(np.float32)
    assert float(losses.mse(g_err, face)) == pytest.approx(float(losses.mse(w_err, face)), rel=1e-4)
    # the error concentrated in one frequency is the "hard" one and counts more
    assert losses.focal_frequency_loss(g_err, face) > 1.5 * losses.focal_frequency_loss(w_err, face) > 0
    g = jax.jit(jax.grad(losses.focal_frequency_loss))(jnp.asarray(w_err), face)
    assert bool(jnp.isfinite(g).all()) and float(jnp.abs(g).max()) > 0


# ----------------------------------------------------------------------------- GAN


def test_gan_objectives():
    real, fake = jnp.array([2.0, 0.5]), jnp.array([-2.0, 0.5])
    assert float(losses.hinge_d(real, fake)) == pytest.approx(0.25 + 0.75)
    assert float(losses.hinge_g(fake)) == pytest.approx(0.75)
    assert float(losses.lsgan_d(real, fake)) == pytest.approx(0.5 * ((1 + 0.25) / 2 + (4 + 0.25) / 2))
    assert float(losses.lsgan_g(fake)) == pytest.approx(0.5 * (9 + 0.25) / 2)
    assert losses.gan_losses("hinge") == (losses.hinge_d, losses.hinge_g)
    assert losses.gan_losses("lsgan") == (losses.lsgan_d, losses.lsgan_g)
    with pytest.raises(ValueError, match="wgan"):
        losses.gan_losses("wgan")


# ----------------------------------------------------------------------------- VGG16


@pytest.fixture(scope="module")
def vgg_arrays():
    """Random HWIO kernels and biases for every VGG16 conv, in Keras naming."""
    rng = np.random.default_rng(1)
    return {name: (rng.standard_normal(k, dtype=np.float32) * 0.05, rng.standard_normal(b, dtype=np.float32))
            for name, (k, b) in losses._vgg16_shapes().items()}


def test_vgg16_npz_keras_and_torchvision_names(tmp_path, vgg_arrays):
    keras = tmp_path / "keras.npz"
    np.savez(keras, **{f"{n}/{p}": a for n, (k, b) in vgg_arrays.items() for p, a in (("kernel", k), ("bias", b))})
    w = losses.load_vgg16_weights(keras)
    assert w.preprocess == "caffe"
    np.testing.assert_array_equal(w.params["block3_conv2"]["kernel"], vgg_arrays["block3_conv2"][0])

    torch_names = {}
    for j, (k, b) in zip((0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28), vgg_arrays.values()):
        torch_names[f"features.{j}.weight"] = np.transpose(k, (3, 2, 0, 1))  # OIHW
        torch_names[f"features.{j}.bias"] = b
    tv = tmp_path / "torchvision.npz"
    np.savez(tv, **torch_names)
    w = losses.load_vgg16_weights(tv)
    assert w.preprocess == "torch"
    np.testing.assert_array_equal(w.params["block5_conv3"]["kernel"], vgg_arrays["block5_conv3"][0])
    np.testing.assert_array_equal(w.params["block1_conv1"]["bias"], vgg_arrays["block1_conv1"][1])

    del torch_names["features.12.weight"]  # block3_conv2
    np.savez(tv, **torch_names)
    with pytest.raises(ValueError, match="block3_conv2"):
        losses.load_vgg16_weights(tv)


def write_keras_h5(path, arrays, skip=()):
    """The layout of Keras' vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 (Keras 2 save_weights)."""
    with h5py.File(path, "w") as f:
        names = ["input_1"] + [n for n in arrays if n not in skip]
        f.attrs["layer_names"] = [n.encode() for n in names]
        f.create_group("input_1").attrs["weight_names"] = []
        for name in names[1:]:
            g = f.create_group(name)
            g.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            g.create_dataset(f"{name}/kernel:0", data=arrays[name][0])
            g.create_dataset(f"{name}/bias:0", data=arrays[name][1])


def test_vgg16_h5_round_trip_and_errors(tmp_path, vgg_arrays):
    good = tmp_path / "vgg16_notop.h5"
    write_keras_h5(good, vgg_arrays)
    w = losses.load_vgg16_weights(good)
    assert w.preprocess == "caffe"
    np.testing.assert_array_equal(w.params["block4_conv1"]["kernel"], vgg_arrays["block4_conv1"][0])

    missing = tmp_path / "missing.h5"
    write_keras_h5(missing, vgg_arrays, skip=("block2_conv2",))
    with pytest.raises(ValueError, match="block2_conv2"):
        losses.load_vgg16_weights(missing)

    wrong = dict(vgg_arrays, block1_conv1=(np.zeros((3, 3, 3, 32), np.float32), np.zeros(32, np.float32)))
    bad = tmp_path / "wrong.h5"
    write_keras_h5(bad, wrong)
    with pytest.raises(ValueError, match="block1_conv1"):
        losses.load_vgg16_weights(bad)
    with pytest.raises(ValueError, match="does not exist"):
        losses.load_vgg16_weights(tmp_path / "nope.h5")


def test_perceptual_vgg16_features_and_loss(tmp_path, vgg_arrays, face):
    good = tmp_path / "vgg16_notop.h5"
    write_keras_h5(good, vgg_arrays)
    w = losses.load_vgg16_weights(good)
    full = losses.PerceptualVGG16(preprocess=w.preprocess)
    shapes = jax.eval_shape(full.apply, {"params": w.params}, jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32))
    assert {k: v.shape[1:] for k, v in shapes.items()} == {
        "conv1_2": (32, 32, 64), "conv2_2": (16, 16, 128), "conv3_3": (8, 8, 256),
        "conv4_3": (4, 4, 512), "conv5_3": (2, 2, 512)}
    shallow = losses.PerceptualVGG16(preprocess=w.preprocess, features=("conv1_2", "conv2_2"))
    features = jax.jit(shallow.apply)
    fa = features({"params": w.params}, face[:, :16, :16])
    fb = features({"params": w.params}, noisy(face, 0.1)[:, :16, :16])
    weights = {"conv1_2": 1.0, "conv2_2": 0.5}
    assert float(losses.perceptual_loss(fa, fa, weights)) == 0.0
    assert float(losses.perceptual_loss(fa, fb, weights)) > 0.0


# ----------------------------------------------------------------------------- style and total variation


def test_total_variation_on_known_images():
    assert float(losses.total_variation(jnp.full((2, 8, 8, 3), 0.3))) == 0.0
    checker = (np.indices((6, 6)).sum(0) % 2).astype(np.float32)[None, :, :, None].repeat(3, -1)
    assert float(losses.total_variation(checker)) == pytest.approx(2.0)
    ramp = np.broadcast_to(np.linspace(0, 1, 5, dtype=np.float32)[None, None, :, None], (1, 4, 5, 3))
    assert float(losses.total_variation(ramp)) == pytest.approx(0.25)  # 0.25 across, 0 down
    assert "tv" in losses.IMAGE_LOSSES
    # a regulariser of the output alone: the target does not matter
    rough = noisy(np.full((1, 8, 8, 3), 0.5, np.float32), 0.1)
    assert float(losses.IMAGE_LOSSES.get("tv")(rough, rough)) == float(losses.IMAGE_LOSSES.get("tv")(rough, 0 * rough))


def test_gram_and_style_loss_on_known_features():
    ones = jnp.ones((2, 4, 5, 3))
    np.testing.assert_allclose(losses.gram_matrix(ones), np.full((2, 3, 3), 1 / 3), rtol=1e-6)
    layer = ("x",)
    # doubling the features quadruples the Gram matrix: |4G - G|^2 = 9 |G|^2 = 9 * 9 * (1/3)^2
    assert float(losses.style_loss({"x": ones}, {"x": 2 * ones}, layer)) == pytest.approx(9.0)
    f = jnp.asarray(np.random.default_rng(0).random((1, 6, 6, 4)), jnp.float32)
    assert float(losses.style_loss({"x": f}, {"x": f}, layer)) == 0.0
    moved = jnp.roll(f, (2, 3), axis=(1, 2))  # the same features elsewhere: the same style
    assert float(losses.style_loss({"x": f}, {"x": moved}, layer)) == pytest.approx(0.0, abs=1e-6)
    assert losses.STYLE_LAYERS == ("conv1_2", "conv2_2", "conv3_3", "conv4_3")


def test_style_and_tv_weights_of_zero_leave_the_reconstruction_unchanged(tmp_path, vgg_arrays, face):
    from dfjax.config import load_config

    keras = tmp_path / "keras.npz"
    np.savez(keras, **{f"{n}/{p}": a for n, (k, b) in vgg_arrays.items() for p, a in (("kernel", k), ("bias", b))})
    w = losses.load_vgg16_weights(keras)
    vgg = losses.PerceptualVGG16(preprocess=w.preprocess)
    target, out = face[:, :32, :32], noisy(face, 0.1)[:, :32, :32]
    maps = np.zeros((1, 32, 32, 3), np.float32)
    maps[..., 0] = 1.0

    def rec(**weights):
        config = load_config("swap.py:tiny", [f"loss.vgg16_weights='{keras}'"] +
                             [f"loss.{k}={v}" for k, v in weights.items()])
        return float(jax.jit(lambda o, t: losses.reconstruction(config, o, t, maps, vgg, w.params))(out, target))

    base = rec(perceptual=0.5)
    assert rec(perceptual=0.5, style=0.0, tv=0.0) == base
    config = load_config("swap.py:tiny", ["loss.perceptual=0.5", f"loss.vgg16_weights='{keras}'"])
    del config.loss["style"], config.loss["tv"]  # a config saved before the terms existed
    assert float(losses.reconstruction(config, out, target, maps, vgg, w.params)) == pytest.approx(base, rel=1e-6)
    fa, fb = vgg.apply({"params": w.params}, out), vgg.apply({"params": w.params}, target)
    style, tv = float(losses.style_loss(fa, fb)), float(losses.total_variation(out))
    assert style > 0 and tv > 0
    assert rec(perceptual=0.5, style=0.3, tv=0.2) == pytest.approx(base + 0.3 * style + 0.2 * tv, rel=1e-5)
    # style alone still runs VGG16 (and the feature term stays off)
    assert rec(style=0.3) == pytest.approx(rec() + 0.3 * style, rel=1e-5)
