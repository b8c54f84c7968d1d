r"""Meso-4 (Afchar et al. 2018): four conv blocks, 28 k parameters.

Trained by CNNDetector (detect/cnn.py): BCE on logits, Adam, class-balanced batches, augmentation
in the jitted step, data-parallel over every device, the best validation-AUC step kept.

  from dfjax.config import load_config
  from detect.registry import DETECTORS
  det = DETECTORS.get("meso4")(load_config("configs/detect_meso4.py:sbi"))   # or :tiny, :bf16, :tiny,sbi
  det.fit(train.crops, train.labels, val=(val.crops, val.labels), landmarks=train.landmarks)

Arguments, comma-separated: tiny (64 px, short run, for CPU tests), sbi (real crops only, fakes
made by self-blending every epoch), mix (with sbi: the given fakes too, beside the self-blended ones),
bf16 (bfloat16 compute).
"""

import ml_collections

from detect.cnn import config_from_arg


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    return config_from_arg("meso4", arg)
