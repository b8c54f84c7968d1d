"""Flax networks: the face-swap autoencoders, the patch discriminator and their building blocks."""

from dfjax.models.attention import SelfAttention
from dfjax.models.autoencoder import ARCHITECTURES, FaceSwapAE, count_params, param_count, resolution
from dfjax.models.blocks import Conv, Residual, Upscale, pixel_shuffle
from dfjax.models.discriminator import PatchDiscriminator

__all__ = ["ARCHITECTURES", "Conv", "FaceSwapAE", "PatchDiscriminator", "Residual", "SelfAttention",
           "Upscale", "count_params", "param_count", "pixel_shuffle", "resolution"]
