"""The video writer: what it stores is what it was given, frame by frame."""

import numpy as np
import pytest

from dfjax import media


@pytest.mark.parametrize("kind", ["lossless", "gray"])
def test_writer_is_done_with_a_frame_when_write_returns(tmp_path, kind):
    """The writer hands FFmpeg the caller's array without copying it; a caller that refills one array for
    every frame (as a ring of buffers does) must still get each frame as it was at its `write`."""
    rng = np.random.default_rng(0)
    shape = (48, 66) if kind == "gray" else (48, 66, 3)
    expected = [rng.integers(0, 256, shape, np.uint8) for _ in range(12)]
    path = tmp_path / ("masks.mkv" if kind == "gray" else "video.mp4")
    buffer = np.empty(shape, np.uint8)
    with media.VideoWriter(path, 25, 66, 48, preset="ultrafast", lossless=kind == "lossless",
                           gray=kind == "gray") as writer:
        for frame in expected:
            buffer[...] = frame
            writer.write(buffer)
            buffer[...] = 0  # overwritten at once: a writer still reading it would store zeros
    stored = [frame for _, frame in media.iter_frames(path, gray=kind == "gray")]
    assert len(stored) == len(expected)
    for k, (got, want) in enumerate(zip(stored, expected)):
        assert np.array_equal(got, want), f"frame {k} differs"


def test_writer_takes_a_frame_that_is_not_contiguous(tmp_path):
    """A view (a crop of a bigger frame) is stored as its pixels, not as the memory around it."""
    big = np.random.default_rng(1).integers(0, 256, (64, 96, 3), np.uint8)
    view = big[8:56, 10:76]
    with media.VideoWriter(tmp_path / "v.mp4", 25, 66, 48, preset="ultrafast", lossless=True) as writer:
        writer.write(view)
    (_, stored), = media.iter_frames(tmp_path / "v.mp4")
    assert np.array_equal(stored, view)
