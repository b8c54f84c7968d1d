"""CNN detectors (Meso-4, MesoInception-4, Xception), trained on dfjax's training core.

The DeepfakeBench recipe in JAX: binary cross-entropy on logits, Adam, class-balanced batches
(half real, half fake), random flip / translation / brightness and contrast inside the jitted step,
and model selection on the validation split only (DeepfakeBench issue #91: never on the test set):
the best validation AUC, ties broken by the lower validation loss.
The step is dfjax.training.step's (skip-if-non-finite, batch statistics in the state) and the loop
dfjax.training.loop's, with validation as a hook. Batches are sampled on the host (crops may be
memory-mapped and larger than device memory) and split over a ("data",) mesh; parameters are replicated, so XLA inserts the gradient all-reduce and
batch norm sees the global batch. Randomness is `fold_in(key(seed), step)` on the device and
`default_rng((seed, step))` on the host: a run is deterministic given its seed, and draws the same
batches and random numbers on any device count (only the order of floating-point sums changes).

With `config.sbi` the detector trains on real crops only and makes its fakes itself, a fresh set of
self-blended images (detect/sbi.py) every epoch, prepared in a background thread.

    det = DETECTORS.get("xception")(config)          # config from configs/detect_xception.py
    det.fit(train.crops, train.labels, val=(val.crops, val.labels), landmarks=train.landmarks)
    probs = det.score(test.crops)
    det.save("runs/xception"); det = CNNDetector.load("runs/xception")
"""

from __future__ import annotations

import dataclasses
import functools
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from sklearn.metrics import roc_auc_score

from detect.models import CNN_MODELS
from detect.registry import Detector
from detect.sbi import self_blend
from dfjax.training import parallel
from dfjax.config import parse_arg
from dfjax.errors import UserError
from dfjax.io import read_json, write_json
from dfjax.training.loop import Hook, run_loop
from dfjax.training.state import build_optimizer, new_state
from dfjax.training.step import jit_step, make_step



def config_from_arg(arch: str, arg: str = "") -> ml_collections.ConfigDict:
    """The config of `arch` from a configs/detect_*.py argument: comma-separated tiny, sbi, mix, bf16
    (mix: with sbi, the given fakes stay in the training pool beside the self-blended ones)."""
    flags = parse_arg(arg, tiny=False, sbi=False, mix=False, bf16=False)
    c = cnn_config(arch, tiny=flags.tiny, sbi=flags.sbi)
    c.sbi_mix = bool(flags.sbi and flags.mix)
    if flags.bf16:
        c.model.dtype = "bfloat16"
    return c


def cnn_config(arch: str, tiny: bool = False, sbi: bool = False) -> ml_collections.ConfigDict:
    """The default config of `arch` (DeepfakeBench settings at 256 px; `tiny`: 64 px, seconds on a CPU)."""
    if arch not in CNN_MODELS:
        raise ValueError(f"unknown CNN detector {arch!r}; choose one of {', '.join(CNN_MODELS.names())}")
    c = ml_collections.ConfigDict()
    c.model = ml_collections.ConfigDict()
    c.model.arch = arch
    c.model.size = 64 if tiny else 256  # crops are resized to this
    c.model.dtype = "float32"  # compute dtype ("bfloat16" on GPUs/TPUs); parameters stay float32
    c.model.dropout = 0.5 if arch != "xception" and not tiny else 0.0  # MesoNet's; short runs learn faster without
    c.model.bn_momentum = 0.9 if tiny else 0.99
    c.model.width = 0.125 if tiny else 1.0  # Xception only: width multiplier and middle-flow depth
    c.model.middle_blocks = 1 if tiny else 8

    c.train = ml_collections.ConfigDict()
    # SBI's cue (a blending boundary) is subtler than a swap's artefacts: its tiny run is longer
    c.train.steps = (300 if sbi else 40) if tiny else 10_000
    c.train.batch = 16 if tiny else 32  # global, split over the devices; half real, half fake
    c.train.lr = 3e-3 if tiny else 2e-4
    c.train.b1 = 0.9
    c.train.b2 = 0.999
    c.train.eval_every = (50 if sbi else 20) if tiny else 500  # validation AUC every this many steps; the best is kept
    c.train.eval_batch = 64

    c.augment = ml_collections.ConfigDict()
    c.augment.flip = True
    c.augment.translate = 0.05  # random crop: shift up to this fraction of the size (edge padding)
    c.augment.brightness = 0.1  # added, in [0, 1] pixel units
    c.augment.contrast = 0.1  # relative

    c.sbi = sbi  # train on real crops + their landmarks, with self-blended fakes made every epoch
    c.sbi_mix = False  # with sbi: keep the given fakes too (fakes = given + self-blended)
    c.sbi_workers = 4  # threads making the self-blended images
    # CPU only: compile without XLA's backend optimisations; compiles several times faster, which
    # is what short CPU runs (tests, smoke benchmarks) are made of. Initialisation always is.
    c.fast_compile = tiny
    return c


# ----------------------------------------------------------------------------- the jitted programs

def augment_images(key: jax.Array, images: jax.Array, augment) -> jax.Array:
    """uint8 (B, S, S, 3) -> float32 in [0, 1]: flip, pad-and-crop translation, brightness, contrast."""
    x = images.astype(jnp.float32) / 255
    b, s = x.shape[0], x.shape[1]
    k_flip, k_shift, k_bright, k_contrast = jax.random.split(key, 4)
    if augment.flip:
        flip = jax.random.bernoulli(k_flip, 0.5, (b, 1, 1, 1))
        x = jnp.where(flip, x[:, :, ::-1], x)
    pad = int(round(augment.translate * s))
    if pad:
        padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
        offsets = jax.random.randint(k_shift, (b, 2), 0, 2 * pad + 1)
        x = jax.vmap(lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (s, s, 3)))(padded, offsets)
    if augment.contrast:
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * (1 + jax.random.uniform(k_contrast, (b, 1, 1, 1), minval=-1, maxval=1) * augment.contrast) + mean
    if augment.brightness:
        x = x + jax.random.uniform(k_bright, (b, 1, 1, 1), minval=-1, maxval=1) * augment.brightness
    return jnp.clip(x, 0, 1)


class _Classifier:
    """The CNN as the training core sees it (dfjax.training.step): binary cross-entropy on logits of
    augmented crops, dropout, batch statistics kept in the state's `model_state`."""

    has_discriminator = False

    def __init__(self, model, augment):
        self.model, self.augment = model, augment

    def batch(self, key, data):
        k_aug, _ = jax.random.split(key)
        return {"images": augment_images(k_aug, data["images"], self.augment), "labels": data["labels"]}

    def generator_loss(self, params, state, batch, key):
        _, k_drop = jax.random.split(key)
        logits, new = self.model.apply({"params": params, "batch_stats": state.model_state}, batch["images"],
                                       train=True, rngs={"dropout": k_drop}, mutable=["batch_stats"])
        loss = optax.sigmoid_binary_cross_entropy(logits, batch["labels"]).mean()
        return loss, ({}, {"model_state": new["batch_stats"]})


def build_model(model_config):
    """The Flax module of `model_config.arch`, given every config field it declares."""
    module = CNN_MODELS.get(model_config.arch, "model.arch")
    fields = {f.name for f in dataclasses.fields(module)}
    kw = {k: v for k, v in model_config.items() if k in fields and k not in ("dtype", "param_dtype")}
    return module(**kw, dtype=jnp.dtype(model_config.dtype), param_dtype=jnp.float32)


def _program_key(config: ml_collections.ConfigDict) -> str:
    """What the compiled programs depend on: model, optimizer, augmentation (not steps or data)."""
    parts = {"model": config.model.to_dict(), "augment": config.augment.to_dict(), "fast": config.fast_compile,
             "adam": [config.train.lr, config.train.b1, config.train.b2]}
    return json.dumps(parts, sort_keys=True)


@functools.lru_cache(maxsize=16)
def _programs(key: str, n_devices: int) -> SimpleNamespace:
    """Model, mesh and jitted init(seed) / step / predict of a program key, built once per process."""
    config = ml_collections.ConfigDict(json.loads(key))
    model = build_model(config.model)
    lr, b1, b2 = config.adam
    optimizer = build_optimizer(ml_collections.ConfigDict({"b1": b1, "b2": b2}), lr)
    mesh = parallel.make_mesh()
    rep, shard = parallel.replicated(mesh), parallel.batch_sharded(mesh)
    size = config.model.size

    def init(seed):
        key, k_init = jax.random.split(jax.random.PRNGKey(seed))
        variables = model.init(k_init, jnp.zeros((1, size, size, 3), jnp.float32))
        return new_state(key, variables["params"], optimizer, ema=False, model_state=variables["batch_stats"])

    def predict(variables, images):
        return model.apply(variables, images.astype(jnp.float32) / 255, train=False)

    cpu = jax.default_backend() == "cpu"
    quick = {"xla_backend_optimization_level": 0} if cpu else None
    fast = quick if config.fast else None
    abstract = jax.eval_shape(init, 0)
    state_sharding = jax.tree.map(lambda _: rep, abstract)
    step = jit_step(make_step(_Classifier(model, config.augment), optimizer, None, 0.0), state_sharding,
                    {"images": shard, "labels": shard}, rep, compiler_options=fast)
    return SimpleNamespace(model=model, mesh=mesh, abstract=abstract,
                           init=jax.jit(init, out_shardings=state_sharding, compiler_options=quick), step=step,
                           predict=jax.jit(predict, in_shardings=(rep, shard), out_shardings=rep, compiler_options=fast))


# ----------------------------------------------------------------------------- host-side data

def resize_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, S, S, 3) -> (N, size, size, 3); returned as is when S == size (memory maps stay mapped)."""
    if crops.shape[1:3] == (size, size):
        return crops
    interp = cv2.INTER_AREA if crops.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(np.asarray(c), (size, size), interpolation=interp) for c in crops]).reshape(-1, size, size, 3)


class _BalancedBatches:
    """Batch `step`: half real, half fake, drawn with replacement by default_rng((seed, step)).

    With SBI the pool is remade every epoch (2 N / batch steps) from the real crops: the targets
    as reals and the self-blended images as fakes; the next epoch's pool is made in a thread.
    """

    def __init__(self, crops, labels, batch: int, seed: int, landmarks=None, workers: int = 4, extra_fakes=None):
        self.batch, self.seed, self.workers = batch, seed, workers
        self.crops, self.labels, self.landmarks = crops, labels, landmarks
        self.extra_fakes = extra_fakes  # with SBI: given fakes kept in every epoch's pool beside the blended ones
        self._epoch, self._pool = None, None
        if landmarks is not None:
            self.steps_per_epoch = max(1, -(-2 * len(crops) // batch))
            self._executor = ThreadPoolExecutor(1)
            self._next = self._executor.submit(self._make_pool, 0)
        else:
            self._pool = (crops, np.flatnonzero(labels == 0), np.flatnonzero(labels == 1))

    def _make_pool(self, epoch: int):
        made = self_blend(self.crops, self.landmarks, seed=(self.seed, epoch), workers=self.workers)
        n = len(self.crops)
        parts = [made.targets, made.fakes] + ([self.extra_fakes] if self.extra_fakes is not None else [])
        images = np.concatenate(parts)
        return images, np.arange(n), np.arange(n, len(images))

    def __call__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        if self.landmarks is not None and step // self.steps_per_epoch != self._epoch:
            self._epoch = step // self.steps_per_epoch
            self._pool = self._next.result() if self._next is not None else self._make_pool(self._epoch)
            self._next = self._executor.submit(self._make_pool, self._epoch + 1)
        images, real, fake = self._pool
        rng = np.random.default_rng((self.seed, step))
        half = self.batch // 2
        idx = rng.permutation(np.concatenate([rng.choice(real, half), rng.choice(fake, self.batch - half)]))
        labels = (idx >= len(real)) if self.landmarks is not None else self.labels[idx]
        return np.asarray(images[idx]), np.asarray(labels, np.float32)

    def close(self) -> None:
        if self.landmarks is not None:
            self._next.cancel()
            self._executor.shutdown(wait=True)


# ----------------------------------------------------------------------------- the detector

def _two_classes(labels, what: str) -> np.ndarray:
    labels = np.asarray(labels).astype(np.int64).ravel()
    if not set(np.unique(labels).tolist()) == {0, 1}:
        raise ValueError(f"{what} needs both real (0) and fake (1) examples, labelled 0/1")
    return labels


def _host_copy(tree):
    """Host numpy copies of a pytree of device arrays (never views of device buffers)."""
    return jax.tree.map(lambda x: np.array(x, copy=True), jax.device_get(tree))


class CNNDetector(Detector):
    """A Flax CNN detector behind the interface of detect/registry.py."""

    def __init__(self, config: ml_collections.ConfigDict | None = None, arch: str = "meso4"):
        self.config = ml_collections.ConfigDict(config.to_dict()) if config is not None else cnn_config(arch)
        self.name = self.config.model.arch
        self.variables = None       # host pytree {"params", "batch_stats"} of the selected step
        self.history: list[dict] = []  # one record per evaluation: step, loss, val_auc
        self.train_losses = np.zeros(0, np.float32)  # every step's batch loss
        self.best_step: int | None = None
        self.best_val_auc: float | None = None
        self._on_device = None

    def programs(self) -> SimpleNamespace:
        """The model, the mesh and the jitted init(seed) / step(state, images, labels) /
        predict(variables, images) of this config (compiled once per process)."""
        return _programs(_program_key(self.config), jax.device_count())

    # -- training

    def fit(self, crops: np.ndarray, labels: np.ndarray, *, val=None, landmarks=None, seed: int = 0,
            progress=None) -> "CNNDetector":
        cfg, size = self.config, self.config.model.size
        labels = np.asarray(labels).astype(np.int64).ravel()
        if len(labels) != len(crops):
            raise ValueError(f"{len(crops)} crops but {len(labels)} labels")
        if cfg.sbi:
            if landmarks is None:
                raise ValueError("sbi=True makes fakes from real crops and their landmarks: pass "
                                 "landmarks=(N, 68, 2) in crop pixels (Dataset.landmarks)")
            real = labels == 0
            if not real.any():
                raise ValueError("sbi=True trains on the real crops (label 0), but there are none")
            landmarks = np.asarray(landmarks, np.float32)[real] * np.float32(size / np.shape(crops)[1])
            given_fakes = np.asarray(crops)[~real] if cfg.get("sbi_mix") and (~real).any() else None
            crops, labels = np.asarray(crops)[real], labels[real]
        else:
            labels = _two_classes(labels, "fit")
            landmarks = given_fakes = None
        if val is not None:
            val_crops, val_labels = resize_crops(np.asarray(val[0]), size), _two_classes(val[1], "the validation split")
        prog = self.programs()
        mesh = prog.mesh
        if cfg.train.batch % mesh.size:
            raise UserError(f"train.batch={cfg.train.batch} does not divide over {mesh.size} devices; "
                            f"set train.batch to a multiple of {mesh.size}.")
        batches = _BalancedBatches(resize_crops(np.asarray(crops), size), labels, cfg.train.batch, seed,
                                   landmarks, cfg.sbi_workers,
                                   resize_crops(given_fakes, size) if given_fakes is not None else None)
        self.history, losses = [], []
        self.best_step, self.best_val_auc = None, None
        best, best_key = None, None

        def feed(step: int) -> dict:
            images, y = batches(step)
            return {"images": parallel.put_batch(images, mesh), "labels": parallel.put_batch(y, mesh)}

        def evaluate(state, step: int) -> None:
            """Validation AUC; the best step (ties: the lower validation loss) is kept."""
            nonlocal best, best_key
            record = {"step": step, "loss": round(float(np.mean(losses[-cfg.train.eval_every:])), 6)}
            variables = {"params": state.params, "batch_stats": state.model_state}
            if val is not None:
                logits = self._logits(variables, val_crops)
                record["val_auc"] = float(roc_auc_score(val_labels, logits))
                record["val_loss"] = round(float(optax.sigmoid_binary_cross_entropy(
                    np.asarray(logits, np.float32), np.asarray(val_labels, np.float32)).mean()), 6)
                if best_key is None or (record["val_auc"], -record["val_loss"]) > best_key:
                    best_key = (record["val_auc"], -record["val_loss"])
                    self.best_step, self.best_val_auc = step, record["val_auc"]
                    best = _host_copy(variables)  # a copy: the state's buffers are donated to the next step
            self.history.append(record)

        try:
            done = run_loop(prog.init(seed), prog.step, feed, start=0, steps=cfg.train.steps, log_every=1,
                            nan_patience=1, hooks=(Hook(cfg.train.eval_every, evaluate),),
                            on_log=lambda record: losses.append(record["loss"]), progress=progress,
                            task=f"train {self.name}", advice="lower train.lr")
        finally:
            batches.close()
        if best is None:
            self.best_step = cfg.train.steps
            best = _host_copy({"params": done.state.params, "batch_stats": done.state.model_state})
        self.variables, self._on_device = best, None
        self.train_losses = np.asarray(losses, np.float32)
        return self

    # -- inference

    def _logits(self, variables, crops: np.ndarray) -> np.ndarray:
        """float32 (N,) logits of uint8 crops, in padded batches of train.eval_batch split over the mesh."""
        prog, size = self.programs(), self.config.model.size
        batch = -(-self.config.train.eval_batch // prog.mesh.size) * prog.mesh.size
        out = []
        for start in range(0, len(crops), batch):
            chunk = resize_crops(np.asarray(crops[start:start + batch]), size)
            padded = np.zeros((batch, size, size, 3), np.uint8)
            padded[:len(chunk)] = chunk
            logits = prog.predict(variables, parallel.put_batch(padded, prog.mesh))
            out.append(np.asarray(jax.device_get(logits))[:len(chunk)])
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def score(self, crops: np.ndarray) -> np.ndarray:
        """float64 (N,) probability that each uint8 (N, S, S, 3) crop is fake."""
        if self.variables is None:
            raise RuntimeError(f"{self.name} detector is not fitted; call fit() first")
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[-1] != 3:
            raise ValueError(f"expected crops of shape (N, H, W, 3), got {crops.shape}")
        if self._on_device is None:
            self._on_device = jax.tree.map(lambda x: parallel.put_replicated(x, self.programs().mesh), self.variables)
        logits = self._logits(self._on_device, crops).astype(np.float64)
        return 1.0 / (1.0 + np.exp(-logits))

    # -- persistence

    def save(self, directory: str | Path) -> Path:
        """Write variables/ (orbax), config.json and detector.json (selection history) to `directory`."""
        if self.variables is None:
            raise RuntimeError(f"{self.name} detector is not fitted; nothing to save")
        directory = Path(directory).absolute()
        directory.mkdir(parents=True, exist_ok=True)
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(directory / "variables", self.variables, force=True)
        meta = {"detector": self.name, "kind": "cnn", "best_step": self.best_step,
                "best_val_auc": self.best_val_auc, "history": self.history}
        write_json(directory / "config.json", self.config.to_dict(), sort_keys=True)
        write_json(directory / "detector.json", meta, sort_keys=True)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "CNNDetector":
        directory = Path(directory).absolute()
        if not (directory / "config.json").is_file() or not (directory / "variables").is_dir():
            raise UserError(f"{directory} is not a saved CNN detector (no config.json and variables/); "
                            "pass the folder given to save().")
        try:
            config = ml_collections.ConfigDict(read_json(directory / "config.json"))
            arch = config.model.arch
        except (ValueError, TypeError, AttributeError, KeyError):
            config, arch = None, None
        if arch not in CNN_MODELS:
            raise UserError(f"{directory / 'config.json'} is no CNN detector config of {', '.join(CNN_MODELS.names())}; "
                            "pass the folder given to save().")
        detector = cls(config)
        meta = read_json(directory / "detector.json") if (directory / "detector.json").is_file() else {}
        abstract = detector.programs().abstract
        target = {k: jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), part)
                  for k, part in (("params", abstract.params), ("batch_stats", abstract.model_state))}
        with ocp.StandardCheckpointer() as checkpointer:
            detector.variables = jax.device_get(checkpointer.restore(directory / "variables", target))
        detector.history = meta.get("history", [])
        detector.best_step, detector.best_val_auc = meta.get("best_step"), meta.get("best_val_auc")
        return detector
