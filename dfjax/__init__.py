"""dfjax: make face-swap fakes and measure how well they can be detected, in JAX."""

import os

# NumPy's and SciPy's linear algebra here is on tiny matrices (landmarks, 3x3 transforms), where
# OpenBLAS's thread pool never helps; its threads only spin, about 0.1 CPU s each in every process
# that imports NumPy (the face workers' server too). Before NumPy loads, and only if not set already.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
