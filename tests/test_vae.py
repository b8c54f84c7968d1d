"""The variational latent (`model.latent=vae`): ae is today's model exactly; vae samples and pays a KL in
training, uses the mean everywhere else, resumes, works with the GAN and the conditioning branch."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from dfjax.cli import app
from dfjax.config import apply_overrides, load_config
from dfjax.data.synthetic import synthesize
from dfjax.models import FaceSwapAE, count_params, param_count
from dfjax.training.core import load_trained, train

runner = CliRunner()
INIT_KEY = jax.random.key(0, impl="rbg")


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("synth")
    synthesize(out, frames=24, size=96, face_size=64)
    return out / "facesets" / "a", out / "facesets" / "b"


def config(sets, steps: int, spec: str = "configs/swap.py:tiny", **extra):
    overrides = [f"data.a='{sets[0]}'", f"data.b='{sets[1]}'", "model.tiny_res=32", "train.batch_per_side=4",
                 f"train.steps={steps}", "log.every=1", "log.preview_every=1000", "log.checkpoint_every=3"]
    return apply_overrides(load_config(spec), overrides + [f"{k}={v}" for k, v in extra.items()])


def records(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_ae_is_the_plain_model_and_vae_adds_only_the_logvar_heads():
    assert load_config("swap.py:tiny").model.latent == "ae"
    assert param_count("tiny") == param_count("tiny", latent="ae") == 1_481_448
    x = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
    plain = jax.eval_shape(FaceSwapAE("tiny").init, INIT_KEY, x, x)
    ae = jax.eval_shape(FaceSwapAE("tiny", latent="ae").init, INIT_KEY, x, x)
    assert set(plain) == set(ae) == {"params"}  # nothing recorded besides the parameters
    assert jax.tree.structure(plain) == jax.tree.structure(ae)
    vae = jax.eval_shape(FaceSwapAE("tiny", latent="vae").init, INIT_KEY, x, x)["params"]
    # one Dense beside dense1 (the mean): 2048 x 128 + 128 at the tiny widths
    assert count_params(vae) - count_params(ae["params"]) == 4 * 4 * 128 * 128 + 128
    assert "logvar" in vae["encoder"]["bottleneck"]
    # LIAE's two intermediates are the bottlenecks there
    liae = jax.eval_shape(FaceSwapAE("liae_tiny", latent="vae").init, INIT_KEY, x, x)["params"]
    assert "logvar" in liae["inter_ab"] and "logvar" in liae["inter_b"]


def test_mean_without_an_rng_samples_with_one():
    model = FaceSwapAE("tiny", tiny_res=32, latent="vae")
    x = jnp.asarray(np.random.default_rng(0).random((2, 32, 32, 3)), jnp.float32)
    params = jax.jit(model.init)(INIT_KEY, x, x)["params"]
    swap = jax.jit(lambda p, x: model.apply({"params": p}, x, "b", method=FaceSwapAE.swap))
    first, second = swap(params, x), swap(params, x)
    np.testing.assert_array_equal(first[0], second[0])  # the mean: deterministic
    train_fwd = jax.jit(lambda p, k: model.apply({"params": p}, x, x, rngs={"latent": k}, mutable=["losses"]))
    out1, kl = train_fwd(params, jax.random.key(1))
    out2, _ = train_fwd(params, jax.random.key(2))
    assert float(jnp.abs(out1["face_b"] - out2["face_b"]).max()) > 0  # sampled codes differ
    assert all(float(v) > 0 for v in jax.tree.leaves(kl))
    with pytest.raises(ValueError, match="latent"):
        jax.eval_shape(FaceSwapAE("tiny", latent="vq").init, INIT_KEY, x, x)


def test_vae_trains_with_finite_loss_and_kl_and_resumes_exactly(tmp_path, sets):
    extra = {"model.latent": "vae", "loss.kl": 1e-3, "loss.kl_warmup_steps": 4}
    train(config(sets, 6, **extra), tmp_path / "straight")
    got = records(tmp_path / "straight")
    assert len(got) == 6 and all(np.isfinite(r["loss"]) and r["kl"] > 0 for r in got)
    assert got[-1]["bad_steps"] == 0
    train(config(sets, 3, **extra), tmp_path / "split")
    train(config(sets, 6, **extra), tmp_path / "split")
    np.testing.assert_allclose([r["loss"] for r in records(tmp_path / "split")], [r["loss"] for r in got], rtol=1e-5)

    # swap and preview paths take the mean: two calls, one answer
    model = load_trained(tmp_path / "straight")
    assert model.generator.latent == "vae"
    faces = jnp.asarray(np.random.default_rng(1).random((3, 32, 32, 3)), jnp.float32)
    run = lambda: model.generator.apply({"params": model.params}, faces, "b", method=model.generator.swap)  # noqa: E731
    np.testing.assert_array_equal(run()[0], run()[0])
    from dfjax.previews import make_previewer

    previewer = make_previewer(model.generator, {"a": np.zeros((4, 32, 32, 3), np.uint8) + 90,
                                                 "b": np.zeros((4, 32, 32, 3), np.uint8) + 160}, 32)
    np.testing.assert_array_equal(previewer(model.params), previewer(model.params))


def test_kl_warmup_ramps_the_weight():
    from dfjax.training.swap import kl_weight

    c = load_config("swap.py:tiny", ["loss.kl=0.01", "loss.kl_warmup_steps=100"])
    assert [float(kl_weight(c, jnp.int32(s))) for s in (0, 50, 100, 500)] == pytest.approx([0, 0.005, 0.01, 0.01])
    c = load_config("swap.py:tiny", ["loss.kl=0.01"])
    assert float(kl_weight(c, jnp.int32(0))) == pytest.approx(0.01)


def test_vae_with_the_gan_and_the_conditioning_branch(tmp_path, sets):
    gan = config(sets, 2, **{"model.latent": "vae", "gan.enabled": True, "gan.features": 8, "gan.n_layers": 2})
    train(gan, tmp_path / "gan")
    got = records(tmp_path / "gan")
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_adv_a"]) and r["kl"] > 0 for r in got)
    dvp = config(sets, 2, "configs/swap_dvp.py:tiny", **{"model.latent": "vae"})
    train(dvp, tmp_path / "dvp")
    assert all(np.isfinite(r["loss"]) and r["kl"] > 0 for r in records(tmp_path / "dvp"))


@pytest.mark.parametrize("setting, words", [("model.latent=vq", "model.latent='vq' is unknown; choose one of ae, vae"),
                                            ("loss.kl=-1", "loss.kl=-1.0 is impossible"),
                                            ("loss.style=1", "loss.perceptual and loss.style need VGG16 weights")])
def test_bad_settings_exit_2_with_one_line(tmp_path, setting, words):
    result = runner.invoke(app, ["train", "--workdir", str(tmp_path / "w"), "--set", setting, "--quiet"])
    assert result.exit_code == 2 and words in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "w" / "config.json").exists()
