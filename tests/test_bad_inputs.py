"""Every command refuses bad input the same way: exit code 2, one line starting with "error:", no
traceback, and no output left behind (a new output path does not exist afterwards, an existing one is
byte-for-byte unchanged, and no `.partial` temporaries lie beside it).

Each case builds its bad file inside the test. One tiny swap workdir, trained once for the module,
serves every case that needs a model.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dfjax.cli import app

runner = CliRunner()


# ----------------------------------------------------------------------------- shared inputs


def faststart_video(path: Path, frames: int = 24, size: int = 64) -> Path:
    """A small H.264 MP4 with its index (moov) at the front, as web videos are: cut short, it still
    opens and lists every frame. Noise frames, so every frame takes real bytes."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def truncated(path: Path, frames: int = 24, size: int = 64) -> Path:
    """A faststart MP4 cut in half (as an interrupted download leaves it)."""
    whole = faststart_video(path.with_name(f"whole_{path.name}"), frames, size)
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    whole.unlink()
    return path


@dataclass
class Env:
    """What the cases share: synthetic videos and face sets, a trained swap workdir, a scratch folder."""

    synth: Path
    model: Path
    tmp: Path

    @property
    def video(self) -> Path:
        return self.synth / "videos" / "a.mp4"

    @property
    def faceset(self) -> Path:
        return self.synth / "facesets" / "a"

    def file(self, name: str, content: bytes | str = b"not what the name says") -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
        return path

    def folder(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def damaged_faceset(self, name: str, damage: Callable[[Path], None]) -> Path:
        path = self.tmp / name
        shutil.copytree(self.faceset, path)
        damage(path)
        return path

    def blocked(self, name: str) -> Path:
        """A path under a plain file: nothing can be created there (even by root)."""
        return self.file("blocker", "a file, not a folder") / name


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> tuple[Path, Path]:
    from dfjax.data.synthetic import synthesize
    from dfjax.training.core import train
    from tests.test_train import tiny_config

    synth = tmp_path_factory.mktemp("bad_inputs_synth")
    synthesize(synth, frames=8, size=96, face_size=64)
    model = tmp_path_factory.mktemp("bad_inputs_model")
    train(tiny_config((synth / "facesets" / "a", synth / "facesets" / "b"), 2, **{"log.preview_every": 100}), model)
    return synth, model


@pytest.fixture
def env(shared, tmp_path) -> Env:
    return Env(*shared, tmp_path)


# ----------------------------------------------------------------------------- the cases
#
# Each case returns (command line, output paths that must come out unchanged or absent) and is registered
# with what its one-line refusal must mention.

CASES: dict[str, Callable[..., tuple[list, list[Path]]]] = {}
MENTIONS: dict[str, str] = {}  # what each refusal must name (the option, the file, or the problem)


def case(name: str, mentions: str):
    def register(build):
        CASES[name] = build
        MENTIONS[name] = mentions
        return build
    return register


def unlink_file(name: str) -> Callable[[Path], None]:
    return lambda path: (path / name).unlink()


def write_into(name: str, content: str) -> Callable[[Path], None]:
    return lambda path: (path / name).write_text(content)


def cut_faces_npy(path: Path) -> None:
    data = (path / "faces.npy").read_bytes()
    (path / "faces.npy").write_bytes(data[: len(data) // 3])


FACESET_DAMAGE = {
    "no_faces_npy": unlink_file("faces.npy"),
    "no_meta": unlink_file("meta.jsonl"),
    "meta_not_json": write_into("meta.jsonl", "{this is not json\n"),
    "faces_npy_truncated": cut_faces_npy,
    "no_faceset_json": unlink_file("faceset.json"),
    "faceset_json_not_json": write_into("faceset.json", "{"),
    "meta_line_not_object": lambda p: (p / "meta.jsonl").write_text("[1, 2]\n" * len((p / "meta.jsonl").read_text().splitlines())),
    "meta_too_short": lambda p: (p / "meta.jsonl").write_text((p / "meta.jsonl").read_text().splitlines()[0] + "\n"),
    "meta_without_landmarks": lambda p: (p / "meta.jsonl").write_text(
        "".join(json.dumps({"index": i}) + "\n" for i in range(len((p / "meta.jsonl").read_text().splitlines())))),
}

# --- extract


@case("extract-missing-input", 'does not exist')
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", e.tmp / "nope.mp4", "-o", out], [out]


@case("extract-unsupported-suffix", 'neither a video')
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", e.file("notes.txt"), "-o", out], [out]


@case("extract-not-a-video", 'not a readable video')
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", e.file("fake.mp4"), "-o", out, "--workers", "1"], [out]


@case("extract-truncated-video", 'truncated')
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", truncated(e.tmp / "cut.mp4"), "-o", out, "--workers", "1"], [out]


@case("extract-output-is-a-file", 'is a file')
def _(e: Env):
    out = e.file("fs")
    return ["extract", e.video, "-o", out], [out]


@case("extract-output-under-a-file", 'cannot write')
def _(e: Env):
    out = e.blocked("fs")
    return ["extract", e.video, "-o", out], [out]


@case("extract-output-not-empty", '--overwrite')
def _(e: Env):
    out = e.folder("fs")
    (out / "keep.txt").write_text("mine")
    return ["extract", e.video, "-o", out], [out / "keep.txt"]


@case("extract-workers-negative", '--workers -1')
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", e.video, "-o", out, "--workers", "-1"], [out]


@case("extract-every-n-zero", '--every-n 0')
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", e.video, "-o", out, "--every-n", "0"], [out]


@case("extract-unknown-smoothing", "--smoothing 'foo' is unknown")
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", e.video, "-o", out, "--smoothing", "foo"], [out]


@case("extract-kalman-noise-zero", '--kalman-measurement-noise 0')
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", e.video, "-o", out, "--smoothing", "kalman", "--kalman-measurement-noise", "0"], [out]


@case("extract-size-too-small", '--size')
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", e.video, "-o", out, "--size", "8"], [out]


@case("extract-max-side-zero", '--max-side 0')
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", e.video, "-o", out, "--max-side", "0"], [out]


@case("extract-unknown-face-type", 'torso')
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", e.video, "-o", out, "--face-type", "torso"], [out]


@case("extract-unknown-mask", 'bogus')
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", e.video, "-o", out, "--mask", "bogus"], [out]


@case("extract-unknown-detector", 'mtcnn')
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", e.video, "-o", out, "--detector", "mtcnn"], [out]


@case("extract-missing-identity-photo", 'who.png')
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", e.video, "-o", out, "--identity", e.tmp / "who.png"], [out]


@case("extract-damaged-image", 'not a readable image')
def _(e: Env):
    out = e.tmp / "fs"
    return ["extract", e.file("broken.png", b"\x89PNG\r\n\x1a\n garbage"), "-o", out, "--workers", "1"], [out]


# --- synth


@case("synth-frames-zero", '--frames')
def _(e: Env):
    out = e.tmp / "s"
    return ["synth", "-o", out, "--frames", "0"], [out]


@case("synth-odd-size", '--size')
def _(e: Env):
    out = e.tmp / "s"
    return ["synth", "-o", out, "--size", "33", "--frames", "2"], [out]


@case("synth-face-size-too-small", '--face-size')
def _(e: Env):
    out = e.tmp / "s"
    return ["synth", "-o", out, "--face-size", "8", "--frames", "2"], [out]


@case("synth-output-is-a-file", 'is a file')
def _(e: Env):
    out = e.file("s")
    return ["synth", "-o", out, "--frames", "2"], [out]


@case("synth-output-under-a-file", 'cannot write')
def _(e: Env):
    out = e.blocked("s")
    return ["synth", "-o", out, "--frames", "2"], [out]


@case("synth-output-not-empty", '--overwrite')
def _(e: Env):
    out = e.folder("s")
    (out / "keep.txt").write_text("mine")
    return ["synth", "-o", out, "--frames", "2"], [out / "keep.txt"]


# --- train


def _train(e: Env, *args) -> tuple[list, list[Path]]:
    workdir = e.tmp / "run"
    return ["train", "--workdir", workdir, "--set", "train.steps=1", *args], [workdir]


@case("train-missing-faceset", 'does not exist')
def _(e: Env):
    return _train(e, "--a", e.tmp / "nope", "--b", e.faceset)


for _damage in FACESET_DAMAGE:
    @case(f"train-faceset-{_damage}", "face set")
    def _(e: Env, damage=_damage):
        return _train(e, "--a", e.damaged_faceset("bad", FACESET_DAMAGE[damage]), "--b", e.faceset)


@case("train-negative-steps", 'train.steps=-3')
def _(e: Env):
    workdir = e.tmp / "run"
    return ["train", "--workdir", workdir, "--set", "train.steps=-3"], [workdir]


@case("train-unknown-setting", 'train.nonsense')
def _(e: Env):
    return _train(e, "--set", "train.nonsense=1")


@case("train-unknown-config", 'nope.py')
def _(e: Env):
    return _train(e, "--config", "nope.py")


@case("train-reenactor-with-two-facesets", '--b')
def _(e: Env):
    return _train(e, "--config", "reenact.py:tiny", "--a", e.faceset, "--b", e.faceset)


@case("train-workdir-under-a-file", 'cannot write')
def _(e: Env):
    workdir = e.blocked("run")
    return ["train", "--workdir", workdir, "--set", "train.steps=1"], [workdir]


# --- swap


def _swap(e: Env, *args, source: Path | None = None, out: Path | None = None) -> tuple[list, list[Path]]:
    out = out or e.tmp / "fake.mp4"
    return (["swap", source or e.video, "-o", out, "--model", e.model, "--workers", "1", *args],
            [out, out.with_suffix(".masks.mkv"), out.with_suffix(".json")])


@case("swap-unknown-smoothing", "--smoothing 'foo' is unknown")
def _(e: Env):
    return _swap(e, "--smoothing", "foo")


@case("swap-missing-input", 'does not exist')
def _(e: Env):
    return _swap(e, source=e.tmp / "nope.mp4")


@case("swap-not-a-video", 'not a readable video')
def _(e: Env):
    return _swap(e, source=e.file("notes.mp4"))


@case("swap-truncated-video", 'truncated')
def _(e: Env):
    source = truncated(e.folder("cut") / "a.mp4", size=96)  # named as the face set's video: its alignments apply
    return _swap(e, "--alignments", e.faceset, source=source)


@case("swap-crf-100", '--crf 100')
def _(e: Env):
    return _swap(e, "--crf", "100")


@case("swap-crf-negative", '--crf -1')
def _(e: Env):
    return _swap(e, "--crf", "-1")


@case("swap-feather-negative", '--feather -5')
def _(e: Env):
    return _swap(e, "--feather", "-5")


@case("swap-workers-negative", '--workers -1')
def _(e: Env):
    return _swap(e, "--workers", "-1")


@case("swap-every-n-zero", '--every-n 0')
def _(e: Env):
    return _swap(e, "--every-n", "0")


@case("swap-encode-threads-negative", '--encode-threads -2')
def _(e: Env):
    return _swap(e, "--encode-threads", "-2")


for _option, _value in (("--direction", "x2y"), ("--mask", "nose"), ("--color", "sepia"), ("--blend", "smudge"),
                        ("--pose", "sideways"), ("--detector", "mtcnn"),
                        ("--preset", "placebo")):
    @case(f"swap-unknown{_option[1:]}", _value)
    def _(e: Env, option=_option, value=_value):
        return _swap(e, option, value)


@case("swap-output-exists", '--overwrite')
def _(e: Env):
    args, outputs = _swap(e)
    outputs[0].write_bytes(b"last week's swap")
    return args, outputs


@case("swap-output-masks-exist", 'masks.mkv already exists')
def _(e: Env):
    args, outputs = _swap(e)
    outputs[1].write_bytes(b"last week's masks")
    return args, outputs


@case("swap-output-sidecar-exists", 'json already exists')
def _(e: Env):
    args, outputs = _swap(e)
    outputs[2].write_text('{"frames": []}')
    return args, outputs


@case("swap-output-is-a-folder", 'is a folder')
def _(e: Env):
    return _swap(e, out=e.folder("fake.mp4"))


@case("swap-output-under-a-file", 'cannot write')
def _(e: Env):
    return _swap(e, out=e.blocked("fake.mp4"))


@case("swap-image-output-for-video", 'must be a video')
def _(e: Env):
    return _swap(e, out=e.tmp / "fake.png")


@case("swap-missing-model", 'no config.json')
def _(e: Env):
    out = e.tmp / "fake.mp4"
    return ["swap", e.video, "-o", out, "--model", e.tmp / "nowhere"], [out]


@case("swap-model-without-checkpoint", 'no checkpoint')
def _(e: Env):
    workdir = e.folder("untrained")
    shutil.copy(e.model / "config.json", workdir / "config.json")
    out = e.tmp / "fake.mp4"
    return ["swap", e.video, "-o", out, "--model", workdir], [out]


@case("swap-model-config-not-json", 'config.json')
def _(e: Env):
    workdir = e.folder("broken_run")
    (workdir / "config.json").write_text("{ not json")
    out = e.tmp / "fake.mp4"
    return ["swap", e.video, "-o", out, "--model", workdir], [out]


@case("swap-missing-alignments", 'no alignments')
def _(e: Env):
    return _swap(e, "--alignments", e.tmp / "nope.json")


@case("swap-model-outputs-nan", 'earlier checkpoint')
def _(e: Env, monkeypatch):
    import jax

    from dfjax import swap as swap_module

    real = swap_module.load_trained

    def nan_model(*args, **kwargs):
        model = real(*args, **kwargs)
        model.params = jax.tree.map(lambda p: p * np.nan, model.params)
        return model

    monkeypatch.setattr(swap_module, "load_trained", nan_model)
    return _swap(e, "--alignments", e.faceset)


@case("swap-image-over-pixel-limit", 'decompression-bomb')
def _(e: Env, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 2x this is Pillow's hard limit
    photo = e.tmp / "huge.png"
    Image.new("RGB", (64, 64)).save(photo)
    out = e.tmp / "fake.png"
    return ["swap", photo, "-o", out, "--model", e.model], [out, e.tmp / "fake.mask.png", e.tmp / "fake.json"]


@case("swap-video-output-for-image", 'must be an image')
def _(e: Env):
    photo = e.tmp / "face.png"
    Image.new("RGB", (64, 64)).save(photo)
    out = e.tmp / "fake.mp4"
    return ["swap", photo, "-o", out, "--model", e.model], [out]


@case("swap-damaged-image", 'not a readable image')
def _(e: Env):
    out = e.tmp / "fake.png"
    return (["swap", e.file("face.png", b"\x89PNG\r\n\x1a\n garbage"), "-o", out, "--model", e.model],
            [out, e.tmp / "fake.mask.png", e.tmp / "fake.json"])


@case("swap-image-output-exists", '--overwrite')
def _(e: Env):
    photo = e.tmp / "face.png"
    Image.new("RGB", (64, 64)).save(photo)
    out = e.file("fake.png", b"an earlier swap")
    return ["swap", photo, "-o", out, "--model", e.model], [out]


# --- reenact (every case is refused before a reenactor is needed, except a swap workdir as --model)


def _reenact(e: Env, *args, driver: Path | None = None, out: Path | None = None,
             model: Path | None = None) -> tuple[list, list[Path]]:
    out = out or e.tmp / "driven.mp4"
    return (["reenact", "--model", model or e.model, "--driver", driver or e.video, "-o", out, "--workers", "1", *args],
            [out, out.with_suffix(".masks.mkv"), out.with_suffix(".json")])


@case("reenact-unknown-smoothing", "--smoothing 'foo' is unknown")
def _(e: Env):
    return _reenact(e, "--smoothing", "foo")


@case("reenact-unknown-preset", "--preset 'placebo' is unknown")
def _(e: Env):
    return _reenact(e, "--preset", "placebo")


@case("reenact-missing-model", 'no config.json')
def _(e: Env):
    return _reenact(e, model=e.tmp / "nowhere")


@case("reenact-swap-workdir-as-model", 'not a reenactor')
def _(e: Env):
    return _reenact(e)


@case("reenact-missing-driver", 'not a video file')
def _(e: Env):
    return _reenact(e, driver=e.tmp / "nope.mp4")


@case("reenact-driver-not-a-video", 'not a video file')
def _(e: Env):
    return _reenact(e, driver=e.file("notes.txt"))


@case("reenact-driver-unreadable", 'not a readable video')
def _(e: Env):
    return _reenact(e, driver=e.file("driver.mp4"))


@case("reenact-image-output", 'must be a video')
def _(e: Env):
    return _reenact(e, out=e.tmp / "driven.png")


@case("reenact-crf-100", '--crf 100')
def _(e: Env):
    return _reenact(e, "--crf", "100")


@case("reenact-workers-negative", '--workers -1')
def _(e: Env):
    return _reenact(e, "--workers", "-1")


@case("reenact-every-n-zero", '--every-n 0')
def _(e: Env):
    return _reenact(e, "--every-n", "0")


@case("reenact-output-exists", '--overwrite')
def _(e: Env):
    args, outputs = _reenact(e)
    outputs[0].write_bytes(b"an earlier reenactment")
    return args, outputs


@case("reenact-output-masks-exist", 'masks.mkv already exists')
def _(e: Env):
    args, outputs = _reenact(e)
    outputs[1].write_bytes(b"earlier masks")
    return args, outputs


@case("reenact-output-under-a-file", 'cannot write')
def _(e: Env):
    return _reenact(e, out=e.blocked("driven.mp4"))


@case("reenact-driver-faces-damaged", 'damaged')
def _(e: Env):
    return _reenact(e, "--driver-faces", e.damaged_faceset("bad", FACESET_DAMAGE["no_meta"]))


@case("reenact-driver-faces-not-a-faceset", 'not a face set')
def _(e: Env):
    return _reenact(e, "--driver-faces", e.folder("plain"))


@case("reenact-driver-faces-without-landmarks", 'lacks landmarks')
def _(e: Env):
    return _reenact(e, "--driver-faces", e.damaged_faceset("bad", FACESET_DAMAGE["meta_without_landmarks"]))


# --- evaluate-swap


def _evaluate(e: Env, *args, source: Path | None = None, swapped: Path | None = None) -> tuple[list, list[Path]]:
    out = e.tmp / "report.json"
    return ["evaluate-swap", source or e.video, swapped or e.video, "-o", out, *args], [out]


@case("evaluate-missing-source", 'does not exist')
def _(e: Env):
    return _evaluate(e, source=e.tmp / "nope.mp4")


@case("evaluate-unreadable-swapped", 'not a readable video')
def _(e: Env):
    return _evaluate(e, swapped=e.file("swapped.mp4"))


@case("evaluate-max-frames-zero", '--max-frames 0')
def _(e: Env):
    return _evaluate(e, "--max-frames", "0")


@case("evaluate-size-mismatch", '64x64')
def _(e: Env):
    return _evaluate(e, swapped=faststart_video(e.tmp / "small.mp4", frames=8, size=64))


@case("evaluate-truncated-video", 'truncated')
def _(e: Env):
    cut = truncated(e.tmp / "cut.mp4")
    return _evaluate(e, source=cut, swapped=cut)


@case("evaluate-output-under-a-file", 'cannot write')
def _(e: Env):
    out = e.blocked("report.json")
    return ["evaluate-swap", e.video, e.video, "-o", out], [out]


@case("evaluate-output-is-a-folder", 'is a folder')
def _(e: Env):
    out = e.folder("report.json")
    return ["evaluate-swap", e.video, e.video, "-o", out], [out]


for _damage in ("no_faces_npy", "meta_not_json", "faces_npy_truncated", "no_meta"):
    @case(f"evaluate-target-faces-{_damage}", "damaged")
    def _(e: Env, damage=_damage):
        return _evaluate(e, "--target-faces", e.damaged_faceset("bad", FACESET_DAMAGE[damage]))


# --- detect-eval


def _detect(e: Env, *args, real: Path | None = None, fake: Path | None = None) -> tuple[list, list[Path]]:
    out = e.tmp / "report"
    fake = fake or e.synth / "videos" / "a_as_b_truth.mp4"
    return ["detect-eval", "--real", real or e.video, "--fake", fake, "-o", out, *args], [out]


@case("detect-size-zero", '--size 0')
def _(e: Env):
    return _detect(e, "--size", "0")


@case("detect-split-seed-negative", '--split-seed -1')
def _(e: Env):
    return _detect(e, "--split-seed", "-1")


@case("detect-frames-zero", '--frames 0')
def _(e: Env):
    return _detect(e, "--frames", "0")


@case("detect-seeds-zero", '--seeds 0')
def _(e: Env):
    return _detect(e, "--seeds", "0")


@case("detect-latin1-csv", 'UTF-8')
def _(e: Env):
    shutil.copy(e.video, e.tmp / "café.mp4")
    return _detect(e, real=e.file("labels.csv", "path,label\ncafé.mp4,real\n".encode("latin-1")))


@case("detect-csv-bad-row", 'line 2')
def _(e: Env):
    return _detect(e, real=e.file("labels.csv", "path,label\nx.mp4,maybe\n"))


@case("detect-csv-missing-video", 'does not exist')
def _(e: Env):
    return _detect(e, real=e.file("labels.csv", "path,label\nx.mp4,real\n"))


@case("detect-missing-real", 'does not exist')
def _(e: Env):
    return _detect(e, real=e.tmp / "nope")


@case("detect-real-is-text", 'neither')
def _(e: Env):
    return _detect(e, real=e.file("notes.txt"))


@case("detect-output-is-a-file", 'is a file')
def _(e: Env):
    args, _ = _detect(e)
    out = e.file("report")
    return args, [out]


@case("detect-output-under-a-file", 'cannot write')
def _(e: Env):
    out = e.blocked("report")
    return ["detect-eval", "--real", e.video, "--fake", e.synth / "videos" / "a_as_b_truth.mp4", "-o", out], [out]


@case("detect-unknown-compression", 'c99')
def _(e: Env):
    return _detect(e, "--compression", "c99")


@case("detect-unknown-detector", 'oracle')
def _(e: Env):
    return _detect(e, "--detector", "oracle")


@case("detect-unknown-face-detector", 'mtcnn')
def _(e: Env):
    return _detect(e, "--face-detector", "mtcnn")


@case("detect-set-without-config", '--config')
def _(e: Env):
    return _detect(e, "--set", "train.steps=3")


@case("detect-negative-steps", 'train.steps=-3')
def _(e: Env):
    return _detect(e, "--detector", "meso4", "--config", "detect_meso4.py:tiny", "--set", "train.steps=-3")


@case("detect-truncated-videos", 'truncated')
def _(e: Env):
    folder = e.folder("cut")
    for name in ("r1", "r2", "f1", "f2"):
        truncated(folder / f"{name}.mp4")
    rows = "".join(f"{name}.mp4,{'real' if name[0] == 'r' else 'fake'}\n" for name in ("r1", "r2", "f1", "f2"))
    labels = e.file("cut/labels.csv", "path,label\n" + rows)
    return _detect(e, "--frames", "4", real=labels, fake=labels)


# --- demo


@case("demo-frames-zero", '--frames')
def _(e: Env):
    out = e.tmp / "demo"
    return ["demo", "-o", out, "--frames", "0"], [out]


@case("demo-steps-zero", '--steps')
def _(e: Env):
    out = e.tmp / "demo"
    return ["demo", "-o", out, "--steps", "0"], [out]


@case("demo-output-is-a-file", 'is a file')
def _(e: Env):
    out = e.file("demo")
    return ["demo", "-o", out], [out]


@case("demo-output-under-a-file", 'cannot write')
def _(e: Env):
    out = e.blocked("demo")
    return ["demo", "-o", out], [out]


# ----------------------------------------------------------------------------- the check


def _state(path: Path):
    """What must not change: a file's bytes, a folder's listing, or absence."""
    if path.is_file():
        return path.read_bytes()
    if path.is_dir():
        return sorted(str(p.relative_to(path)) for p in path.rglob("*"))
    return None


def _leftovers(path: Path) -> list[Path]:
    parent = path.parent
    if not parent.is_dir():
        return []
    return [p for p in parent.iterdir() if p.name.startswith(f".{path.stem}.") or p.name.startswith(f".{path.name}.")]


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_cleanly(name, env, monkeypatch):
    build = CASES[name]
    args, outputs = build(env, monkeypatch) if "monkeypatch" in build.__code__.co_varnames else build(env)
    before = {path: _state(path) for path in outputs}
    result = runner.invoke(app, [str(a) for a in args] + ["--quiet"])
    message = result.output.strip()
    assert result.exit_code == 2, (name, result.output, result.exception)
    assert "Traceback" not in result.output
    assert message.startswith("error:") and "\n" not in message, message
    assert MENTIONS[name] in message, (MENTIONS[name], message)
    for path in outputs:
        assert _state(path) == before[path], f"{path} changed"
        assert not _leftovers(path), _leftovers(path)


def test_there_are_enough_cases_for_every_command():
    commands = {}
    for name in CASES:
        command = name.split("-")[0]
        commands[command] = commands.get(command, 0) + 1
    assert len(CASES) >= 60
    assert set(commands) == {"extract", "synth", "train", "swap", "reenact", "evaluate", "detect", "demo"}
