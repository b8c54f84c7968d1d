"""What the benchmark scripts share: JSON-line output (stdout gets only JSON, --out gets the same lines),
CPU-timed calls, and the stage-by-stage ceiling of a pipeline."""

from __future__ import annotations

import json
import os
import time
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


def cpu_timed(fn):
    """(result, wall seconds, CPU seconds of this process, every thread counted) of fn()."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Stages:
    """A pipeline's stages, each measured alone, as JSON lines with their CPU milliseconds per frame; then
    the ceiling they imply for the cores available (cores x 1000 / the sum) and the limit of each stage
    that runs on one thread of its own (`serial`: its name -> the stages it is made of)."""

    def __init__(self, emit: Reporter, benchmark: str, frames: int, cores: int, **tags):
        """`tags`: keys every line of these stages carries (e.g. which repeat of the measurement)."""
        self.emit, self.benchmark, self.frames, self.cores, self.tags = emit, benchmark, frames, cores, tags
        self.cpu_ms: dict[str, float] = {}

    def __call__(self, name: str, wall: float, cpu: float, **extra) -> None:
        n = self.frames
        self.cpu_ms[name] = 1e3 * cpu / n
        self.emit({"benchmark": self.benchmark, **self.tags, "stage": name, "seconds": round(wall, 3),
                   "cpu_ms_per_frame": round(self.cpu_ms[name], 2), "ms_per_frame": round(1e3 * wall / n, 2),
                   "frames_per_s": round(n / wall, 1), **extra})

    def ceiling(self, serial: dict[str, tuple[str, ...]]) -> float:
        total = sum(self.cpu_ms.values())
        ceiling = self.cores * 1e3 / total
        limits = {name: 1e3 / sum(self.cpu_ms[s] for s in parts) for name, parts in serial.items()}
        self.emit({"benchmark": self.benchmark, **self.tags, "case": "ceiling", "cores": self.cores,
                   "cpu_ms_per_frame_total": round(total, 2), "ceiling_frames_per_s": round(ceiling, 1),
                   "serial_stage_limits_frames_per_s": {k: round(v, 1) for k, v in limits.items()},
                   "bound": round(min(ceiling, *limits.values()), 1)})
        return ceiling


def in_fresh_process(script: str | Path, function: str, *args, face_workers_first: bool = False):
    """`function(*args)` of the benchmark file `script`, called in a new Python process started with
    `-c` (arguments and result as JSON). Its first call starts as cold as a `dfjax` command does, and its
    face workers, like the CLI's, have no heavy main module to import again (a benchmark file imports
    JAX; a worker forked for a call made from it would import that file too). `face_workers_first`:
    the process starts the face workers' server before it imports anything else, as `dfjax swap` and
    `dfjax reenact` do (dfjax.faces.server), so that its start overlaps the imports there too."""
    import sys

    first = ("sys.path.insert(0, sys.argv[4]); from dfjax.faces.server import start_face_worker_server; "
             "start_face_worker_server(); " if face_workers_first else "")
    code = ("import importlib.util, json, sys; " + first +
            "spec = importlib.util.spec_from_file_location('benchmark', sys.argv[1]); "
            "module = sys.modules['benchmark'] = importlib.util.module_from_spec(spec); "
            "spec.loader.exec_module(module); "
            "print(json.dumps(getattr(module, sys.argv[2])(*json.loads(sys.argv[3]))))")
    root = str(Path(__file__).resolve().parents[1])
    out = run_command([sys.executable, "-c", code, str(script), function, json.dumps(list(args)), root],
                      f"{function} of {script} in its own process")
    return json.loads(out.strip().splitlines()[-1])


def run_command(command: list[str], what: str, cwd: str | Path | None = None) -> str:
    """The standard output of `command`; a RuntimeError with the end of its standard error (`what`
    failed) when it exits with an error."""
    import subprocess

    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def throwaway_model(spec: str, overrides: list[str] = (), name: str = "model") -> Path:
    """A workdir of `spec` (configs/FILE.py[:ARG]) trained for a few steps on its built-in synthetic data,
    in a new temporary folder: a benchmark that times a model depends on its size, not on how good it is."""
    import tempfile

    from dfjax.config import apply_overrides, load_config
    from dfjax.training.core import train

    workdir = Path(tempfile.mkdtemp()) / name
    train(apply_overrides(load_config(spec), ["train.steps=5", "data.synth_frames=32", *overrides]), workdir)
    return workdir
