r"""The shared-encoder / two-decoder face-swap autoencoder (faceswap "Original", DFL-SAE), optionally a GAN.

Run (the argument picks the network; add ",gan" for PatchGAN discriminators and ",res=N" for the
input size of the tiny networks):

  dfjax train --config configs/swap.py:tiny --workdir runs/tiny              # CPU, synthetic data
  dfjax train --config swap.py:tiny,gan,res=128 --workdir runs/tiny128       # shipped configs by name, anywhere
  dfjax train --config configs/swap.py:original --a fs/a --b fs/b --workdir runs/orig
  dfjax train --config configs/swap.py:sae128,gan --a fs/a --b fs/b --workdir runs/sae --set train.steps=20000

Networks (layer for layer as the reference networks benchmarks/train.py times): original (64 px, 94.5 M), sae128 (137.5 M),
sae256 (287.0 M); tiny (64 px, 1.5 M, for CPU tests and the demo) and liae_tiny (DeepFaceLab's LIAE
layout at tiny widths).
"""

import ml_collections

from dfjax.config import log_settings, parse_arg
from dfjax.models.autoencoder import ARCHITECTURES, resolution

# the registered architectures, "tiny" first (the default); a new one needs no edit here
ARCHS = ("tiny", *[a for a in ARCHITECTURES.names() if a != "tiny"])


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    arg = parse_arg(arg, arch=ARCHS, gan=False, res=0)
    arch = arg.arch
    tiny = "tiny" in arch  # CPU-sized: float32, a higher learning rate, small batches
    if arg.res and resolution(arch, arg.res) != arg.res:
        raise ValueError(f"{arch} is a {resolution(arch)} px network; res={arg.res} applies to the tiny ones")

    c = ml_collections.ConfigDict()
    c.trainer = "swap"  # dfjax.training.trainer.TRAINERS: which trainer `dfjax train` runs
    c.seed = 0

    c.model = ml_collections.ConfigDict()
    c.model.arch = arch
    c.model.dtype = "float32" if tiny else "bfloat16"  # compute dtype; parameters stay float32
    c.model.attention_res = 0  # SAGAN self-attention in the decoders at this resolution (0: off)
    c.model.tiny_res = arg.res or 64  # input size of the tiny architectures (a multiple of 16)
    c.model.latent = "ae"  # ae | vae: a variational bottleneck (mean and log-variance heads, KL term loss.kl)

    c.data = ml_collections.ConfigDict()
    c.data.a = ""  # face-set folders; empty: render the built-in synthetic identities
    c.data.b = ""
    c.data.identities = ""  # N >= 2 identities instead of a, b: comma-separated face-set folders (named after them)
    c.data.synth_identities = 2  # without face sets: how many synthetic identities (a, b, c, ...) to render
    c.data.synth_frames = 240
    c.data.synth_size = 128
    c.data.on_device = True  # False: stream batches from the memory-mapped face sets (sets too large for the device)
    c.data.eye_weight = 3.0  # eye and mouth priority: loss weight inside those regions
    c.data.mouth_weight = 2.0
    c.data.augment = ml_collections.ConfigDict(dict(
        enabled=True, rotation_range=10.0, zoom_range=0.05, shift_range=0.05, flip_prob=0.5,
        warp=True, color_lightness=0.3, color_ab=0.08))

    c.train = ml_collections.ConfigDict()
    c.train.steps = 1500 if tiny else 100_000
    c.train.batch_per_side = 16 if tiny else 64
    c.train.optimizer = "adam"
    c.train.lr = 5e-4 if tiny else 5e-5
    c.train.b1 = 0.5
    c.train.b2 = 0.99
    c.train.schedule = "constant"  # constant | cosine | warmup_cosine
    c.train.warmup_steps = 0
    c.train.grad_clip = 1.0  # global norm; 0: off
    c.train.ema_decay = 0.999 if not tiny else 0.99  # EMA of generator weights, for swapping
    c.train.nan_patience = 20  # stop after this many non-finite steps in a row

    c.loss = ml_collections.ConfigDict()
    c.loss.l1 = 1.0
    c.loss.mse = 0.0
    c.loss.ssim = 0.0 if tiny else 1.0
    c.loss.ms_ssim = 0.0
    c.loss.mask = 1.0
    c.loss.outside_mask_weight = 0.2  # faceswap's penalised mask loss: weight of pixels outside the face
    c.loss.ffl = 0.0  # focal frequency loss
    c.loss.perceptual = 0.0  # VGG16 feature term (pix2pixHD's layer weights)
    c.loss.style = 0.0  # VGG16 style term: Gram matrices of conv1_2 ... conv4_3 (Johnson et al. 2016)
    c.loss.vgg16_weights = ""  # .npz or .h5 file with VGG16 weights, needed when perceptual or style > 0
    c.loss.tv = 0.0  # total variation of the generated face (needs no weights)
    # KL of the code to N(0, I) with model.latent=vae (ignored with ae): summed over the code, while the
    # pixel losses are per-pixel means, so 1e-4 is already a strong prior for a 128-wide code
    c.loss.kl = 1e-4
    c.loss.kl_warmup_steps = 0  # the KL weight ramps linearly from 0 over this many steps (0: full at once)

    c.gan = ml_collections.ConfigDict()
    c.gan.enabled = arg.gan
    c.gan.objective = "hinge"  # hinge | lsgan
    c.gan.weight = 0.1
    c.gan.lr = c.train.lr
    c.gan.features = 32 if tiny else 64
    c.gan.n_layers = 3
    c.gan.spectral_norm = True
    c.gan.attention_res = 0

    c.log = log_settings(tiny)
    return c
