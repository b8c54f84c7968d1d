"""Swap models of N identities: one shared encoder, one decoder per identity, every direction from one run."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from dfjax import media
from dfjax.cli import app
from dfjax.models.autoencoder import FaceSwapAE, count_params, param_count

runner = CliRunner()


def test_two_identities_are_the_plain_model_and_each_more_adds_one_decoder():
    x = jnp.zeros((1, 64, 64, 3))
    two = FaceSwapAE("tiny").init(jax.random.key(0), x, x)["params"]
    assert sorted(two) == ["decoder_a", "decoder_b", "encoder"]  # the names checkpoints and the peer use
    three = FaceSwapAE("tiny", identities=("a", "b", "c")).init(jax.random.key(0), x, x, x)["params"]
    assert sorted(three) == ["decoder_a", "decoder_b", "decoder_c", "encoder"]
    decoder = count_params(two["decoder_a"])
    assert param_count("tiny", identities=("a", "b", "c")) == param_count("tiny") + decoder
    assert param_count("tiny", identities=tuple("abcdef")) == param_count("tiny") + 4 * decoder
    liae = param_count("liae_tiny", identities=("a", "b", "c")) - param_count("liae_tiny")
    inter = count_params(FaceSwapAE("liae_tiny").init(jax.random.key(0), x, x)["params"]["inter_b"])
    assert liae == inter  # LIAE: one more intermediate, the decoder stays shared
    with pytest.raises(ValueError, match="two or more distinct"):
        FaceSwapAE("tiny", identities=("a", "a")).init(jax.random.key(0), x, x)


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Three synthetic people, a 32 px model of all three trained for 4 steps, resumed to 6."""
    root = tmp_path_factory.mktemp("three")
    synth = root / "synth"
    result = runner.invoke(app, ["synth", "-o", str(synth), "--identities", "3", "--frames", "16", "--size", "96",
                                 "--face-size", "64", "--quiet"])
    assert result.exit_code == 0, result.output
    faces = [a for name in "abc" for a in ("--faces", str(synth / "facesets" / name))]
    common = ["train", "--workdir", str(root / "run"), "--quiet"]
    first = runner.invoke(app, [*common, "--config", "swap.py:tiny,res=32", *faces, "--set", "train.batch_per_side=4",
                                "--set", "log.every=1", "--set", "log.checkpoint_every=2", "--steps", "4"])
    assert first.exit_code == 0, first.output
    resumed = runner.invoke(app, [*common, "--steps", "6"])
    assert resumed.exit_code == 0, resumed.output
    return synth, root / "run"


def test_one_run_trains_every_identity_and_resumes(three):
    _, run = three
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]  # each step once across the resume
    assert all({"rec_a", "rec_b", "rec_c"} <= set(r) and np.isfinite(r["loss"]) for r in records)
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["identities"].count(",") == 2
    grid = media.read_image(run / "previews" / "latest.png")  # N x N: 4 faces of each of 3 rows, 1 + 3 columns
    assert grid.shape[0] == 3 * 4 * 128 and grid.shape[1] == 4 * 128


def test_swap_to_any_identity_by_name(three, tmp_path):
    synth, run = three
    outs = {}
    for to in ("b", "c"):
        out = tmp_path / f"a_to_{to}.mp4"
        result = runner.invoke(app, ["swap", str(synth / "videos" / "a.mp4"), "-o", str(out), "--model", str(run),
                                     "--to", to, "--alignments", str(synth / "facesets" / "a"), "--lossless", "--color", "none",
                                     "--quiet"])
        assert result.exit_code == 0, result.output
        sidecar = json.loads(out.with_suffix(".json").read_text())
        assert sidecar["direction"] == f"to_{to}" and media.container_metadata(out)["dfjax_direction"] == f"to_{to}"
        assert sum(f["manipulated"] for f in sidecar["frames"]) > 0
        outs[to] = np.stack([f for _, f in media.iter_frames(out)])
    assert not np.array_equal(outs["b"], outs["c"])  # two decoders, two different faces
    bad = runner.invoke(app, ["swap", str(synth / "videos" / "a.mp4"), "-o", str(tmp_path / "x.mp4"), "--model",
                              str(run), "--to", "zed", "--quiet"])
    assert bad.exit_code == 2 and "knows a, b, c" in bad.output and not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("args, words", [
    (["--faces", "{a}"], "needs 2 or more"),
    (["--faces", "{a}", "--faces", "{a}"], "both named 'a'"),
    (["--faces", "{a}", "--faces", "{b}", "--faces", "{c}", "--config", "swap_dvp.py:tiny"], "trains two identities"),
    (["--a", "{a}", "--b", "{b}", "--faces", "{c}", "--faces", "{a}"], "not both"),
])
def test_bad_identity_lists_exit_2_with_one_line(three, tmp_path, args, words):
    synth, _ = three
    sets = {name: str(synth / "facesets" / name) for name in "abc"}
    result = runner.invoke(app, ["train", "--workdir", str(tmp_path / "w"), "--quiet",
                                 *[a.format(**sets) for a in args]])
    assert result.exit_code == 2 and words in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "w").exists()
