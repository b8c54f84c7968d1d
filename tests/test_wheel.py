"""The wheel built from the repository works on its own: configs ship inside it, and `dfjax train`
and `dfjax detect-eval` run from a directory that is not the repository."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.ci
def test_wheel_installs_and_trains_from_another_directory(tmp_path):
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(dist)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next(dist.glob("dfjax-*.whl"))
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    # The dependencies (jax, dlib, ...) come from this interpreter's site-packages through a path
    # entry, which does not run its .pth files: the editable dfjax of the repository stays invisible.
    (next((env_dir / "lib").glob("python3*")) / "site-packages" / "deps.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n")
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}
    where = subprocess.run([str(python), "-c", "import dfjax, dfjax.configs; print(dfjax.__file__)"],
                           cwd=away, env=env, capture_output=True, text=True)
    assert where.returncode == 0 and str(env_dir) in where.stdout, where.stdout + where.stderr
    dfjax = str(env_dir / "bin" / "dfjax")
    train = subprocess.run([dfjax, "train", "--workdir", "run", "--steps", "2", "--quiet", "--set", "model.tiny_res=32",
                            "--set", "train.batch_per_side=4", "--set", "data.synth_frames=12",
                            "--set", "data.synth_size=64"], cwd=away, env=env, capture_output=True, text=True,
                           timeout=600)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    assert (away / "run" / "checkpoints" / "2").is_dir() and (away / "run" / "previews" / "latest.png").exists()
    reenact = subprocess.run([dfjax, "train", "--config", "reenact.py:tiny", "--workdir", "re", "--steps", "1",
                              "--quiet", "--set", "model.res=32", "--set", "model.depth=3",
                              "--set", "train.batch_per_side=2", "--set", "data.synth_frames=12",
                              "--set", "data.synth_size=64"], cwd=away, env=env, capture_output=True, text=True,
                             timeout=600)
    assert reenact.returncode == 0, reenact.stdout[-3000:] + reenact.stderr[-3000:]
    helped = subprocess.run([dfjax, "detect-eval", "--help"], cwd=away, env=env, capture_output=True, text=True)
    assert helped.returncode == 0 and "--detector" in helped.stdout
