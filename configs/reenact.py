r"""Reenactment after Deep Video Portraits: a conditional U-Net + PatchGAN that re-renders one target.

Run (one face set: the target whose video is re-rendered; leave out --a for synthetic identity A):

  dfjax train --config configs/reenact.py:tiny --workdir runs/reenact_tiny            # CPU, synthetic A
  dfjax train --config configs/reenact.py --a fs/target --workdir runs/reenact --set train.steps=50000
  dfjax reenact --model runs/reenact --driver driver.mp4 -o out/reenacted.mp4

The generator sees the conditioning maps (dfjax.models.conditioning) of the current frame and the
window-1 frames before it, and learns to reproduce the target's aligned face crop (L1 + PatchGAN).
`data.holdout` keeps the last fraction of the target's frames out of training for self-reenactment.
"""

import ml_collections

from dfjax.config import log_settings, parse_arg


def get_config(arg: str = "default") -> ml_collections.ConfigDict:
    tiny = parse_arg(arg, size=("default", "tiny")).size == "tiny"

    c = ml_collections.ConfigDict()
    c.trainer = "reenact"  # dfjax.training.trainer.TRAINERS: which trainer `dfjax train` runs
    c.seed = 0

    c.model = ml_collections.ConfigDict()
    c.model.res = 64 if tiny else 256
    c.model.cond_window = 3  # causal window of conditioning frames (Deep Video Portraits used 11)
    c.model.features = 16 if tiny else 64
    c.model.depth = 4 if tiny else 7
    c.model.max_features = 128 if tiny else 512
    c.model.dtype = "float32" if tiny else "bfloat16"  # compute dtype; parameters stay float32

    c.data = ml_collections.ConfigDict()
    c.data.a = ""  # the target's face set; empty: the built-in synthetic identity A
    c.data.b = ""  # unused (reenactment trains on one identity); kept so `--b` gives a clear error
    c.data.holdout = 0.0  # last fraction of the target's faces left out of training (self-reenactment)
    c.data.synth_frames = 240
    c.data.synth_size = 128

    c.train = ml_collections.ConfigDict()
    c.train.steps = 1500 if tiny else 50_000
    c.train.batch_per_side = 8 if tiny else 16  # one identity: the whole batch
    c.train.optimizer = "adam"
    c.train.lr = 5e-4 if tiny else 2e-4
    c.train.b1 = 0.5
    c.train.b2 = 0.999
    c.train.schedule = "constant"  # constant | cosine | warmup_cosine
    c.train.warmup_steps = 0
    c.train.grad_clip = 1.0
    c.train.ema_decay = 0.99 if tiny else 0.999
    c.train.nan_patience = 20

    c.loss = ml_collections.ConfigDict()
    c.loss.l1 = 100.0  # pix2pix / DVP: lambda = 100 against an adversarial weight of 1
    c.gan = ml_collections.ConfigDict()
    c.gan.enabled = True
    c.gan.objective = "lsgan"  # hinge | lsgan
    c.gan.weight = 1.0
    c.gan.lr = c.train.lr
    c.gan.features = 16 if tiny else 64
    c.gan.n_layers = 2 if tiny else 3
    c.gan.spectral_norm = True

    c.log = log_settings(tiny)
    return c
