r"""`dfjax forge`: a labelled deepfake dataset from footage of several people.

  dfjax synth -o out/people --identities 6 --frames 120
  dfjax forge out/people -o datasets/people --config configs/forge.py:tiny      # CPU, minutes
  dfjax forge footage/ -o datasets/mine                                         # footage/<person>/*.mp4

Identities are split into train / val / test before anything is trained; each split's own swap model
(one decoder per identity of that split) makes its fakes, so no generator is shared across splits.
"""

import ml_collections

from dfjax.config import parse_arg


def get_config(arg: str = "default") -> ml_collections.ConfigDict:
    tiny = parse_arg(arg, size=("default", "tiny")).size == "tiny"

    c = ml_collections.ConfigDict()
    c.seed = 0

    c.split = ml_collections.ConfigDict()
    c.split.val = 0  # identities held out for validation (0, or 2 or more: a split's model swaps among them)
    c.split.test = 2  # identities held out for testing (2 or more)

    c.faces = ml_collections.ConfigDict()  # extraction of real footage (a `dfjax synth` folder has its face sets)
    c.faces.size = 64 if tiny else 256
    c.faces.detector = "hog,cnn"  # the CNN where HOG finds no face

    c.model = ml_collections.ConfigDict()
    c.model.config = "swap.py:tiny" if tiny else "swap.py:sae128"  # the swap model each split trains
    c.model.steps = 300 if tiny else 50_000
    c.model.batch_per_side = 8 if tiny else 32
    c.model.checkpoint_every = 50 if tiny else 2000  # a stopped forge resumes its training from here

    c.fakes = ml_collections.ConfigDict()
    c.fakes.per_video = 1  # each video is swapped into this many other identities of its split
    c.fakes.crf = 18 if tiny else 23  # H.264 quality of the fakes and of the copied originals' re-encode
    c.fakes.method = "DFJaxAE"  # the folder name under manipulated_sequences/
    return c
