"""Plugins by name: one `Registry` per kind (swap architectures, trainers, losses, face detectors,
masks, deepfake detectors), filled by a decorator where each plugin is defined.

    ARCHITECTURES = Registry("swap architecture", discover="dfjax.models")

    @ARCHITECTURES.register("tiny")
    def tiny(...): ...

    ARCHITECTURES.get("tiny")      # the object; an unknown name is a UserError listing the choices

`discover` names a package whose modules are imported the first time the registry is read, so a new
plugin is one new module in that package: nothing else has to import it.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable, Iterator

from dfjax.errors import UserError


class Registry:
    """Named plugins of one kind."""

    def __init__(self, kind: str, discover: str | None = None):
        self.kind = kind
        self._discover = discover
        self._discovered = discover is None
        self._items: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        """Decorator: file the decorated class or function under `name`."""
        def add(obj):
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"two {self.kind}s are registered as {name!r}")
            self._items[name] = obj
            return obj
        return add

    def _load(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self._discover)
        for info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
            importlib.import_module(info.name)

    def get(self, name: str, option: str | None = None) -> Any:
        """The plugin filed as `name`; `option` names the setting the name came from, for the error."""
        self._load()
        if name not in self._items:
            where = f"{option}={name!r}" if option else f"{self.kind} {name!r}"
            raise UserError(f"{where} is unknown; choose one of {', '.join(self.names())}.")
        return self._items[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, Any]]:
        return [(name, self._items[name]) for name in self.names()]
