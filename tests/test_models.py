"""The face-swap networks: exact reference sizes, shapes, blocks, discriminator, attention, a tiny fit."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.ndimage

from dfjax import losses
from dfjax.models import (ARCHITECTURES, FaceSwapAE, PatchDiscriminator, Residual, SelfAttention, Upscale,
                          count_params, param_count, pixel_shuffle, resolution)

KEY = jax.random.PRNGKey(0)
# Threefry takes seconds to compile on a small CPU: initialise with "rbg", make data with numpy.
INIT_KEY = jax.random.key(0, impl="rbg")
RNG = np.random.default_rng(0)


# ----------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("arch, exact, millions", [
    ("original", 94_455_560, 94.5),
    ("sae128", 137_476_404, 137.5),
    ("sae256", 286_996_788, 287.0),
])
def test_reference_parameter_counts(arch, exact, millions):
    n = param_count(arch)
    assert n == exact
    assert round(n / 1e6, 1) == millions  # the reference networks


def test_tiny_models_are_small_and_attention_adds_parameters():
    assert param_count("tiny") == 1_481_448 < 2_000_000
    assert param_count("liae_tiny") < 3_000_000
    assert param_count("tiny", attention_res=16) > param_count("tiny")
    assert [resolution(a) for a in ARCHITECTURES] == [64, 64, 128, 256, 64]
    assert resolution("tiny", tiny_res=96) == 96 == FaceSwapAE("tiny", tiny_res=96).resolution


def test_bad_configurations_are_clear_errors():
    with pytest.raises(ValueError, match="unknown architecture"):
        param_count("huge")
    with pytest.raises(ValueError, match="attention_res"):
        param_count("tiny", attention_res=12)
    x = jnp.zeros((1, 32, 32, 3))
    with pytest.raises(ValueError, match="64x64"):
        jax.eval_shape(FaceSwapAE("tiny").init, KEY, x, x)


# ----------------------------------------------------------------------------- blocks


def test_pixel_shuffle_matches_torch_order():
    # torch.nn.PixelShuffle(2): input channel c*4 + i*2 + j at (h, w) -> channel c at (2h+i, 2w+j)
    x = jnp.arange(8, dtype=jnp.float32).reshape(1, 1, 1, 8)
    y = pixel_shuffle(x, 2)
    assert y.shape == (1, 2, 2, 2)
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(y[0, :, :, 1], [[4, 5], [6, 7]])
    # value 100h + 10w + channel on a 2x2 map with 4 channels -> one 4x4 channel
    h, w, c = np.meshgrid(np.arange(2), np.arange(2), np.arange(4), indexing="ij")
    x = jnp.asarray(100 * h + 10 * w + c, jnp.float32)[None]
    expected = [[0, 1, 10, 11],
                [2, 3, 12, 13],
                [100, 101, 110, 111],
                [102, 103, 112, 113]]
    np.testing.assert_array_equal(pixel_shuffle(x, 2)[0, :, :, 0], expected)


def test_upscale_doubles_and_residual_keeps_shape():
    x = jnp.ones((2, 3, 5, 7))
    up = Upscale(6)
    y = jax.jit(up.apply)(jax.jit(up.init)(INIT_KEY, x), x)
    assert y.shape == (2, 6, 10, 6)
    res = Residual(7)
    assert jax.eval_shape(res.apply, jax.eval_shape(res.init, KEY, x), x).shape == x.shape


# ----------------------------------------------------------------------------- the tiny autoencoder


@pytest.fixture(scope="module")
def tiny():
    model = FaceSwapAE("tiny")
    x = jnp.asarray(RNG.random((4, 64, 64, 3), dtype=np.float32))
    params = jax.jit(model.init)(INIT_KEY, x[:2], x[2:])["params"]
    return model, params, x


def test_tiny_forward_shapes_range_and_dtypes(tiny):
    model, params, x = tiny
    assert {"encoder", "decoder_a", "decoder_b"} <= set(params)
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params))
    bf16 = FaceSwapAE("tiny", dtype=jnp.bfloat16)  # same parameters, bfloat16 compute
    out = jax.jit(bf16.apply)({"params": params}, x[:2], x[2:])
    assert out["face_a"].shape == out["face_b"].shape == (2, 64, 64, 3)
    assert out["mask_a"].shape == out["mask_b"].shape == (2, 64, 64, 1)
    for v in out.values():
        assert v.dtype == jnp.float32
        assert float(v.min()) >= 0.0 and float(v.max()) <= 1.0


def test_swap_is_decode_of_encode(tiny):
    model, params, x = tiny
    v = {"params": params}

    @jax.jit
    def both(v, x):
        z = model.apply(v, x, method=FaceSwapAE.encode)
        return (model.apply(v, x, "b", method=FaceSwapAE.swap),
                model.apply(v, z, "b", method=FaceSwapAE.decode), z)

    (face, mask), (face2, mask2), z = both(v, x[:2])
    np.testing.assert_array_equal(face, face2)
    np.testing.assert_array_equal(mask, mask2)
    with pytest.raises(ValueError, match="side"):
        model.apply(v, z, "c", method=FaceSwapAE.decode)


def test_liae_uses_one_decoder_and_two_intermediates():
    x = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
    model = FaceSwapAE("liae_tiny")
    shapes = jax.eval_shape(model.init, KEY, x, x)["params"]
    assert set(shapes) == {"encoder", "inter_ab", "inter_b", "decoder"}
    out = jax.eval_shape(model.apply, {"params": shapes}, x, x)
    assert out["face_b"].shape == (2, 64, 64, 3) and out["mask_a"].shape == (2, 64, 64, 1)


def test_tiny_model_fits_eight_images(tiny):
    """30 Adam steps on 8 smooth random images bring the reconstruction loss down."""
    model, params, _ = tiny
    coarse = RNG.random((8, 4, 4, 3), dtype=np.float32)
    images = jnp.asarray(scipy.ndimage.zoom(coarse, (1, 16, 16, 1), order=1))
    masks = images[..., :1]
    xa, xb, ma, mb = images[:4], images[4:], masks[:4], masks[4:]
    tx = optax.adam(1e-3)

    def loss_fn(p):
        o = model.apply({"params": p}, xa, xb)
        return (losses.l1(o["face_a"], xa) + losses.l1(o["face_b"], xb)
                + losses.mask_loss(o["mask_a"], ma) + losses.mask_loss(o["mask_b"], mb))

    @jax.jit
    def step(p, s):
        loss, g = jax.value_and_grad(loss_fn)(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    state = jax.jit(tx.init)(params)
    history = []
    for _ in range(30):
        params, state, loss = step(params, state)
        history.append(float(loss))
    assert np.isfinite(history).all()
    assert history[-1] < 0.7 * history[0], history


# ----------------------------------------------------------------------------- discriminator, attention


def test_patch_discriminator_shapes_and_stats_collection():
    disc = PatchDiscriminator(features=8)
    x = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
    variables = jax.eval_shape(disc.init, KEY, x)
    assert set(variables) == {"params", "batch_stats"}
    assert jax.eval_shape(disc.apply, variables, x).shape == (2, 6, 6, 1)  # pix2pix: 32, 16, 8, 7, 6
    plain = PatchDiscriminator(features=8, spectral_norm=False, attention_res=16)
    v = jax.eval_shape(plain.init, KEY, x)
    assert set(v) == {"params"} and "attention" in v["params"]
    assert jax.eval_shape(plain.apply, v, x).dtype == jnp.float32
    with pytest.raises(ValueError, match="attention_res"):
        jax.eval_shape(PatchDiscriminator(features=8, attention_res=5).init, KEY, x)


def test_spectral_norm_makes_top_singular_value_one():
    disc = PatchDiscriminator(features=4, n_layers=1)
    x = jnp.asarray(RNG.random((1, 16, 16, 3), dtype=np.float32))
    variables = jax.jit(disc.init)(INIT_KEY, x)
    params = variables["params"]

    @functools.partial(jax.jit, static_argnums=1)
    def run(stats, update_stats):
        # update_stats=None follows `mutable`: the discriminator step needs no more than this
        _, new = disc.apply({"params": params, "batch_stats": stats}, x, update_stats=update_stats,
                            mutable=["batch_stats"])
        return new["batch_stats"]

    stats = variables["batch_stats"]
    for _ in range(60):
        stats = run(stats, None)
    for name, layer in params.items():
        kernel = np.asarray(layer["kernel"]).reshape(-1, layer["kernel"].shape[-1])
        sigma = float(stats[f"{name}_sn"][f"{name}/kernel/sigma"])
        top = np.linalg.svd(kernel / sigma, compute_uv=False)[0]
        assert top == pytest.approx(1.0, abs=0.02), name
    # update_stats=False (evaluation, the generator's step) reads the state and leaves it
    same = jax.tree_util.tree_map(jnp.array_equal, run(stats, False), stats)
    assert all(jax.tree_util.tree_leaves(same))


def test_self_attention_starts_as_identity():
    att = SelfAttention()
    x = jnp.asarray(RNG.standard_normal((2, 4, 4, 16), dtype=np.float32))
    variables = jax.jit(att.init)(INIT_KEY, x)
    apply = jax.jit(att.apply)
    assert float(variables["params"]["gamma"]) == 0.0
    np.testing.assert_array_equal(apply(variables, x), x)
    moved = jax.tree_util.tree_map(lambda p: p, variables)
    moved["params"]["gamma"] = jnp.float32(1.0)
    assert not np.allclose(apply(moved, x), x)
    assert variables["params"]["query"]["kernel"].shape == (1, 1, 16, 2)
    assert variables["params"]["value"]["kernel"].shape == (1, 1, 16, 8)


def test_count_params_counts_scalars():
    assert count_params({"a": jnp.zeros((2, 3)), "b": [jnp.zeros(4)]}) == 10
