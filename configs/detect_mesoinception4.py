r"""MesoInception-4 (Afchar et al. 2018): two inception blocks with dilated branches, then two conv blocks.

Trained by CNNDetector (detect/cnn.py): BCE on logits, Adam, class-balanced batches, augmentation
in the jitted step, data-parallel over every device, the best validation-AUC step kept.

  from dfjax.config import load_config
  from detect.registry import DETECTORS
  det = DETECTORS["mesoinception4"](load_config("configs/detect_mesoinception4.py:sbi"))   # or :tiny, :bf16, :tiny,sbi
  det.fit(train.crops, train.labels, val=(val.crops, val.labels), landmarks=train.landmarks)

Arguments, comma-separated: tiny (64 px, short run, for CPU tests), sbi (real crops only, fakes
made by self-blending every epoch), bf16 (bfloat16 compute).
"""

import ml_collections

from detect.cnn import cnn_config

FLAGS = {"tiny", "sbi", "bf16"}


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    flags = {p.strip() for p in (arg or "").split(",") if p.strip()}
    if not flags <= FLAGS:
        raise ValueError(f"unknown arguments {sorted(flags - FLAGS)}; expected some of {sorted(FLAGS)}")
    c = cnn_config("mesoinception4", tiny="tiny" in flags, sbi="sbi" in flags)
    if "bf16" in flags:
        c.model.dtype = "bfloat16"
    return c
