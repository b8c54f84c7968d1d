"""Shared fixtures: real faces from scikit-image and ../shared/data, small videos made from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data

from dfjax import media

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def shared(name: str) -> Path:
    """A file from ../shared/data/real, or skip the test when the folder is absent (a user's clone)."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """Eileen Collins, the real face that ships with scikit-image (512x512 RGB)."""
    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def astronaut_landmarks(astronaut) -> np.ndarray:
    """Her 68 dlib landmarks, found with dfjax's own detector and predictor (loaded once)."""
    from dfjax.faces.detect import FaceDetector
    from dfjax.faces.landmarks import LandmarkPredictor

    box = max(FaceDetector(upsample=1)(astronaut), key=lambda d: d.area).box
    return LandmarkPredictor()(astronaut, box)


@pytest.fixture(scope="session")
def astronaut_png(tmp_path_factory, astronaut) -> Path:
    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    media.write_image(path, astronaut)
    return path


PAN_PX = 3  # horizontal shift per frame of the panned video


@pytest.fixture(scope="session")
def panned_video(tmp_path_factory, astronaut) -> Path:
    """24 frames at 25 fps of the astronaut photo sliding right by PAN_PX pixels per frame."""
    path = tmp_path_factory.mktemp("video") / "pan.mp4"
    canvas = np.zeros((512, 640, 3), np.uint8)
    with media.VideoWriter(path, 25, 640, 512, crf=12) as writer:
        for i in range(24):
            frame = canvas.copy()
            frame[:, 20 + PAN_PX * i: 20 + PAN_PX * i + 512] = astronaut
            writer.write(frame)
    return path


@pytest.fixture(scope="session")
def frameless_video(tmp_path_factory) -> Path:
    """An H.264 MP4 with a header and no frame."""
    import av

    path = tmp_path_factory.mktemp("frameless") / "empty.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    return path
