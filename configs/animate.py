r"""First Order Motion Model (Siarohin et al. 2019): animate one photo with the motion of a video.

Run (videos come from face sets: `dfjax extract` or `dfjax synth` of them; leave out --a/--b for the
built-in synthetic identities):

  dfjax train --config configs/animate.py:tiny --workdir runs/fomm_tiny                 # CPU, synthetic
  dfjax train --config configs/animate.py --a fs/clips1 --b fs/clips2 --workdir runs/fomm
  dfjax animate --model runs/fomm --source photo.jpg --driver driver.mp4 -o out/animated.mp4

Defaults are the paper's vox-256 config (256 px, 10 keypoints with Jacobians, keypoint hourglass
32/1024/5 blocks at scale 0.25 with temperature 0.1, generator 64/512 with 2 down blocks and 6
bottleneck blocks and an occlusion map, dense motion 64/1024/5 blocks at scale 0.25, losses:
perceptual 10 per VGG19 layer on a 4-scale pyramid, equivariance 10 + 10, Adam 2e-4 (0.5, 0.999),
batch 40 over its 8 GPUs). `:tiny` is 64 px with narrow networks for CPU. Without `loss.vgg19` (a
local .npz of VGG19 weights) the perceptual term is an L1 image pyramid, and the log says so.
"""

import ml_collections

from dfjax.config import log_settings, parse_arg


def get_config(arg: str = "default") -> ml_collections.ConfigDict:
    a = parse_arg(arg, size=("default", "tiny"), gan=False)
    tiny = a.size == "tiny"

    c = ml_collections.ConfigDict()
    c.trainer = "animate"  # dfjax.training.trainer.TRAINERS
    c.seed = 0

    c.model = ml_collections.ConfigDict()
    c.model.res = 64 if tiny else 256
    c.model.num_kp = 10
    c.model.estimate_jacobian = True
    c.model.dtype = "float32" if tiny else "bfloat16"  # compute dtype; parameters stay float32
    c.model.keypoints = ml_collections.ConfigDict()
    c.model.keypoints.block_expansion = 16 if tiny else 32
    c.model.keypoints.max_features = 128 if tiny else 1024
    c.model.keypoints.num_blocks = 3 if tiny else 5
    c.model.keypoints.scale = 0.25  # the detector sees the image at this scale (anti-aliased)
    c.model.keypoints.temperature = 0.1
    c.model.generator = ml_collections.ConfigDict()
    c.model.generator.block_expansion = 16 if tiny else 64
    c.model.generator.max_features = 128 if tiny else 512
    c.model.generator.num_down_blocks = 2
    c.model.generator.num_bottleneck_blocks = 2 if tiny else 6
    c.model.generator.occlusion = True
    c.model.generator.image_skip = tiny  # not the paper's: blend the warped source in at full resolution (CPU-sized)
    c.model.dense_motion = ml_collections.ConfigDict()
    c.model.dense_motion.block_expansion = 16 if tiny else 64
    c.model.dense_motion.max_features = 128 if tiny else 1024
    c.model.dense_motion.num_blocks = 3 if tiny else 5
    c.model.dense_motion.scale = 0.25
    c.model.dense_motion.kp_variance = 0.01

    c.data = ml_collections.ConfigDict()
    c.data.a = ""  # a face set whose source videos are trained on; empty (with b): synthetic identities
    c.data.b = ""  # a second face set (optional)
    c.data.identities = ""  # face sets, comma-separated (`dfjax train --faces`), instead of a and b
    c.data.crop_scale = 1.8  # crop side / side of the landmarks' box over the whole clip (a stable crop)
    c.data.flip = True  # mirror both frames of a pair together, at random
    c.data.synth_frames = 120 if tiny else 300
    c.data.synth_size = 64 if tiny else 128
    c.data.synth_identities = 2  # without face sets: how many synthetic people's videos to train on (2 to 26)

    c.train = ml_collections.ConfigDict()
    c.train.steps = 2000 if tiny else 100_000
    c.train.batch = 8 if tiny else 40  # pairs (source, driving) per step, over every device
    c.train.optimizer = "adam"
    c.train.lr = 2e-4
    c.train.b1 = 0.5
    c.train.b2 = 0.999
    c.train.schedule = "constant"  # constant | cosine | warmup_cosine
    c.train.warmup_steps = 0
    c.train.grad_clip = 0.0
    c.train.ema_decay = 0.99 if tiny else 0.999
    c.train.nan_patience = 20

    c.loss = ml_collections.ConfigDict()
    c.loss.perceptual = 10.0  # per VGG19 layer (relu1_1 .. relu5_1) and pyramid scale; L1 per scale without VGG19
    c.loss.scales = (1.0, 0.5, 0.25, 0.125)  # the image pyramid
    c.loss.vgg19 = ""  # a local .npz of VGG19 weights (conv1_1/kernel HWIO, conv1_1/bias, ...); empty: L1 pyramid
    c.loss.equivariance_value = 10.0
    c.loss.equivariance_jacobian = 10.0

    c.transform = ml_collections.ConfigDict()  # the random warp of the equivariance loss
    c.transform.sigma_affine = 0.05
    c.transform.sigma_tps = 0.005
    c.transform.points_tps = 5

    c.gan = ml_collections.ConfigDict()
    c.gan.enabled = a.gan  # the paper's vox-adv: multi-scale discriminator with feature matching
    c.gan.objective = "lsgan"
    c.gan.weight = 1.0
    c.gan.feature_matching = 10.0
    c.gan.lr = c.train.lr
    c.gan.scales = (1.0,)
    c.gan.block_expansion = 16 if tiny else 32
    c.gan.max_features = 128 if tiny else 512
    c.gan.num_blocks = 3 if tiny else 4
    c.gan.spectral_norm = True

    c.log = log_settings(tiny)
    return c
