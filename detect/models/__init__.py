"""Flax Linen CNN detectors: MesoNet (Meso-4, MesoInception-4) and an Xception-style network.

Every model maps images NHWC in [0, 1] to one float32 logit per image (higher = more fake) and
takes `train` to switch dropout and batch-norm statistics, so they share one training loop.
"""

from detect.models.meso import Meso4, MesoInception4
from detect.models.xception import Xception

MODELS = {"meso4": Meso4, "mesoinception4": MesoInception4, "xception": Xception}
