"""JSON-line output shared by the benchmark scripts: stdout gets only JSON, --out gets the same lines."""

from __future__ import annotations

import json
import os
from pathlib import Path


class Reporter:
    """Prints JSON lines on stdout and keeps them for the --out file (written atomically)."""

    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, record: dict) -> None:
        line = json.dumps(record)
        self.lines.append(line)
        print(line, flush=True)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.partial")
        tmp.write_text("\n".join(self.lines) + "\n")
        os.replace(tmp, path)
