"""Experiment configs: one loader, one argument parser, one validator.

A config is a Python file in configs/ (shipped inside the package as `dfjax.configs`) whose
`get_config(arg)` returns a ConfigDict with every default written out. `load_config("swap.py:tiny,gan")`
finds the file (a shipped name, from any working directory, or a path to your own file), passes
the argument through `parse_arg` inside the file, applies `--set key=value` overrides and validates
every value. A mistake (unknown key, wrong type, unknown choice, impossible number) is a UserError
of one sentence naming the key and what it accepts; runs save only validated configs.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

import ml_collections

from dfjax import io
from dfjax.errors import UserError

CONFIG_PACKAGE = "dfjax.configs"


def config_dir() -> Path:
    """Where the shipped configs are (the repository's configs/, or inside the installed package)."""
    return Path(importlib.import_module(CONFIG_PACKAGE).__file__).parent


# ----------------------------------------------------------------------------- the argument parser


def log_settings(tiny: bool) -> ml_collections.ConfigDict:
    """The `log` section every trainer's config shares: metrics every 10 steps, previews and checkpoints
    (the last 3 kept) every 250 steps for tiny runs, 1000 / 2000 otherwise."""
    return ml_collections.ConfigDict({"every": 10, "preview_every": 250 if tiny else 1000,
                                      "checkpoint_every": 250 if tiny else 2000, "keep": 3})


def parse_arg(arg: str | None, **spec) -> ml_collections.ConfigDict:
    """The argument after ':' of `--config FILE.py:ARG`, e.g. "tiny,gan,res=128", as a ConfigDict.

    `spec` gives each field's default (and so its type): `res=64` takes `res=128`; `gan=False`
    takes a bare `gan`; a tuple of choices, `arch=("tiny", "original")`, takes one of them bare
    (`tiny`) or as `arch=tiny` and defaults to the first. Anything else is a ValueError naming the
    accepted words.
    """
    choices = {k: v for k, v in spec.items() if isinstance(v, tuple)}
    out = ml_collections.ConfigDict({k: (v[0] if isinstance(v, tuple) else v) for k, v in spec.items()})

    def accepted() -> str:
        words = [f"{k}={'|'.join(map(str, v))}" for k, v in choices.items()]
        words += [k for k, v in spec.items() if isinstance(v, bool)]
        words += [f"{k}=<{type(v).__name__}>" for k, v in spec.items() if not isinstance(v, (bool, tuple))]
        return ", ".join(words)

    for part in (p.strip() for p in (arg or "").split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            owner = next((k for k, v in choices.items() if key in v), None)
            if owner is not None:
                out[owner] = key
            elif isinstance(spec.get(key), bool):
                out[key] = True
            else:
                raise ValueError(f"{key!r} is not one of: {accepted()}")
            continue
        if key not in spec:
            raise ValueError(f"{key!r} is not one of: {accepted()}")
        if key in choices:
            if value not in choices[key]:
                raise ValueError(f"{key}={value} is not one of {'|'.join(map(str, choices[key]))}")
            out[key] = value
        else:
            out[key] = type(spec[key])(_literal(value)) if not isinstance(spec[key], bool) else value in ("1", "true", "True")
    return out


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


# ----------------------------------------------------------------------------- loading


def _config_module(spec_path: str) -> ModuleType:
    path = Path(spec_path if spec_path.endswith(".py") else f"{spec_path}.py")
    shipped = config_dir() / path.name
    if (path.parent in (Path("."), Path("configs")) or not path.exists()) and shipped.exists():
        return importlib.import_module(f"{CONFIG_PACKAGE}.{path.stem}")
    if not path.exists():
        names = ", ".join(sorted(p.stem for p in config_dir().glob("*.py") if not p.stem.startswith("_")))
        raise UserError(f"config {spec_path} does not exist; pass --config with one of {names} "
                        "(e.g. swap.py:tiny) or the path of your own config file.")
    module_spec = importlib.util.spec_from_file_location(f"dfjax_user_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def load_config(spec: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """The config `FILE.py[:ARG]` with `overrides` ("a.b=value") applied, validated."""
    path_text, _, arg = spec.partition(":")
    module = _config_module(path_text)
    if not hasattr(module, "get_config"):
        raise UserError(f"config {path_text} has no get_config(arg) function; configs must define one.")
    try:
        config = module.get_config(arg) if arg else module.get_config()
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"--config {spec}: {exc}; see the docstring of {Path(path_text).name}.") from None
    config.config_spec = spec
    return apply_overrides(config, overrides)


def apply_overrides(config: ml_collections.ConfigDict, overrides: Sequence[str]) -> ml_collections.ConfigDict:
    """Apply 'a.b=value' overrides (values parsed as Python literals where possible), then validate."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r} is not KEY=VALUE; write e.g. --set train.steps=100.")
        *parents, leaf = key.strip().split(".")
        node = config
        try:
            for part in parents:
                node = node[part]
            current = node[leaf]
        except (KeyError, AttributeError, TypeError):
            raise UserError(f"--set {key}: the config has no such key; see the config file for its keys.") from None
        value = _literal(raw.strip())
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        try:
            node[leaf] = value
        except TypeError:
            raise UserError(f"--set {key}={raw}: {key} takes a {type(current).__name__} "
                            f"(now {current!r}); give a value of that type.") from None
    return validate(config)


def save_config(config: ml_collections.ConfigDict, path: str | Path) -> None:
    """The resolved (validated) config, as JSON, atomically, so every run records exactly what it ran."""
    io.write_text(path, json.dumps(config.to_dict(), indent=1, sort_keys=True, default=str))


def load_saved_config(path: str | Path) -> ml_collections.ConfigDict:
    """The resolved config a run wrote to its workdir (to resume without repeating --config), validated."""
    path = Path(path)
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable dfjax config ({exc}); restore it, or start a new --workdir.") \
            from None
    return validate(ml_collections.ConfigDict(saved))


# ----------------------------------------------------------------------------- validation


def _registry_names(module: str, name: str) -> Callable[[], list[str]]:
    return lambda: getattr(importlib.import_module(module), name).names()


def _choices(*names) -> Callable[[], list[str]]:
    return lambda: list(names)


CHOICES: dict[str, Callable[[], list[str]]] = {
    "trainer": _registry_names("dfjax.training.trainer", "TRAINERS"),
    "model.dtype": _choices("float32", "bfloat16", "float16"),
    "train.schedule": lambda: sorted(importlib.import_module("dfjax.training.state").SCHEDULES),
    "train.optimizer": lambda: sorted(importlib.import_module("dfjax.training.state").OPTIMIZERS),
    "gan.objective": _registry_names("dfjax.losses", "GAN_OBJECTIVES"),
}
# (minimum, whether the minimum itself is allowed); integers and floats alike
LOWER_BOUNDS: dict[str, tuple[float, bool]] = {
    "train.steps": (1, True), "train.batch_per_side": (1, True), "train.batch": (1, True), "train.lr": (0, False),
    "train.warmup_steps": (0, True), "train.grad_clip": (0, True), "train.nan_patience": (1, True),
    "train.eval_every": (1, True), "train.eval_batch": (1, True), "gan.lr": (0, False), "gan.weight": (0, True),
    "log.every": (1, True), "log.preview_every": (1, True), "log.checkpoint_every": (1, True), "log.keep": (1, True),
    "model.cond_window": (0, True), "model.size": (8, True), "model.res": (16, True), "data.synth_frames": (2, True),
    "data.synth_size": (32, True), "data.eye_weight": (0, True), "data.mouth_weight": (0, True),
}
UNIT_INTERVAL = ("train.ema_decay", "data.holdout", "train.b1", "train.b2")  # in [0, 1)


def _get(config: ml_collections.ConfigDict, key: str) -> tuple[bool, Any]:
    node = config
    for part in key.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Check every value the config has against the rules above and the trainer's own; a UserError
    of one sentence naming the key and the values it accepts. Returns the config."""
    for key, allowed in CHOICES.items():
        present, value = _get(config, key)
        if present and value not in (names := allowed()):
            raise UserError(f"{key}={value!r} is unknown; choose one of {', '.join(map(str, names))}.")
    for key, (low, inclusive) in LOWER_BOUNDS.items():
        present, value = _get(config, key)
        if present and isinstance(value, (int, float)) and (value < low or (value == low and not inclusive)):
            relation = ">=" if inclusive else ">"
            raise UserError(f"{key}={value} is impossible; give a number {relation} {low}.")
    for key in UNIT_INTERVAL:
        present, value = _get(config, key)
        if present and not 0.0 <= value < 1.0:
            raise UserError(f"{key}={value} is impossible; give a number in [0, 1).")
    if "loss" in config:
        for name, value in config.loss.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise UserError(f"loss.{name}={value} is impossible; loss weights are >= 0.")
    present, trainer = _get(config, "trainer")
    if present:
        check = getattr(importlib.import_module("dfjax.training.trainer").TRAINERS.get(trainer), "check_config", None)
        if check is not None:
            check(config)
    return config
