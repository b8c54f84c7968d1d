r"""The swap autoencoder with the deep-video-portrait conditioning branch.

Each decoder is modulated at four scales by maps of what the source frame's head, eyes and face
region do (correspondence, head pose, gaze, mask; dfjax.models.conditioning), stacked over a causal
window of `model.cond_window` frames; at swap time the maps are the source frame's, retargeted to
the target identity (dfjax.faces.retarget). Everything else is configs/swap.py.

  dfjax train --config configs/swap_dvp.py:tiny --workdir runs/dvp_tiny        # CPU, synthetic data
  dfjax train --config configs/swap_dvp.py:128 --a fs/a --b fs/b --workdir runs/dvp128
  dfjax train --config configs/swap_dvp.py:tiny --set model.cond_window=0 ...  # the same run, branch off
  dfjax swap a.mp4 -o a_as_b.mp4 --model runs/dvp_tiny

Arguments, comma-separated: tiny (tiny widths at 64 px, for CPU) or 128 (DFL-SAE at 128 px,
137.5 M parameters plus the branch), optionally gan (PatchGAN discriminators).
"""

import ml_collections

from dfjax.config import parse_arg
from dfjax.configs import swap

SIZES = {"tiny": "tiny", "128": "sae128"}


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    arg = parse_arg(arg, size=tuple(SIZES), gan=False)
    c = swap.get_config(f"{SIZES[arg.size]}{',gan' if arg.gan else ''}")
    c.model.cond_window = 3  # frames in the causal window of maps (Deep Video Portraits used 11); 0: branch off
    c.model.cond_width = 0  # base width of the map encoder (0: a quarter of the face encoder's first width)
    return c
