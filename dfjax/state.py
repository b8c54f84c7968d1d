"""The swap model, its optimizers and the train state, built from a config; and a trained model
loaded back from its workdir for inference (swap, evaluation).

The train state is a plain dict of pytrees: step, params, opt_state, ema (of the generator),
bad_steps, and with a GAN the discriminators' params, spectral-norm stats and optimizer state.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import optax

from dfjax.checkpoint import Checkpointer
from dfjax.config import load_saved_config
from dfjax.errors import UserError
from dfjax.models.autoencoder import FaceSwapAE, resolution
from dfjax.models.conditioning import C_MAPS
from dfjax.models.discriminator import PatchDiscriminator

SIDES = ("a", "b")


def cond_window(config: ml_collections.ConfigDict) -> int:
    """Frames in the conditioning branch's causal window (`model.cond_window`); 0: no branch."""
    nw = int(config.model.get("cond_window", 0) or 0)
    if nw < 0:
        raise UserError(f"model.cond_window={nw} must be 0 (no conditioning branch) or a number of frames >= 1.")
    return nw


def build_models(config: ml_collections.ConfigDict):
    dtype = jnp.dtype(config.model.dtype)
    generator = FaceSwapAE(arch=config.model.arch, dtype=dtype, param_dtype=jnp.float32,
                           attention_res=config.model.attention_res or None, tiny_res=config.model.tiny_res,
                           cond_channels=C_MAPS * cond_window(config), cond_width=config.model.get("cond_width", 0))
    discriminator = None
    if config.gan.enabled:
        discriminator = PatchDiscriminator(features=config.gan.features, n_layers=config.gan.n_layers,
                                           spectral_norm=config.gan.spectral_norm,
                                           attention_res=config.gan.attention_res or None,
                                           dtype=dtype, param_dtype=jnp.float32)
    return generator, discriminator


def build_optimizer(train: ml_collections.ConfigDict, lr: float) -> optax.GradientTransformation:
    if train.schedule == "constant":
        schedule = optax.constant_schedule(lr)
    elif train.schedule == "cosine":
        schedule = optax.cosine_decay_schedule(lr, train.steps)
    elif train.schedule == "warmup_cosine":
        schedule = optax.warmup_cosine_decay_schedule(0.0, lr, train.warmup_steps, train.steps)
    else:
        raise UserError(f"train.schedule={train.schedule!r} is unknown; use constant, cosine or warmup_cosine.")
    optimizers = {"adam": optax.adam, "adamw": optax.adamw}
    if train.optimizer not in optimizers:
        raise UserError(f"train.optimizer={train.optimizer!r} is unknown; use adam or adamw.")
    chain = [optax.clip_by_global_norm(train.grad_clip)] if train.grad_clip else []
    return optax.chain(*chain, optimizers[train.optimizer](schedule, b1=train.b1, b2=train.b2))


def init_state(config, generator, discriminator, g_opt, d_opt, res: int) -> dict:
    """Initial train state (a plain dict); call under jit with out_shardings to create it sharded."""
    key = jax.random.key(config.seed)
    k_g, k_d = jax.random.split(key)
    dummy = jnp.zeros((1, res, res, 3), jnp.float32)
    cond = (jnp.zeros((1, res, res, generator.cond_channels), jnp.float32),) * 2 if generator.cond_channels else ()
    params = generator.init(k_g, dummy, dummy, *cond)["params"]
    state = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": g_opt.init(params),
             "ema": params, "bad_steps": jnp.zeros((), jnp.int32)}
    if discriminator is not None:
        d_vars = {side: discriminator.init(jax.random.fold_in(k_d, i), dummy) for i, side in enumerate(SIDES)}
        d_params = {side: v["params"] for side, v in d_vars.items()}
        state.update(d_params=d_params, d_stats={side: v.get("batch_stats", {}) for side, v in d_vars.items()},
                     d_opt_state=d_opt.init(d_params))
    return state


def generator_update(state: dict, grads, loss, g_opt: optax.GradientTransformation, ema_decay: float):
    """The generator's optimizer step and EMA, as {"params", "opt_state", "ema"}, and whether loss and
    gradients are finite (every trainer's jitted step; pass the result to `commit_if_finite`)."""
    updates, opt_state = g_opt.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    new = {"params": params, "opt_state": opt_state,
           "ema": optax.incremental_update(params, state["ema"], 1.0 - ema_decay)}
    return new, jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads))


def commit_if_finite(state: dict, new: dict, finite, metrics: dict, loss, grads) -> tuple[dict, dict]:
    """The next state: `new` when `finite`, else the old values (a skipped step, counted in bad_steps);
    metrics get loss, grad_norm and bad_steps."""
    kept = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, {k: state[k] for k in new})
    state = {**state, **kept, "step": state["step"] + 1, "bad_steps": jnp.where(finite, 0, state["bad_steps"] + 1)}
    metrics.update(loss=loss, grad_norm=optax.tree.norm(grads), bad_steps=state["bad_steps"])
    return state, metrics


def abstract_state(config):
    """Shapes and dtypes of the train state of `config` (no memory used)."""
    generator, discriminator = build_models(config)
    g_opt = build_optimizer(config.train, config.train.lr)
    d_opt = build_optimizer(config.train, config.gan.lr)
    res = resolution(config.model.arch, config.model.tiny_res)
    return jax.eval_shape(partial(init_state, config, generator, discriminator, g_opt, d_opt, res))


@dataclass
class TrainedModel:
    """A generator ready for inference: module, (EMA) parameters, resolution, and where it came from."""

    generator: FaceSwapAE
    params: dict
    resolution: int
    config: ml_collections.ConfigDict
    step: int
    workdir: str
    config_hash: str


def load_trained(workdir: str | Path, use_ema: bool = True) -> TrainedModel:
    """The generator of the latest checkpoint in a `dfjax train` workdir, on the default device."""
    workdir = Path(workdir)
    saved = workdir / "config.json"
    if not saved.exists():
        raise UserError(f"{workdir} is not a dfjax train workdir (no config.json); pass the --workdir of a training run.")
    config = load_saved_config(saved)
    if config.model.get("kind") == "reenact":
        raise UserError(f"{workdir} holds a reenactor, not a face-swap model; use `dfjax reenact --model {workdir}`, "
                        "or train a swap model with --config configs/swap.py.")
    checkpointer = Checkpointer(workdir / "checkpoints")
    if checkpointer.latest_step() is None:
        checkpointer.close()
        raise UserError(f"{workdir} has no checkpoint yet; train first with `dfjax train --workdir {workdir}`.")
    config.model.dtype = "float32" if jax.default_backend() == "cpu" else config.model.dtype
    abstract = abstract_state(config)
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    try:
        state = checkpointer.restore(abstract, jax.tree.map(lambda _: device, abstract))
    finally:
        checkpointer.close()
    generator, _ = build_models(config)
    text = json.dumps(json.loads(saved.read_text()), sort_keys=True)
    return TrainedModel(generator, state["ema"] if use_ema else state["params"],
                        resolution(config.model.arch, config.model.tiny_res), config, int(state["step"]),
                        str(workdir), hashlib.sha256(text.encode()).hexdigest()[:16])
