r"""`dfjax forge`: a labelled deepfake dataset from footage of several people.

  dfjax synth -o out/people --identities 6 --frames 120
  dfjax forge out/people -o datasets/people --config configs/forge.py:tiny      # CPU, minutes
  dfjax forge footage/ -o datasets/mine --jobs 4                                # footage/<person>/*.mp4
  dfjax forge out/people -o datasets/all --config forge.py:tiny,all             # every generator, c23/c40 copies

Identities are split into train / val / test before anything is trained; each split's own models
make its fakes, so no generator is shared across splits. Methods (`methods`, comma-separated; each is a
folder under manipulated_sequences/ with its own section below):

  DFJaxAE    the swap autoencoder (shared encoder, one decoder per person of the split): face swap
  DFJaxDVP   the swap model with the deep-video-portrait conditioning branch: face swap
  DFJaxFOMM  First Order Motion Model (one per split): a still of the target animated by the video
  DFJaxDVPR  the deep-video-portrait reenactor (one per target person): the target driven by the video
"""

import ml_collections

from dfjax.config import parse_arg


def _method(config: str, steps: int, batch: int, checkpoint_every: int) -> ml_collections.ConfigDict:
    m = ml_collections.ConfigDict()
    m.config = config  # the training config (configs/<file>[:arg])
    m.steps = steps
    m.batch = batch  # the training batch (per identity for the swap models and the reenactor)
    m.checkpoint_every = checkpoint_every  # a stopped forge resumes its training from here
    return m


def get_config(arg: str = "default") -> ml_collections.ConfigDict:
    a = parse_arg(arg, size=("default", "tiny"), all=False)
    tiny = a.size == "tiny"

    c = ml_collections.ConfigDict()
    c.seed = 0
    c.methods = "all" if a.all else "DFJaxAE"  # the methods above that make fakes (comma-separated), or all

    c.split = ml_collections.ConfigDict()
    c.split.val = 0  # identities held out for validation (0, or 2 or more: a split's model swaps among them)
    c.split.test = 2  # identities held out for testing (0, or 2 or more)

    c.faces = ml_collections.ConfigDict()  # extraction of real footage (a `dfjax synth` folder has its face sets)
    c.faces.size = 64 if tiny else 256
    c.faces.detector = "hog,cnn"  # the CNN where HOG finds no face

    # one section per method: the model each split trains for it
    c.model = _method("swap.py:tiny" if tiny else "swap.py:sae128", 300 if tiny else 50_000, 8 if tiny else 32,
                      50 if tiny else 2000)  # DFJaxAE
    c.dvp = _method("swap_dvp.py:tiny" if tiny else "swap_dvp.py:128", 300 if tiny else 50_000,
                    8 if tiny else 32, 50 if tiny else 2000)  # DFJaxDVP
    c.fomm = _method("animate.py:tiny" if tiny else "animate.py", 300 if tiny else 100_000, 8 if tiny else 40,
                     50 if tiny else 2000)  # DFJaxFOMM
    c.reenact = _method("reenact.py:tiny" if tiny else "reenact.py", 300 if tiny else 50_000, 8 if tiny else 16,
                        50 if tiny else 2000)  # DFJaxDVPR

    c.fakes = ml_collections.ConfigDict()
    c.fakes.per_video = 1  # each video is faked with this many other identities of its split, per method
    c.fakes.crf = 18 if tiny else 23  # H.264 quality of the fakes (the `raw` copy)
    c.fakes.preset = "medium"  # x264's speed preset of the fakes and the compressed copies (veryfast: half the CPU)
    c.fakes.compressions = "c23,c40" if a.all else ""  # extra copies of every video: c23 (crf 23), c40 (crf 40)
    return c
