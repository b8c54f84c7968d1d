"""`dfjax swap`: the output contract (frames, audio, masks, sidecar, provenance) and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dfjax import media
from dfjax.cli import app
from dfjax.swap import SwapOptions, swap
from dfjax.training.core import train
from tests.conftest import shared
from tests.test_train import tiny_config

runner = CliRunner()


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from dfjax.data.synthetic import synthesize

    out = tmp_path_factory.mktemp("swap_synth")
    synthesize(out, frames=16, size=192, face_size=64)
    return out


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, synth_dir) -> Path:
    workdir = tmp_path_factory.mktemp("swap_model")
    sets = (synth_dir / "facesets" / "a", synth_dir / "facesets" / "b")
    train(tiny_config(sets, 20), workdir)
    return workdir


def test_video_contract_with_a_lossless_encode(tmp_path, synth_dir, model_dir):
    source = synth_dir / "videos" / "a.mp4"
    out = tmp_path / "fake.mp4"
    summary = swap(source, out, model_dir, SwapOptions(lossless=True, workers=1))
    info, out_info = media.probe(source), media.probe(out)
    assert out_info.frames == info.frames and abs(out_info.duration - info.duration) < 0.05
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert [f["index"] for f in sidecar["frames"]] == list(range(info.frames))
    assert summary["frames_swapped"] > 0
    assert summary["frames_swapped"] + summary["frames_passed_through"] == info.frames
    tags = media.container_metadata(out)
    assert tags["dfjax_synthetic"] == "true" and "SYNTHETIC" in tags["comment"]
    assert tags["dfjax_config_hash"] == sidecar["model"]["config_hash"]
    assert tags["DigitalSourceType"] == "trainedAlgorithmicMedia"  # IPTC's term, read back from the MP4
    assert tags["DigitalSourceTypeURI"] == media.TRAINED_ALGORITHMIC_MEDIA
    mask_tags = {k.lower(): v for k, v in media.container_metadata(out.with_suffix(".masks.mkv")).items()}
    assert mask_tags["digitalsourcetype"] == "trainedAlgorithmicMedia"  # Matroska upper-cases tag names
    frames_in = dict(media.iter_frames(source))
    masks = dict(media.iter_frames(out.with_suffix(".masks.mkv"), gray=True))
    assert len(masks) == info.frames
    for index, frame in media.iter_frames(out):
        record = sidecar["frames"][index]
        outside = masks[index] == 0
        assert np.array_equal(frame[outside], frames_in[index][outside])  # only masked pixels changed
        assert record["manipulated"] == bool(masks[index].any())
        if record["manipulated"]:
            x0, y0, x1, y1 = record["faces"][0]["box"]
            ys, xs = np.nonzero(masks[index])
            # the swapped face lands where the face was
            assert x0 - 20 < xs.mean() < x1 + 20 and y0 - 20 < ys.mean() < y1 + 20


def test_audio_survives_a_swap(tmp_path, model_dir):
    clip = shared("hamilton_clip.mp4")
    out = tmp_path / "hamilton_fake.mp4"
    swap(clip, out, model_dir, SwapOptions(crf=28))
    info, out_info = media.probe(clip), media.probe(out)
    assert out_info.has_audio and out_info.frames == info.frames
    assert abs(out_info.duration - info.duration) < 0.1
    import av

    with av.open(str(clip)) as a, av.open(str(out)) as b:
        assert b.streams.audio[0].codec_context.name == a.streams.audio[0].codec_context.name
        assert abs(float(b.streams.audio[0].duration * b.streams.audio[0].time_base)
                   - float(a.streams.audio[0].duration * a.streams.audio[0].time_base)) < 0.1


def test_image_swap_carries_provenance(tmp_path, astronaut_png, model_dir):
    out = tmp_path / "astronaut_fake.png"
    summary = swap(astronaut_png, out, model_dir, SwapOptions(watermark=True))
    assert summary["images_swapped"] == 1
    with Image.open(out) as image:
        assert image.text["dfjax_synthetic"] == "true"
        assert digital_source_type(image.info["XML:com.adobe.xmp"]) == media.TRAINED_ALGORITHMIC_MEDIA  # PNG iTXt
    assert (tmp_path / "astronaut_fake.mask.png").exists()
    jpeg = tmp_path / "astronaut_fake_jpeg.jpg"
    swap(astronaut_png, jpeg, model_dir, SwapOptions())
    with Image.open(jpeg) as image:
        assert digital_source_type(image.info["xmp"]) == media.TRAINED_ALGORITHMIC_MEDIA  # JPEG APP1


def digital_source_type(xmp: str | bytes) -> str:
    """Iptc4xmpExt:DigitalSourceType from an XMP packet, read as any XMP reader would."""
    import xml.etree.ElementTree as ET

    text = xmp.decode() if isinstance(xmp, bytes) else xmp
    root = ET.fromstring(text[text.index("<x:xmpmeta"): text.index("</x:xmpmeta>") + len("</x:xmpmeta>")])
    (node,) = root.iter("{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}DigitalSourceType")
    return node.text


def test_faces_can_come_from_the_extraction_alignments(tmp_path, synth_dir, model_dir):
    from dfjax.extract import extract
    from dfjax.faces.pipeline import ExtractOptions

    source = synth_dir / "videos" / "a.mp4"
    extracted = extract([source], tmp_path / "fs", ExtractOptions(size=64, workers=1))
    summary = swap(source, tmp_path / "fake.mp4", model_dir, SwapOptions(), alignments=tmp_path / "fs")
    assert summary["faces_from"] == "alignments"
    assert summary["frames_swapped"] == extracted["faces_kept"]
    with pytest.raises(Exception, match="no alignments"):
        swap(synth_dir / "videos" / "b.mp4", tmp_path / "other.mp4", model_dir, SwapOptions(),
             alignments=tmp_path / "fs")


def _refused(args, leftovers) -> str:
    result = runner.invoke(app, ["swap", *map(str, args), "--quiet"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for path in leftovers:
        assert not path.exists() and not any(path.parent.glob(f".{path.stem}.partial*"))
    return result.output


def test_bad_input_is_refused_without_partial_output(tmp_path, synth_dir, model_dir):
    source = synth_dir / "videos" / "a.mp4"
    out = tmp_path / "o.mp4"
    empty = tmp_path / "untrained"
    empty.mkdir()
    (empty / "config.json").write_text((model_dir / "config.json").read_text())
    assert "no checkpoint" in _refused([source, "-o", out, "--model", empty], [out])
    assert "direction" in _refused([source, "-o", out, "--model", model_dir, "--direction", "x2y"], [out])
    assert "--detector 'mtcnn'" in _refused([source, "-o", out, "--model", model_dir, "--detector", "mtcnn"], [out])
    assert "--pose 'sideways'" in _refused([source, "-o", out, "--model", model_dir, "--pose", "sideways"], [out])
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    assert "notes.mp4" in _refused([notes, "-o", out, "--model", model_dir], [out])
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    assert "cannot write" in _refused([source, "-o", blocker / "o.mp4", "--model", model_dir], [])
    assert not out.with_suffix(".masks.mkv").exists() and not out.with_suffix(".json").exists()


def test_inference_reads_the_ema_params_of_the_full_train_state(model_dir):
    """load_trained restores only the EMA parameters and the step, shaped by the checkpoint's metadata;
    they equal what restoring the whole train state (optimizer included) gives."""
    import jax

    from dfjax.config import load_saved_config
    from dfjax.training.checkpoint import Checkpointer
    from dfjax.training.core import abstract_state, load_trained

    model = load_trained(model_dir, "swap")
    config = load_saved_config(model_dir / "config.json")
    config.model.dtype = "float32"
    abstract = abstract_state(config)
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    checkpointer = Checkpointer(model_dir / "checkpoints")
    try:
        full = checkpointer.restore(abstract, jax.tree.map(lambda _: device, abstract))
    finally:
        checkpointer.close()
    assert model.step == int(full.step) == 20
    assert jax.tree.structure(model.params) == jax.tree.structure(full.ema)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(model.params), jax.tree.leaves(full.ema)))
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(model.params), jax.tree.leaves(full.params)))


def test_a_checkpoint_that_does_not_fit_its_config_is_one_sentence(tmp_path, synth_dir, model_dir):
    """config.json edited after training (another resolution): refused before any frame, exit 2, no output."""
    import shutil

    edited = tmp_path / "edited"
    shutil.copytree(model_dir, edited)
    config = json.loads((edited / "config.json").read_text())
    config["model"]["tiny_res"] = config["model"]["tiny_res"] // 2
    (edited / "config.json").write_text(json.dumps(config))
    out = tmp_path / "fake.mp4"
    result = runner.invoke(app, ["swap", str(synth_dir / "videos" / "a.mp4"), "-o", str(out), "--model", str(edited),
                                 "--quiet"])
    assert result.exit_code == 2
    assert "does not fit this config" in result.output and "is stored as" in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("fake*"))


def test_allow_truncated_reaches_the_decoding_thread(tmp_path, model_dir):
    """A cut-off video is refused, and with `--allow-truncated` swapped as far as it decodes: the flag
    holds on the thread that decodes for the face workers too (it used to be refused there)."""
    from tests.test_bad_inputs import truncated

    cut = truncated(tmp_path / "cut.mp4", size=96)
    args = ["swap", str(cut), "-o", str(tmp_path / "out.mp4"), "--model", str(model_dir), "--workers", "1", "-q"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "--allow-truncated" in refused.output
    allowed = runner.invoke(app, [*args, "--allow-truncated"])
    assert allowed.exit_code == 0, allowed.output
    sidecar = json.loads((tmp_path / "out.json").read_text())
    assert 0 < len(sidecar["frames"]) < 24 and media.probe(tmp_path / "out.mp4").frames == len(sidecar["frames"])


def test_the_first_batch_of_a_video_waits_for_no_compiler(model_dir):
    """`Swapper.compile_ahead` compiles, on its own thread, exactly what `generate` then runs for a full
    batch of uint8 crops (they are converted inside the compiled function), so the first frames of a
    swap do not wait for XLA: the first `generate` compiles nothing on the caller's thread."""
    import threading

    import jax

    from dfjax.swap import BATCH_SIZES, Swapper
    from dfjax.training.core import load_trained

    swapper = Swapper(load_trained(model_dir, "swap"), SwapOptions())
    size = swapper.model.resolution
    crops = [np.random.default_rng(k).integers(0, 256, (size, size, 3), np.uint8) for k in range(BATCH_SIZES[-1])]
    compiled_here = []

    def listener(event: str, seconds: float, **kwargs) -> None:
        if event == "/jax/core/compile/backend_compile_duration" and threading.current_thread() is caller:
            compiled_here.append(seconds)

    caller = threading.current_thread()
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        swapper.compile_ahead()
        faces, masks = swapper.generate(crops)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiled_here == []
    assert faces.shape == (len(crops), size, size, 3) and faces.dtype == np.uint8 and faces.std() > 0
    assert masks.shape == (len(crops), size, size) and np.isfinite(masks).all()
