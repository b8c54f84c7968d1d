"""The server the face workers are forked from (multiprocessing's forkserver), started early.

The server is a fresh interpreter that imports the face pipeline (cv2, dlib, PyAV, scikit-image)
and loads the models every face worker uses (dlib's 68-point landmark predictor and HOG face
detector: about 0.6 CPU s), once; each worker is then forked from it with all of that in memory.
That start costs about 0.9 CPU s. A command that will find faces starts the server first, before
its own heavy imports (JAX) and its model, so both get ready on separate cores; the server then
serves every pool of the process (each `dfjax forge` swap, every worker of `extract`).

This module imports nothing heavy, so that starting the server does not wait for the imports.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing import forkserver

PRELOAD = "dfjax.face_worker_preload"


def start_face_worker_server() -> mp.context.BaseContext:
    """Start the face workers' server if it is not running, and return its context. It does not wait
    for the server to be ready: a pool asked for meanwhile waits for it."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([PRELOAD])
    forkserver.ensure_running()
    return ctx
