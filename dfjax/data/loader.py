"""Host-side batches for face sets too large to keep on the accelerators.

The default path puts whole face sets on device and samples there;
`HostLoader` is the fallback: a background thread reads uint8 batches from the memory-mapped
faces.npy / masks.npy a few steps ahead, so disk reads overlap the training step. Augmentation
still runs on device (dfjax.data.augment).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dfjax.data.faceset import FaceSet


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class HostLoader:
    """Iterator of (faces (B, S, S, 3), masks (B, S, S, C)) uint8 batches, sampled on the host.

    `source` is a face-set folder or a (faces, masks) pair of arrays; masks stored as (N, S, S)
    get C = 1, as from `augment.gather`. Batch `step` holds the indices
    `batch_indices(step)`, drawn uniformly with replacement from a generator seeded by
    (seed, step): a run resumed at `start_step` continues the same stream. Indices are sorted
    within a batch so memory-mapped reads go forward through the file. `device_put`, if given,
    is applied to each batch in the thread (e.g. `lambda b: jax.device_put(b, sharding)`).
    """

    def __init__(self, source: str | Path | tuple[np.ndarray, np.ndarray], batch: int, seed: int,
                 prefetch: int = 2, device_put: Callable[[tuple[np.ndarray, np.ndarray]], Any] | None = None,
                 start_step: int = 0):
        if isinstance(source, (str, Path)):
            faceset = FaceSet(source)
            self.faces, self.masks = faceset.faces, faceset.masks
        else:
            self.faces, self.masks = source
        if len(self.faces) == 0 or len(self.faces) != len(self.masks):
            raise ValueError(f"need as many masks as faces, and at least one: got {len(self.faces)} "
                             f"faces and {len(self.masks)} masks")
        if batch < 1 or prefetch < 1:
            raise ValueError(f"batch ({batch}) and prefetch ({prefetch}) must be at least 1")
        self.batch, self.seed = batch, seed
        self._device_put = device_put
        self._queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(start_step,), daemon=True,
                                        name="dfjax-host-loader")
        self._thread.start()

    def batch_indices(self, step: int) -> np.ndarray:
        """The sorted (B,) int64 indices of batch `step`."""
        rng = np.random.default_rng((self.seed, step))
        return np.sort(rng.integers(0, len(self.faces), self.batch))

    def load(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Read batch `step` (without `device_put`)."""
        idx = self.batch_indices(step)
        faces = np.ascontiguousarray(self.faces[idx])
        masks = np.ascontiguousarray(self.masks[idx])
        if masks.ndim == 3:
            masks = masks[..., None]
        return faces, masks

    def _work(self, step: int) -> None:
        while not self._stop.is_set():
            try:
                item = self.load(step)
                if self._device_put is not None:
                    item = self._device_put(item)
            except BaseException as error:  # handed to the consumer, which raises it
                item = _Failure(error)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, _Failure):
                return
            step += 1

    def __iter__(self) -> "HostLoader":
        return self

    def __next__(self):
        if self._stop.is_set():
            raise StopIteration
        item = self._queue.get()
        if isinstance(item, _Failure):
            self.close()
            raise item.error
        return item

    def close(self) -> None:
        """Stop the thread and drop prefetched batches."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()

    def __enter__(self) -> "HostLoader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
