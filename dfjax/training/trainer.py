"""What a trainer kind supplies to the core, and the registry that `dfjax train` picks it from.

A trainer is one module in dfjax/training/ with a `Trainer` subclass registered by name
(`@TRAINERS.register("swap")`); the config says which (`config.trainer`). It supplies its models and
optimizers (`build`), the variables at step 0 (`init_variables`), its data on the devices
(`prepare`), and three pure functions the step builder calls: `batch`, `generator_loss` and,
with a discriminator, `discriminator_loss`. Everything else (state, step, loop, checkpoints,
restore) is the core's.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from dfjax.registry import Registry

TRAINERS = Registry("trainer", discover="dfjax.training")


@dataclass
class Variables:
    """A trainer's variables at step 0."""

    params: Any
    model_state: Any = None
    d_params: Any = None
    d_stats: Any = None


class Trainer(abc.ABC):
    """One kind of trainable generator. Subclasses set `name` and implement the abstract methods."""

    name: str = ""
    noun: str = "model"                 # what the trained model is called in messages ("reenactor")
    command: str = "dfjax swap"         # the command that uses a trained model of this kind
    config_file: str = "configs/swap.py"
    preview_caption: str | None = None  # what the preview grid shows, written beside it

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config
        self.generator, self.discriminator = self.build_models(config)
        self.data: dict = {}
        self.data_sharding: dict = {}

    # -- what every trainer supplies

    @staticmethod
    @abc.abstractmethod
    def build_models(config: ml_collections.ConfigDict) -> tuple[Any, Any]:
        """(generator, discriminator or None) of `config`."""

    @staticmethod
    @abc.abstractmethod
    def resolution(config: ml_collections.ConfigDict) -> int:
        """The generator's image size in pixels."""

    @abc.abstractmethod
    def init_variables(self, key: jax.Array) -> Variables:
        """Parameters (and statistics) at step 0, from shapes only: no data needed."""

    @abc.abstractmethod
    def prepare(self, workdir: Path, mesh, progress=None) -> None:
        """Load the training data onto the devices: fill `self.data` and `self.data_sharding`."""

    @abc.abstractmethod
    def batch(self, key: jax.Array, data: dict) -> Any:
        """The step's batch, inside the jitted step."""

    @abc.abstractmethod
    def generator_loss(self, params, state, batch, key) -> tuple[jax.Array, tuple[dict, dict]]:
        """(loss, (metrics, aux)); aux is passed on to `discriminator_loss`."""

    @abc.abstractmethod
    def preview(self, state) -> np.ndarray:
        """The uint8 preview grid of a state."""

    # -- optional

    @property
    def has_discriminator(self) -> bool:
        return self.discriminator is not None

    def discriminator_loss(self, d_params, state, batch, aux) -> tuple[jax.Array, tuple[dict, Any]]:
        raise NotImplementedError

    def batch_size(self) -> int:
        """Images per step, for the images/s figure and the check that the batch divides over the devices."""
        return self.config.train.batch_per_side

    def images_per_step(self) -> int:
        return self.batch_size()

    def start(self, step: int, mesh) -> None:
        """Called once the start step is known (a host loader starts there)."""

    def feed(self, step: int) -> dict:
        """The data argument of step `step` (the on-device data, or a streamed batch)."""
        return self.data

    def compile_key(self) -> tuple:
        """What the compiled step depends on beyond the config (shapes come from the arguments)."""
        return ()

    def summary(self) -> dict:
        return {}

    def close(self) -> None:
        pass
