"""Reenactment mode: a tiny reenactor learns its target, resumes exactly, and drives a video end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dfjax import media
from dfjax.cli import app
from dfjax.config import apply_overrides, load_config
from dfjax.data.synthetic import synthesize
from dfjax.training.core import train

runner = CliRunner()


@pytest.fixture(scope="module")
def target_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_reenact")
    synthesize(out, frames=96, size=96, face_size=64, identities=("a",))
    return out / "facesets" / "a"


def tiny_config(target: Path, steps: int, **extra):
    overrides = [f"data.a='{target}'", "model.res=32", "model.depth=3", "model.features=16", "gan.n_layers=2",
                 "train.batch_per_side=8", "data.holdout=0.25", f"train.steps={steps}", "log.every=1",
                 "log.preview_every=100", "log.checkpoint_every=100"]
    return apply_overrides(load_config("configs/reenact.py:tiny"), overrides + [f"{k}={v}" for k, v in extra.items()])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, target_set) -> Path:
    workdir = tmp_path_factory.mktemp("reenactor")
    summary = train(tiny_config(target_set, 250, **{"train.lr": 1e-3}), workdir)
    assert summary["step"] == 250 and summary["faces_held_out"] == 24
    return workdir


def test_reenactor_beats_the_mean_frame_on_held_out_frames(trained):
    from dfjax.reenact import self_reenactment

    result = self_reenactment(trained)
    scores, baseline = result["scores"], result["mean_frame_baseline"]
    assert result["frames_held_out"] == 24 and result["outputs"].shape == (24, 32, 32, 3)
    assert scores["psnr"] > baseline["psnr"] + 1.0 and scores["l1"] < baseline["l1"]
    assert scores["face_psnr"] > baseline["face_psnr"] + 1.0
    assert np.isfinite(scores["akd_px"]) and set(scores["pose_error_deg"]) == {"yaw", "pitch", "roll"}
    assert (trained / "previews" / "latest.png").exists() and (trained / "target.npz").exists()


def _params(workdir: Path) -> dict:
    import orbax.checkpoint as ocp

    manager = ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints")
    restored = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore())
    manager.close()
    return restored


@pytest.mark.slow  # a second training run
@pytest.mark.ci
def test_resume_equals_an_uninterrupted_run(tmp_path, target_set, trained):
    import jax

    lr = {"train.lr": 1e-3}  # as the `trained` fixture: the runs share its compiled step
    train(tiny_config(target_set, 6, **lr), tmp_path / "straight")
    train(tiny_config(target_set, 3, **lr), tmp_path / "resumed")
    summary = train(tiny_config(target_set, 6, **lr), tmp_path / "resumed")
    assert summary["steps_run"] == 3
    straight, resumed = _params(tmp_path / "straight"), _params(tmp_path / "resumed")
    for key in ("params", "ema", "d_params"):
        for a, b in zip(jax.tree.leaves(straight[key]), jax.tree.leaves(resumed[key])):
            np.testing.assert_array_equal(a, b)


def test_reenact_cli_writes_video_masks_and_sidecar(tmp_path, trained, panned_video):
    out = tmp_path / "out" / "reenacted.mp4"
    result = runner.invoke(app, ["reenact", "--model", str(trained), "--driver", str(panned_video), "-o", str(out),
                                 "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    masks, sidecar = out.with_suffix(".masks.mkv"), out.with_suffix(".json")
    assert out.exists() and masks.exists() and sidecar.exists()
    driver_frames = media.probe(panned_video).frames
    assert media.probe(out).frames == driver_frames == media.probe(masks).frames
    tag = media.container_metadata(out)
    assert tag["dfjax_synthetic"] == "true" and "SYNTHETIC" in tag["comment"] and tag["dfjax_direction"] == "reenact"
    records = json.loads(sidecar.read_text())
    assert len(records["frames"]) == driver_frames and records["mode"] == "reenact"
    assert sum(r["manipulated"] for r in records["frames"]) >= driver_frames - 2
    assert not list(out.parent.glob(".*partial*"))


def test_bad_inputs_exit_2(tmp_path, trained, target_set, panned_video):
    swap_like = tmp_path / "swap_run"
    swap_like.mkdir()
    (swap_like / "config.json").write_text(json.dumps({"model": {"arch": "tiny"}}))
    not_video = tmp_path / "notes.txt"
    not_video.write_text("hello")
    cases = [
        ["reenact", "--model", str(tmp_path / "missing"), "--driver", str(panned_video), "-o", str(tmp_path / "o.mp4")],
        ["reenact", "--model", str(swap_like), "--driver", str(panned_video), "-o", str(tmp_path / "o.mp4")],
        ["reenact", "--model", str(trained), "--driver", str(not_video), "-o", str(tmp_path / "o.mp4")],
        ["reenact", "--model", str(trained), "--driver", str(panned_video), "-o", str(tmp_path / "o.png")],
        ["train", "--config", "configs/reenact.py:tiny", "--a", str(tmp_path / "nope"), "--workdir", str(tmp_path / "w1")],
        ["train", "--config", "configs/reenact.py:tiny", "--a", str(target_set), "--b", str(target_set),
         "--workdir", str(tmp_path / "w2")],
    ]
    for args in cases:
        result = runner.invoke(app, args + ["--quiet"])
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output and "Traceback" not in result.output
    swapped = runner.invoke(app, ["swap", str(panned_video), "-o", str(tmp_path / "s.mp4"), "--model", str(trained),
                                  "--quiet"])
    assert swapped.exit_code == 2 and "holds a reenactor" in swapped.output, swapped.output
    assert not (tmp_path / "s.mp4").exists()


def test_reenact_benchmark_reports_stages_ceiling_and_the_whole_command(trained, panned_video):
    """benchmarks/reenact.py (#15): each stage's CPU per driver frame, the ceiling their sum implies for the
    cores, and `reenact` end to end in a fresh process as a fraction of it, every line JSON."""
    import subprocess
    import sys

    driver = panned_video
    done = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "benchmarks" / "reenact.py"),
                           "--model", str(trained), "--driver", str(driver)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    header, *stages, ceiling, end = [json.loads(line) for line in done.stdout.splitlines()]
    frames = media.probe(driver).frames
    assert header["frames"] == frames and header["model_step"] == 250
    assert [s["stage"] for s in stages] == ["decode", "faces", "maps+generation", "paste", "encode"]
    assert stages[2]["faces"] >= frames - 2  # the photo's face is found in (nearly) every frame
    total = sum(s["cpu_ms_per_frame"] for s in stages)
    assert ceiling["cpu_ms_per_frame_total"] == pytest.approx(total, abs=0.1)
    assert ceiling["ceiling_frames_per_s"] == pytest.approx(ceiling["cores"] * 1e3 / total, rel=0.02)
    assert end["case"] == "end_to_end" and end["frames_reenacted"] == stages[2]["faces"]
    assert 0 < end["fraction_of_ceiling"] == pytest.approx(end["frames_per_s"] / ceiling["ceiling_frames_per_s"],
                                                           abs=0.01)
