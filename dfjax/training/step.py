"""The one update step: built once from a trainer, jitted with explicit shardings and donated state.

A trainer supplies three pure functions (see dfjax.training.trainer.Trainer):

    batch(key, data) -> batch
    generator_loss(params, state, batch, key) -> (loss, (metrics, aux))
    discriminator_loss(d_params, state, batch, aux) -> (loss, (metrics, d_stats))    optional

and the step does the rest the same way for every model: gradients, the optimizer update, the EMA of
the parameters, the discriminator's update, and skip-if-non-finite (a step whose losses, gradients
or updated parameters are not finite leaves the state as it was and counts in `bad_steps`). `aux["model_state"]`, when a
trainer returns it, is the model's updated batch statistics.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from dfjax.training.state import TrainState


def make_step(trainer, optimizer: optax.GradientTransformation, d_optimizer: optax.GradientTransformation | None,
              ema_decay: float) -> Callable[[TrainState, Any], tuple[TrainState, dict]]:
    """The pure step `(state, data) -> (state, metrics)` of `trainer` (jit it with `jit_step`)."""
    discriminator_loss = getattr(trainer, "discriminator_loss", None) if trainer.has_discriminator else None

    def step(state: TrainState, data) -> tuple[TrainState, dict]:
        key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
        batch = trainer.batch(key, data)
        (loss, (metrics, aux)), grads = jax.value_and_grad(trainer.generator_loss, has_aux=True)(
            state.params, state, batch, key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new = {"params": params, "opt_state": opt_state}
        if state.ema is not None:
            new["ema"] = optax.incremental_update(params, state.ema, 1.0 - ema_decay)
        if "model_state" in aux:
            new["model_state"] = aux["model_state"]
        # an update that overflows the parameters is refused too, not only a non-finite loss or gradient
        finite = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads)) & jnp.isfinite(optax.tree.norm(params))
        if discriminator_loss is not None:
            (d_loss, (d_metrics, d_stats)), d_grads = jax.value_and_grad(discriminator_loss, has_aux=True)(
                state.d_params, state, batch, aux)
            d_updates, d_opt_state = d_optimizer.update(d_grads, state.d_opt_state, state.d_params)
            new.update(d_params=optax.apply_updates(state.d_params, d_updates), d_stats=d_stats,
                       d_opt_state=d_opt_state)
            metrics = {**metrics, **d_metrics, "d_loss": d_loss}
            finite &= jnp.isfinite(d_loss) & jnp.isfinite(optax.tree.norm(d_grads))
        kept = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, {k: getattr(state, k) for k in new})
        bad_steps = jnp.where(finite, 0, state.bad_steps + 1)
        state = state.replace(**kept, step=state.step + 1, bad_steps=bad_steps)
        return state, {**metrics, "loss": loss, "grad_norm": optax.tree.norm(grads), "bad_steps": bad_steps}

    return step


def jit_step(step: Callable, state_sharding, data_sharding, metrics_sharding, compiler_options: dict | None = None):
    """`step` jitted with explicit shardings, the state donated (updated in place on the device)."""
    return jax.jit(step, in_shardings=(state_sharding, data_sharding), out_shardings=(state_sharding, metrics_sharding),
                   donate_argnums=0, compiler_options=compiler_options)
