"""The benchmark scripts run, print only JSON lines, and skip cleanly when their data is missing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script: str, *args: str) -> list[dict]:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]  # every stdout line is JSON


@pytest.mark.parametrize("script", ["extract.py", "landmarks.py"])
def test_missing_data_gives_one_skipped_line(script, tmp_path):
    lines = run(script, str(tmp_path / "absent.file"))
    assert len(lines) == 1 and "skipped" in lines[0]


def test_pose_gaze_tiny_run():
    lines = run("pose_gaze.py", "--frames", "6", "--sigmas", "0", "--no-dlib")
    header, result = lines
    assert header["camera_check_mae"] == {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}
    assert result["frames_scored"] == 6 and result["yaw_mae"] < 10 and result["roll_mae"] < 5


def test_extract_measures():
    spec = importlib.util.spec_from_file_location("bench_extract", BENCHMARKS / "extract.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.runs([1, 2, 3, 7, 9, 10]) == [[1, 3], [7, 7], [9, 10]]
    # two points moving 1 px per frame, inter-ocular distance 10: jitter 0.1, second difference 0
    seq = np.stack([np.array([[t, 0.0], [t, 5.0]]) for t in range(5)])
    iod = np.full(5, 10.0)
    assert bench.jitter(seq, iod) == pytest.approx(0.1)
    assert bench.jitter(seq, iod, order=2) == pytest.approx(0.0)


def test_detect_tiny_run(tmp_path):
    out = tmp_path / "detect.jsonl"
    lines = run("detect.py", "--tiny", "--detectors", "spectral,dct,meso4", "--steps", "2", "--frames", "16",
                "--out", str(out))
    header, *results = lines
    assert header["detector"] == "header" and header["tiny"] is True
    assert [r["detector"] for r in results] == ["spectral", "dct", "meso4"]
    assert all(r["train_images_per_s"] > 0 and r["infer_frames_per_s"] > 0 for r in results)
    assert results[-1]["size"] == 64 and results[-1]["loss_finite"] and results[-1]["params_m"] > 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == lines


def test_animate_tiny_run(tmp_path, astronaut_png, panned_video):
    out = tmp_path / "animate.jsonl"
    lines = run("animate.py", "--steps", "1", "--warmup", "1", "--default-steps", "0", "--frames", "6",
                "--source", str(astronaut_png), "--driver", str(panned_video), "--out", str(out))
    header, train, default, inference, *stages, ceiling, end = lines
    assert header["case"] == "header" and header["cores"] >= 1
    assert train["config"] == "configs/animate.py:tiny" and train["images_per_s"] > 0 and train["loss_finite"]
    assert "skipped" in default and inference["frames"] == 6
    assert [s["stage"] for s in stages] == ["decode", "faces", "keypoints+generation", "paste", "encode"]
    assert all(s["cpu_ms_per_frame"] >= 0 for s in stages) and stages[2]["cpu_ms_per_frame"] > 0
    total = sum(s["cpu_ms_per_frame"] for s in stages)
    assert ceiling["cpu_ms_per_frame_total"] == pytest.approx(total, abs=0.1)
    assert ceiling["ceiling_frames_per_s"] == pytest.approx(ceiling["cores"] * 1e3 / total, rel=0.02)
    assert end["case"] == "end_to_end" and end["frames_animated"] == 6 and 0 < end["fraction_of_ceiling"]
    assert [json.loads(line) for line in out.read_text().splitlines()] == lines


def test_animate_missing_inputs_skip_inference(tmp_path):
    lines = run("animate.py", "--no-train", "--source", str(tmp_path / "absent.jpg"))
    assert len(lines) == 2 and "skipped" in lines[1] and lines[1]["case"] == "inference"


def test_aed_blur_scores_the_sharp_crops_at_zero_and_a_blur_above_it(panned_video):
    header, sharp, soft = run("aed_blur.py", str(panned_video), "--sigmas", "0,0.8")
    assert header["frames"] == 24 and sharp["sigma_px"] == 0 and soft["sigma_px"] == 0.8
    assert sharp["aed"] == 0 and sharp["akd_px256"] == 0 and sharp["frames_scored"] >= 20
    assert soft["aed"] > 0.02  # dlib's descriptor moves with sharpness alone
    assert sharp["copy_source_aed"] is not None and sharp["copy_source_aed"] > 0  # the panned face moves
