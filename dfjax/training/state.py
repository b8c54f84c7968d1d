"""The train state every trainer shares, and the optimizers built from a config.

One typed pytree (a flax struct) instead of string-keyed dicts: what a field holds never changes
what the step does. Fields a trainer does not use stay None (no EMA for a detector, no
discriminator without a GAN). The step's randomness is `fold_in(key, step)`, with the key stored in
the state as raw key data, so a resumed run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax


@flax.struct.dataclass
class TrainState:
    step: jax.Array                 # int32 scalar: updates done
    key: jax.Array                  # uint32 key data; step k draws from fold_in(key, k)
    params: Any                     # the trained model's parameters
    opt_state: Any
    bad_steps: jax.Array            # int32: non-finite steps in a row (skipped)
    ema: Any = None                 # exponential moving average of params (None: no EMA)
    model_state: Any = None         # the model's mutable collections (batch norm statistics)
    d_params: Any = None            # the discriminator(s), when the trainer has one
    d_stats: Any = None             # the discriminator's mutable collections (spectral-norm vectors)
    d_opt_state: Any = None

    def to_dict(self) -> dict:
        """The fields that hold something, as the dict a checkpoint stores."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, fields: dict) -> "TrainState":
        return cls(**fields)


def new_state(seed_key: jax.Array, params, optimizer: optax.GradientTransformation, *, ema: bool = True,
              model_state=None, d_params=None, d_stats=None, d_optimizer=None) -> TrainState:
    """The state at step 0 (call under `jax.jit(..., out_shardings=...)` to create it sharded)."""
    d_opt_state = d_optimizer.init(d_params) if d_params is not None else None
    return TrainState(step=jnp.zeros((), jnp.int32), key=jax.random.key_data(seed_key), params=params,
                      opt_state=optimizer.init(params), bad_steps=jnp.zeros((), jnp.int32),
                      ema=params if ema else None, model_state=model_state, d_params=d_params,
                      d_stats=d_stats if d_params is not None else None, d_opt_state=d_opt_state)


SCHEDULES = {
    "constant": lambda lr, t: optax.constant_schedule(lr),
    "cosine": lambda lr, t: optax.cosine_decay_schedule(lr, t.steps),
    "warmup_cosine": lambda lr, t: optax.warmup_cosine_decay_schedule(0.0, lr, t.warmup_steps, t.steps),
}
OPTIMIZERS = {"adam": optax.adam, "adamw": optax.adamw}


def build_optimizer(train: ml_collections.ConfigDict, lr: float) -> optax.GradientTransformation:
    """Adam(W) with the config's schedule and optional global-norm clipping (values checked when the
    config was loaded)."""
    schedule = SCHEDULES[train.get("schedule", "constant")](lr, train)
    clip = train.get("grad_clip", 0.0)
    chain = [optax.clip_by_global_norm(clip)] if clip else []
    return optax.chain(*chain, OPTIMIZERS[train.get("optimizer", "adam")](schedule, b1=train.b1, b2=train.b2))
