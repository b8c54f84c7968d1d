"""Flax Linen CNN architectures for deepfake detection, by name: `CNN_MODELS`.

Every model maps images NHWC in [0, 1] to one float32 logit per image (higher = more fake) and
takes `train` to switch dropout and batch-norm statistics, so one trainer (`detect.cnn.CNNDetector`)
trains them all. A module of this package files each model with `@CNN_MODELS.register("name")`;
the registry imports every module here when first read, and every model it holds is also a deepfake
detector of the same name (detect/detectors/cnn.py), configured by configs/detect_NAME.py.
"""

from dfjax.registry import Registry

CNN_MODELS = Registry("CNN detector architecture", discover="detect.models")
