#!/usr/bin/env python
"""torchgfn's reference run (python/torchgfn_hypergrid.py) with gfn's `--lr_schedule cosine`:
every Adam group's rate times m + (1 - m) 0.5 (1 + cos(pi t / (n - 1))) at step t of
n = --n_iterations, down to m at the last step, where m is --lr_min_ratio (default 0, as gfn's;
this wrapper's own flag). Otherwise the same arguments as the reference script, whose path is
$TORCHGFN_REFERENCE (default: the repository's python/torchgfn_hypergrid.py). Run it with the
python of the torchgfn venv (see that script's docstring for the set-up).

    TORCHGFN_SCRIPT=launch/torchgfn_cosine.py GFN_ARGS="--lr_schedule cosine" \
        launch/compare-torchgfn.sh 6250 3 results/compare-cosine-both
"""

import argparse
import math
import os
import runpy
import sys

import torch

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
reference = os.environ.get(
    "TORCHGFN_REFERENCE", os.path.join(root, "python", "torchgfn_hypergrid.py")
)
ours = argparse.ArgumentParser(add_help=False)
ours.add_argument("--n_iterations", type=int, default=2000)  # the reference's default
ours.add_argument("--lr_min_ratio", type=float, default=0.0)
known, rest = ours.parse_known_args(sys.argv[1:])
steps, min_ratio = known.n_iterations, known.lr_min_ratio
if not 0.0 <= min_ratio <= 1.0:
    sys.exit(f"--lr_min_ratio must be between 0 and 1 (got {min_ratio})")


class CosineAdam(torch.optim.Adam):
    """Adam whose group rates follow gfn's cosine schedule over `steps` steps."""

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self.base_lrs = [g["lr"] for g in self.param_groups]
        self.t = 0

    def step(self, closure=None):
        progress = min(self.t / max(steps - 1, 1), 1.0)
        scale = min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
        for group, lr in zip(self.param_groups, self.base_lrs):
            group["lr"] = lr * scale
        self.t += 1
        return super().step(closure)


torch.optim.Adam = CosineAdam
sys.argv = [reference, "--n_iterations", str(steps)] + rest
runpy.run_path(reference, run_name="__main__")
