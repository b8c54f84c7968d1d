"""CNN detectors (Flax), trained data-parallel: filled in by the CNN work; see detect/registry.py."""

CNN_DETECTORS: dict = {}
