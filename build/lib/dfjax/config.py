"""Experiment configs: Python files in configs/ whose `get_config(arg)` returns a ConfigDict.

`load_config("configs/swap.py:sae128")` imports the file and calls `get_config("sae128")`;
`apply_overrides(config, ["train.steps=100", "model.dtype='float32'"])` sets values from the command
line (`--set`), parsed as Python literals where possible and type-checked by ConfigDict.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import ml_collections

from dfjax.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def resolve_config_path(spec: str) -> tuple[Path, str | None]:
    """'configs/x.py:arg' -> (path, 'arg'); a bare name 'x' means configs/x.py."""
    path_text, _, arg = spec.partition(":")
    path = Path(path_text)
    if not path.suffix:
        path = CONFIG_DIR / f"{path_text}.py"
    if not path.exists() and (CONFIG_DIR / path.name).exists():
        path = CONFIG_DIR / path.name
    if not path.exists():
        raise UserError(f"config {path} does not exist; pass --config configs/NAME.py[:ARG].")
    return path, (arg or None)


def load_config(spec: str) -> ml_collections.ConfigDict:
    path, arg = resolve_config_path(spec)
    module_spec = importlib.util.spec_from_file_location(f"dfjax_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise UserError(f"{path} has no get_config(arg) function; configs must define one.")
    try:
        config = module.get_config(arg) if arg is not None else module.get_config()
    except (KeyError, ValueError) as exc:
        raise UserError(f"{path} does not accept the argument {arg!r} ({exc}); see its docstring.") from None
    config.config_spec = spec
    return config


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(config: ml_collections.ConfigDict, overrides: list[str]) -> ml_collections.ConfigDict:
    """Apply 'a.b=value' overrides; unknown keys and wrong types are UserErrors."""
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
        value = _parse_value(raw.strip())
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        try:
            node[leaf] = value
        except TypeError as exc:
            raise UserError(f"--set {key}={raw}: {exc}; give a value of the config's type.") from None
    return config


def save_config(config: ml_collections.ConfigDict, path: str | Path) -> None:
    """The resolved config, as JSON, so every run records exactly what it ran."""
    Path(path).write_text(json.dumps(config.to_dict(), indent=1, sort_keys=True, default=str))


def load_saved_config(path: str | Path) -> ml_collections.ConfigDict:
    """The resolved config a run wrote to its workdir (to resume without repeating --config)."""
    return ml_collections.ConfigDict(json.loads(Path(path).read_text()))
