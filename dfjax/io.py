"""Every file dfjax writes goes through here: atomic writes of files and folders, and JSON that
always parses.

A file is written to a hidden temporary name beside its destination and renamed into place when
complete; a folder is built under `.NAME.partial` and renamed likewise. A crash or Ctrl-C therefore
never leaves a half-written output that looks finished. Outputs that belong together (a video, its
masks and its sidecar) are `staged`: all written under temporary names and renamed at the end, so a
failing run leaves the previous run's outputs as they were. `check_writable` and `check_new_outputs`
refuse an output path before any work starts. JSON is strict: numpy values become plain
numbers and lists, NaN and infinity become null (JSON has neither).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from dfjax.errors import UserError


def jsonable(x: Any) -> Any:
    """Plain JSON values: numpy arrays and scalars to lists and numbers, NaN/inf to None, keys and
    paths to str."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def dumps(obj: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    """Strict JSON text of `obj` (compact unless `indent`)."""
    separators = None if indent is not None else (",", ":")
    return json.dumps(jsonable(obj), indent=indent, sort_keys=sort_keys, separators=separators, allow_nan=False)


def partial_path(path: str | Path) -> Path:
    """The hidden temporary name beside `path` that an atomic write fills first (same suffix, so
    writers that choose a format by extension still work)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def atomic_write(path: str | Path, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Call `write(file_object)` on a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), mode="w")


def write_json(path: str | Path, obj: Any, indent: int | None = 1, sort_keys: bool = False) -> Path:
    """`obj` as strict JSON (NaN -> null), atomically."""
    return write_text(path, dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


@contextlib.contextmanager
def atomic_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder under `.NAME.partial` and rename it to `path` when the block ends cleanly.

    On an exception the partial folder is removed and `path` is left as it was. With `overwrite`
    an existing `path` is replaced only once the new one is complete.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(path)
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def check_writable(path: str | Path, folder: bool = False) -> None:
    """A UserError now, before any work, when `path` cannot be written: an existing file where a folder
    is wanted (`folder`), an existing folder where a file is, or no writable folder to create it in."""
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise UserError(f"-o {path} is a file, not a folder; pass a folder path to -o (or remove that file).")
        if not folder and path.is_dir():
            raise UserError(f"-o {path} is a folder; pass a file name to -o, not a folder.")
    ancestor = path if folder else path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"cannot write {path}: {ancestor} is a file, not a folder; choose another output path.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {path}: {ancestor} is not writable; choose a writable output path.")


def check_new_outputs(paths: list[Path], overwrite: bool) -> None:
    """A UserError naming the first of `paths` that exists, unless `overwrite`."""
    existing = [Path(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        others = f" (and {len(existing) - 1} more of its outputs)" if len(existing) > 1 else ""
        raise UserError(f"{existing[0]} already exists{others}; pass --overwrite to replace it, or choose another -o.")


def staged_path(path: str | Path) -> Path:
    """The hidden name an output is written under until the outputs staged with it are complete."""
    path = Path(path)
    return path.with_name(f".{path.stem}.partial.staged{path.suffix}")


@contextlib.contextmanager
def staged(paths: list[Path]) -> Iterator[dict[Path, Path]]:
    """Temporary names {output: temporary} for outputs that belong together.

    The block writes the temporaries; when it ends cleanly each one written is renamed over its output,
    so earlier outputs are replaced only once every new one is complete. On an exception the
    temporaries are removed and the outputs stay as they were.
    """
    temporaries = {Path(p): staged_path(p) for p in paths}
    for tmp in temporaries.values():
        tmp.unlink(missing_ok=True)
    try:
        yield temporaries
    except BaseException:
        for tmp in temporaries.values():
            tmp.unlink(missing_ok=True)
        raise
    for path, tmp in temporaries.items():
        if tmp.exists():
            os.replace(tmp, path)
