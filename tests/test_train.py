"""`dfjax train` on tiny synthetic face sets: learning, exact resume, signals, bad input, sharding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from dfjax.cli import app
from dfjax.config import apply_overrides, load_config
from dfjax.data.synthetic import synthesize
from dfjax.errors import UserError
from dfjax.training.core import train

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_sets(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("synth")
    synthesize(out, frames=24, size=96, face_size=64)
    return out / "facesets" / "a", out / "facesets" / "b"


def tiny_config(sets, steps: int, **extra):
    config = load_config("configs/swap.py:tiny")
    overrides = [f"data.a='{sets[0]}'", f"data.b='{sets[1]}'", "model.tiny_res=32", "train.batch_per_side=4",
                 f"train.steps={steps}", "log.every=1", "log.preview_every=5", "log.checkpoint_every=5"]
    return apply_overrides(config, overrides + [f"{k}={v}" for k, v in extra.items()])


def final_params(workdir: Path) -> dict:
    """The generator parameters of the run's latest checkpoint, as numpy arrays."""
    import orbax.checkpoint as ocp

    manager = ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints")
    restored = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore())
    manager.close()
    return restored["params"]


def losses_of(workdir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_loss_falls_and_previews_are_written(tmp_path, tiny_sets):
    summary = train(tiny_config(tiny_sets, 60, **{"train.lr": 1e-3}), tmp_path)
    losses = losses_of(tmp_path)
    assert summary["step"] == 60 and len(losses) == 60
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:5])
    preview = tmp_path / "previews" / "latest.png"
    from dfjax.media import read_image

    grid = read_image(preview)
    assert grid.shape == (4 * 128, 8 * 128, 3)  # 4 faces; A, A->A, A->B, mask, B, B->B, B->A, mask
    assert (tmp_path / "config.json").exists() and list((tmp_path / "tb").iterdir())


def test_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path, tiny_sets):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(tiny_config(tiny_sets, 10), straight)
    train(tiny_config(tiny_sets, 5), split)
    summary = train(tiny_config(tiny_sets, 10), split)
    assert summary["steps_run"] == 5
    np.testing.assert_allclose(losses_of(split), losses_of(straight), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(final_params(straight)), jax.tree.leaves(final_params(split))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path, tiny_sets):
    workdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "dfjax.cli", "train", "--workdir", str(workdir), "--a", str(tiny_sets[0]),
           "--b", str(tiny_sets[1]), "--quiet", "--set", "model.tiny_res=32", "--set", "train.batch_per_side=4",
           "--set", "log.every=1", "--set", "log.checkpoint_every=100000", "--steps", "100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = workdir / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "SIGTERM" in out
    saved = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    assert saved and saved[-1] >= 3


def test_gan_with_spectral_norm_trains_both_players(tmp_path, tiny_sets):
    config = tiny_config(tiny_sets, 3, **{"gan.enabled": True, "gan.features": 8, "gan.n_layers": 2})
    train(config, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_adv_a"]) for r in records)
    assert records[-1]["bad_steps"] == 0


def test_perceptual_loss_reads_the_named_weights_file(tmp_path, tiny_sets):
    from dfjax import losses

    rng = np.random.default_rng(0)
    weights = tmp_path / "vgg16.npz"
    np.savez(weights, **{f"{n}/{p}": rng.standard_normal(shape, dtype=np.float32) * 0.05
                         for n, (k, b) in losses._vgg16_shapes().items() for p, shape in (("kernel", k), ("bias", b))})
    with_vgg = tiny_config(tiny_sets, 2, **{"loss.perceptual": 0.5, "loss.vgg16_weights": f"'{weights}'"})
    train(with_vgg, tmp_path / "vgg")
    plain = train(tiny_config(tiny_sets, 2), tmp_path / "plain")
    assert losses_of(tmp_path / "vgg")[0] > losses_of(tmp_path / "plain")[0]  # the VGG term is counted
    missing = tiny_config(tiny_sets, 2, **{"loss.perceptual": 0.5, "loss.vgg16_weights": f"'{tmp_path / 'no.h5'}'"})
    with pytest.raises(UserError, match="no.h5"):
        train(missing, tmp_path / "missing")
    assert plain["step"] == 2


def test_streaming_from_host_trains_and_resumes_exactly(tmp_path, tiny_sets):
    config = lambda steps: tiny_config(tiny_sets, steps, **{"data.on_device": False})
    train(config(6), tmp_path / "straight")
    train(config(3), tmp_path / "split")
    train(config(6), tmp_path / "split")
    np.testing.assert_allclose(losses_of(tmp_path / "split"), losses_of(tmp_path / "straight"), rtol=1e-5)
    assert (tmp_path / "split" / "cache" / "maps_a.npy").exists()


def test_non_finite_steps_are_skipped_then_stop_the_run(tmp_path, tiny_sets):
    config = tiny_config(tiny_sets, 50, **{"train.lr": 1e38, "train.grad_clip": 0.0, "train.nan_patience": 3})
    with pytest.raises(UserError, match="non-finite"):
        train(config, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["bad_steps"] >= 3 and len(records) < 50
    # every step is checked, a diverging state is never checkpointed, and metrics.jsonl stays JSON
    assert len(records) <= 4 and not list((tmp_path / "checkpoints").glob("[0-9]*"))
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))


# ----------------------------------------------------------------------------- bad input

def test_checkpoint_of_another_model_is_refused(tmp_path, tiny_sets):
    train(tiny_config(tiny_sets, 1), tmp_path)
    other = tiny_config(tiny_sets, 2, **{"model.tiny_res": 48})
    with pytest.raises(UserError, match="different model"):
        train(other, tmp_path)


def test_cli_refuses_missing_faceset_and_unwritable_workdir(tmp_path, tiny_sets):
    missing = runner.invoke(app, ["train", "--workdir", str(tmp_path / "w"), "--a", str(tmp_path / "nope"),
                                  "--b", str(tiny_sets[1]), "--quiet"])
    assert missing.exit_code == 2 and "does not exist" in missing.output and "Traceback" not in missing.output
    blocker = tmp_path / "file"
    blocker.write_text("x")
    unwritable = runner.invoke(app, ["train", "--workdir", str(blocker / "w"), "--quiet"])
    assert unwritable.exit_code == 2 and "cannot write" in unwritable.output
    bad_key = runner.invoke(app, ["train", "--workdir", str(tmp_path / "w2"), "--set", "train.nope=1", "--quiet"])
    assert bad_key.exit_code == 2 and "no such key" in bad_key.output


# ----------------------------------------------------------------------------- data parallelism

STEP_SCRIPT = """
import sys, numpy as np, jax
from tests.test_train import final_params, tiny_config
from dfjax.training.core import train
a, b, out = sys.argv[1:4]
summary = train(tiny_config((a, b), 3, **{"train.batch_per_side": 8}), out)
np.savez(out + "/params.npz", *[np.asarray(x) for x in jax.tree.leaves(final_params(out))])
print("DEVICES", summary["devices"])
"""


@pytest.mark.slow
@pytest.mark.ci
def test_eight_devices_match_one(tmp_path, tiny_sets):
    results = {}
    for devices in (1, 8):
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
        out = tmp_path / f"d{devices}"
        run = subprocess.run([sys.executable, "-c", STEP_SCRIPT, str(tiny_sets[0]), str(tiny_sets[1]), str(out)],
                             env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        assert f"DEVICES {devices}" in run.stdout
        results[devices] = out
    np.testing.assert_allclose(losses_of(results[8]), losses_of(results[1]), rtol=1e-5)
    eight, one = np.load(results[8] / "params.npz"), np.load(results[1] / "params.npz")
    assert len(eight.files) == len(one.files) > 10
    for name in one.files:
        np.testing.assert_allclose(eight[name], one[name], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
@pytest.mark.ci
def test_two_processes_train_one_model(tmp_path, tiny_sets):
    """Two processes, one CPU device each, joined by --distributed, match one process with two devices."""
    common = ["train", "--a", str(tiny_sets[0]), "--b", str(tiny_sets[1]), "--quiet", "--steps", "3",
              "--set", "model.tiny_res=32", "--set", "train.batch_per_side=4", "--set", "log.every=1"]
    base = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = []
    for pid in range(2):
        env = {**base, "XLA_FLAGS": "--xla_force_host_platform_device_count=1", "JAX_PLATFORMS": "cpu",
               "DFJAX_COORDINATOR": "127.0.0.1:29517", "DFJAX_NUM_PROCESSES": "2", "DFJAX_PROCESS_ID": str(pid)}
        procs.append(subprocess.Popen([sys.executable, "-m", "dfjax.cli", *common, "--distributed",
                                       "--workdir", str(tmp_path / "multi")],
                                      env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs[0][-2000:] + outputs[1][-2000:]
    assert "devices   │ 2" in outputs[0].replace("devices      ", "devices   ")
    single = subprocess.run([sys.executable, "-m", "dfjax.cli", *common, "--workdir", str(tmp_path / "single")],
                            env={**base, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stdout[-2000:]
    np.testing.assert_allclose(losses_of(tmp_path / "multi"), losses_of(tmp_path / "single"), rtol=1e-5)


def test_processes_starting_on_one_workdir_are_not_refused(tmp_path):
    """The processes of a --distributed job check the same workdir is writable at the same moment (the
    race that once failed test_two_processes_train_one_model): none of them is told it cannot write."""
    import threading

    import ml_collections

    from dfjax.training.core import prepare_workdir

    config = ml_collections.ConfigDict({"trainer": "swap", "model": {"arch": "df_tiny"}})
    refused: list[str] = []

    def start_many() -> None:
        for _ in range(300):
            try:
                prepare_workdir(tmp_path / "job", config)
            except UserError as exc:
                refused.append(str(exc))

    threads = [threading.Thread(target=start_many) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not refused, refused[0]
    assert not list((tmp_path / "job").iterdir())  # the probes are gone


# ----------------------------------------------------------------------------- a workdir survives

def _strict(line: str) -> dict:
    """One metrics.jsonl line, refusing the bare NaN / Infinity that are not JSON."""
    return json.loads(line, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))


def _cli_train(workdir: Path, sets, *extra: str) -> list[str]:
    return [sys.executable, "-m", "dfjax.cli", "train", "--workdir", str(workdir), "--quiet",
            *(["--a", str(sets[0]), "--b", str(sets[1])] if sets else []), "--set", "model.tiny_res=32",
            "--set", "train.batch_per_side=4", "--set", "log.every=1", "--set", "data.synth_frames=12",
            "--set", "data.synth_size=64", *extra]


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.kill()  # SIGKILL: no handler runs, nothing is flushed
    proc.wait(timeout=60)


@pytest.mark.slow
@pytest.mark.ci
def test_kill_9_at_a_random_step_and_during_the_render_then_resume(tmp_path, tiny_sets):
    rng = np.random.default_rng()
    workdir = tmp_path / "run"
    metrics = workdir / "metrics.jsonl"
    for attempt in range(2):  # killed at a random step after a checkpoint, twice
        kill_at = int(rng.integers(3, 9)) + 8 * attempt
        proc = subprocess.Popen(_cli_train(workdir, tiny_sets, "--set", "log.checkpoint_every=2", "--steps", "1000"),
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _kill_when(proc, lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= kill_at)
    done = subprocess.run(_cli_train(workdir, tiny_sets, "--steps", "24"), cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    steps = [_strict(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == list(range(1, 25))  # every step once, however often the run was killed
    straight = tmp_path / "straight"
    subprocess.run(_cli_train(straight, tiny_sets, "--steps", "24"), cwd=ROOT, check=True, capture_output=True,
                   timeout=600)
    np.testing.assert_allclose(losses_of(workdir), losses_of(straight), rtol=1e-5)  # the same loss curve
    # killed while rendering the synthetic face sets: the next run renders them again and trains
    synth_run = tmp_path / "synth_run"
    long_render = ("--set", "data.synth_frames=300")  # 12 frames rendered before the 0.1 s poll could kill
    proc = subprocess.Popen(_cli_train(synth_run, None, "--steps", "2", *long_render), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(proc, lambda: (synth_run / "synth" / "videos").exists())
    assert not (synth_run / "synth" / "synth.json").exists()
    done = subprocess.run(_cli_train(synth_run, None, "--steps", "2", *long_render), cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (synth_run / "synth" / "synth.json").exists() and (synth_run / "checkpoints" / "2").is_dir()


def test_second_run_on_a_workdir_in_use_stops_with_one_sentence(tmp_path, tiny_sets):
    import fcntl

    tmp_path.mkdir(exist_ok=True)
    with open(tmp_path / ".lock", "a+") as held:  # as a running `dfjax train` holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("12345")
        held.flush()
        with pytest.raises(UserError, match="in use by another dfjax train .PID 12345"):
            train(tiny_config(tiny_sets, 1), tmp_path)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "config.json").exists()
    assert train(tiny_config(tiny_sets, 1), tmp_path)["step"] == 1  # released: the next run goes ahead


def test_a_refused_or_failed_run_leaves_the_workdir_usable(tmp_path, tiny_sets):
    failed = tiny_config(tiny_sets, 1, **{"data.b": f"'{tmp_path / 'missing'}'"})
    with pytest.raises(UserError, match="does not exist"):
        train(failed, tmp_path)
    assert not (tmp_path / "config.json").exists()  # nothing saved by a run that never trained
    train(tiny_config(tiny_sets, 2, **{"log.checkpoint_every": 1}), tmp_path)
    saved = (tmp_path / "config.json").read_bytes()
    with pytest.raises(UserError, match="different model"):
        train(tiny_config(tiny_sets, 3, **{"model.tiny_res": 48}), tmp_path)
    assert (tmp_path / "config.json").read_bytes() == saved  # a refused run writes nothing
    # a damaged latest checkpoint: the run says so and resumes from the one before it
    for f in (tmp_path / "checkpoints" / "2").rglob("*"):
        if f.is_file():
            f.write_bytes(b"")
    from dfjax.training import core

    warnings = []
    original, core.warn = core.warn, warnings.append
    try:
        summary = train(tiny_config(tiny_sets, 4), tmp_path)
    finally:
        core.warn = original
    assert summary["steps_run"] == 3 and warnings and "checkpoint 2" in warnings[0] and "checkpoint 1" in warnings[0]
    steps = [_strict(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # step 2's record of the damaged run was dropped and logged again
