"""`dfjax extract` end to end: real faces in, face sets out, bad input refused cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dfjax import media
from dfjax.cli import app
from dfjax.data.faceset import FaceSet, load_alignments
from dfjax.extract import extract
from dfjax.faces.align import template_points, transform_points
from dfjax.faces.identity import FaceEncoder, distance
from dfjax.faces.pipeline import ExtractOptions
from tests.conftest import PAN_PX, shared

runner = CliRunner()
SMALL = ExtractOptions(size=96, workers=1)


def test_astronaut_photo_gives_an_aligned_face(tmp_path, astronaut_png):
    summary = extract([astronaut_png], tmp_path / "fs", SMALL)
    fs = FaceSet(tmp_path / "fs")
    assert summary["faces_kept"] == len(fs) == 1
    assert fs.faces.shape == (1, 96, 96, 3) and fs.masks.shape == (1, 96, 96)
    meta = fs.meta[0]
    # the landmarks are on her face (the face occupies roughly x 170-270, y 60-200 of the photo)
    centre = np.asarray(meta["landmarks"]).mean(0)
    assert 170 < centre[0] < 270 and 60 < centre[1] < 200
    # alignment puts her eye corners where the template puts them
    crop_points = transform_points(np.asarray(meta["landmarks"]), np.asarray(meta["matrix"]))
    assert np.abs(crop_points[36:48] - template_points(96)[19:31]).mean() < 3.0
    # the mask covers the centre of the face and not the crop's corners
    assert fs.masks[0][48, 48] == 255 and fs.masks[0][2, 2] == 0
    assert set(meta) >= {"source", "frame", "box", "landmarks", "matrix", "pose", "gaze", "blink", "blur"}
    assert abs(meta["pose"]["yaw"]) < 20


def test_video_face_follows_the_motion(tmp_path, panned_video):
    summary = extract([panned_video], tmp_path / "fs", ExtractOptions(size=64, workers=2, every_n=5))
    fs = FaceSet(tmp_path / "fs")
    assert summary["frames_read"] == 24 and summary["frames_without_face"] == 0
    assert [m["frame"] for m in fs.meta] == list(range(24))
    centres = fs.landmarks().mean(1)
    shift = np.diff(centres[:, 0])
    # the face moves PAN_PX to the right each frame; smoothing may lag but not lose it
    assert abs(np.median(shift) - PAN_PX) < 0.75
    assert np.abs(centres[:, 1] - centres[0, 1]).max() < 2.0
    alignments = load_alignments(fs.alignment_files()[0])
    assert sorted(alignments["faces"]) == list(range(24))
    assert alignments["video"]["frames"] == 24


def test_identity_picks_the_requested_person(tmp_path):
    pair, biden, obama = shared("images/obama_and_biden.jpg"), shared("images/biden.jpg"), shared("images/obama.jpg")
    extract([pair], tmp_path / "fs", SMALL, identity=biden)
    chosen = FaceSet(tmp_path / "fs").meta[0]
    image = media.read_image(pair)
    encoder = FaceEncoder()
    from dfjax.faces.pipeline import identity_descriptor

    face = encoder(image, np.asarray(chosen["landmarks"], np.float32), chosen["box"])
    assert distance(face, identity_descriptor(biden)) < distance(face, identity_descriptor(obama))


def test_frames_without_faces_are_counted_not_hidden(tmp_path):
    clip = shared("hamilton_clip.mp4")
    summary = extract([clip], tmp_path / "fs", ExtractOptions(size=64))
    info = media.probe(clip)
    assert summary["frames_read"] == info.frames
    assert summary["faces_kept"] + summary["frames_without_face"] + sum(summary["dropped"].values()) == info.frames
    assert summary["frames_without_face"] > 0  # profiles and cuts
    assert len(FaceSet(tmp_path / "fs")) == summary["faces_kept"]


def test_hog_cnn_detector_runs_the_cnn_only_where_hog_finds_nothing():
    from dfjax.faces.detect import FaceDetector

    frames = dict(media.iter_frames(shared("hamilton_clip.mp4"), stop=251))
    hog, both = FaceDetector("hog"), FaceDetector("hog,cnn")
    assert hog(frames[250]) == [] and len(both(frames[250])) >= 1  # a face HOG misses
    found = hog(frames[100])
    assert len(found) == 1 and np.array_equal(both(frames[100])[0].box, found[0].box)  # HOG's own box


# ----------------------------------------------------------------------------- bad input

def _refused(args: list[str], out) -> str:
    result = runner.invoke(app, ["extract", *map(str, args), "-o", str(out), "--quiet"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not any(out.parent.glob(f".{out.name}.partial*"))
    return result.output


def test_missing_path(tmp_path):
    assert "does not exist" in _refused([tmp_path / "nope.mp4"], tmp_path / "fs")


def test_unknown_face_detector(tmp_path, astronaut_png):
    assert "unknown face detector 'mtcnn'" in _refused([astronaut_png, "--detector", "mtcnn"], tmp_path / "fs")


def test_text_file_named_mp4(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n")
    out = _refused([fake], tmp_path / "fs")
    assert "notes.mp4" in out and "not a readable video" in out


def test_truncated_video(tmp_path, panned_video):
    cut = tmp_path / "cut.mp4"
    data = panned_video.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert "cut.mp4" in _refused([cut], tmp_path / "fs")


def test_image_without_a_face(tmp_path):
    blank = tmp_path / "wall.png"
    media.write_image(blank, np.full((200, 300, 3), 128, np.uint8))
    assert "no usable face" in _refused([blank], tmp_path / "fs")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "contains no videos or images" in _refused([tmp_path / "empty"], tmp_path / "fs")


def test_existing_output_needs_overwrite(tmp_path, astronaut_png):
    out = tmp_path / "fs"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["extract", str(astronaut_png), "-o", str(out), "--quiet"])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (out / "keep.txt").read_text() == "mine"


# ----------------------------------------------------------------------------- the command itself

@pytest.mark.parametrize("command", ["extract", "synth", "demo"])
def test_every_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "--output" in result.output


def test_console_script_version_and_exit_code(tmp_path):
    exe = [sys.executable, "-m", "dfjax.cli"]
    version = subprocess.run([*exe, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("dfjax ")
    missing = subprocess.run([*exe, "extract", str(tmp_path / "x.mp4"), "-o", str(tmp_path / "o")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_a_command_with_face_workers_exits_clean(tmp_path, panned_video):
    """The console script, which leaves the interpreter's last garbage collection to the operating system
    (cli.main), still exits as it should: code 0, no warning of leaked resources, the frames' shared
    memory unlinked, the face set complete."""
    before = _segments()
    done = subprocess.run([sys.executable, "-m", "dfjax.cli", "extract", str(panned_video), "-o", str(tmp_path / "fs"),
                           "--size", "64", "--workers", "1", "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "leaked" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not _segments() - before
    assert json.loads((tmp_path / "fs" / "faceset.json").read_text())["count"] == 24  # a face in each frame


def test_faceset_json_records_the_options(tmp_path, astronaut_png):
    extract([astronaut_png], tmp_path / "fs", ExtractOptions(size=80, face_type="whole_face", workers=1))
    info = json.loads((tmp_path / "fs" / "faceset.json").read_text())
    assert info["size"] == 80 and info["face_type"] == "whole_face" and info["count"] == 1


def _segments() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob("psm_*")}


def _noise_video(path: Path, frames: int = 300) -> Path:
    rng = np.random.default_rng(0)
    with media.VideoWriter(path, 25, 64, 48, crf=30) as writer:
        for _ in range(frames):
            writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    return path


def test_frames_reach_the_workers_through_shared_memory_that_is_unlinked(tmp_path):
    """More stretches than the ring has slots: every frame comes back as decoded, in order, and the
    slots are gone afterwards, also when the consumer fails half-way."""
    from dfjax.faces.pipeline import face_finders, video_faces

    video = _noise_video(tmp_path / "noise.mp4")
    info = media.probe(video)
    decoded = [frame for _, frame in media.iter_frames(video)]
    before = _segments()
    with face_finders(ExtractOptions(size=64, workers=1), None) as (finders, workers):
        seen = [(index, frame) for index, frame, _ in video_faces(finders, workers, video, info)]
        assert not _segments() - before  # unlinked as soon as the video is done
    assert [index for index, _ in seen] == list(range(300))
    assert all(np.array_equal(a, b) for (_, a), b in zip(seen, decoded))

    during: set[str] = set()
    with pytest.raises(RuntimeError, match="consumer failed"):
        with face_finders(ExtractOptions(size=64, workers=1), None) as (finders, workers):
            for index, _, _ in video_faces(finders, workers, video, info):
                if index == 60:
                    during = _segments() - before
                    raise RuntimeError("consumer failed")
    assert during and not during & _segments()


def test_the_first_faces_sent_ahead_are_those_of_one_stretch(panned_video):
    """`video_faces(head=8)` hands the first 8 frames out alone and their tracker on to the rest of the
    stretch: the same landmarks, crops and masks as without, frame for frame. A tracker started afresh
    at frame 8 (what a plain split would do) gives other landmarks, so the hand-on is what keeps them."""
    from dfjax.faces.pipeline import _init_worker, _video_unit, face_finders, video_faces

    info = media.probe(panned_video)
    runs = []
    for head in (0, 8):  # a pool per video: it takes no more work once the video's last stretch is out
        with face_finders(ExtractOptions(size=64, workers=1), None, full_meta=False) as (finders, workers):
            runs.append([faces[0] for _, _, faces in video_faces(finders, workers, panned_video, info, head=head)])
    whole, ahead = runs
    assert len(whole) == len(ahead) == 24
    for (crop, mask, meta), (crop2, mask2, meta2) in zip(whole, ahead):
        assert np.array_equal(meta["landmarks"], meta2["landmarks"]) and np.array_equal(meta["matrix"], meta2["matrix"])
        assert np.array_equal(crop, crop2) and np.array_equal(mask, mask2)

    _init_worker(ExtractOptions(size=64), None, False)
    frames = [frame for _, frame in media.iter_frames(panned_video)]
    afresh = _video_unit((str(panned_video), 8, frames[8:], 0, 25.0, None)).faces
    assert not np.array_equal(afresh[0][3]["landmarks"], whole[8][2]["landmarks"])


def _landmark_model_loads() -> dict:
    from dfjax.faces import landmarks

    info = landmarks._shape_predictor.cache_info()
    return {"hits": info.hits, "misses": info.misses}


def test_face_workers_fork_with_the_models_loaded():
    """The face workers' server loads dlib's landmark model once; a worker forked from it finds the model
    there (a cache hit) instead of reading the 100 MB file again."""
    from dfjax.faces.pipeline import face_finders

    with face_finders(ExtractOptions(size=64, workers=1), None) as (finders, _):
        loads = finders.apply_async(_landmark_model_loads).get(timeout=60)
    assert loads["hits"] >= 1 and loads["misses"] == 1  # the one miss is the server's own load
