r"""Xception (Chollet 2017), FaceForensics++'s and DeepfakeBench's reference detector, 20.8 M parameters.

Trained by CNNDetector (detect/cnn.py): BCE on logits, Adam, class-balanced batches, augmentation
in the jitted step, data-parallel over every device, the best validation-AUC step kept.

  from dfjax.config import load_config
  from detect.registry import DETECTORS
  det = DETECTORS.get("xception")(load_config("configs/detect_xception.py:sbi"))   # or :tiny, :bf16, :tiny,sbi
  det.fit(train.crops, train.labels, val=(val.crops, val.labels), landmarks=train.landmarks)

Arguments, comma-separated: tiny (64 px, short run, for CPU tests), sbi (real crops only, fakes
made by self-blending every epoch), bf16 (bfloat16 compute).
"""

import ml_collections

from detect.cnn import config_from_arg


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    return config_from_arg("xception", arg)
