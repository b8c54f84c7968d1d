r"""MesoInception-4 (Afchar et al. 2018): two inception blocks with dilated branches, then two conv blocks.

Trained by CNNDetector (detect/cnn.py): BCE on logits, Adam, class-balanced batches, augmentation
in the jitted step, data-parallel over every device, the best validation-AUC step kept.

  from dfjax.config import load_config
  from detect.registry import DETECTORS
  det = DETECTORS.get("mesoinception4")(load_config("configs/detect_mesoinception4.py:sbi"))   # or :tiny, :bf16, :tiny,sbi
  det.fit(train.crops, train.labels, val=(val.crops, val.labels), landmarks=train.landmarks)

Arguments, comma-separated: tiny (64 px, short run, for CPU tests), sbi (real crops only, fakes
made by self-blending every epoch), bf16 (bfloat16 compute).
"""

import ml_collections

from detect.cnn import config_from_arg


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    return config_from_arg("mesoinception4", arg)
