#!/usr/bin/env python
"""torchgfn 2.4.1 on a compositional HyperGrid reward past enumeration, for comparing with gfn.

Trains TB on-policy with the networks and optimiser of torchgfn_hypergrid.py (untied 2x256 ReLU
MLPs for P_F and P_B, KHot input, Adam 1e-3, log Z at --lr_logz) on `--reward` with the kwargs of
torchgfn's `get_reward_presets(reward, ndim, height)[--preset]`, R0 replaced by --R0 (the presets'
R0 is 0, whose log reward is -inf). Tracks, over all training terminal states, what gfn reports
at each validation:

    distinct_states  distinct terminal states visited
    tiers_found      distinct visited states that pass tiers 0..t, for each tier t (decoded
                     from the float32 reward R0 + sum of the weights of the tiers passed)
    modes_found      distinct visited states at or above torchgfn's mode threshold

States are keyed by their coordinate tuples: torchgfn's own int64 state index overflows on
10-D H=128 grids (torchgfn PR #511).

Usage (one thread, to compare with one core of gfn):

    .venv-torchgfn/bin/python python/torchgfn_compositional.py --reward bitwise_xor \
        --preset medium --ndim 10 --height 128 --R0 0.001 --n_iterations 2000 \
        --validation_interval 125 --seed 0

Output on stdout: one JSON object per validation (`it`, `trajectories`, `train_seconds`, the
counts above, `logZ`, `loss`), then `{"summary": {...}}` with `it_per_s` over training steps only.
launch/compare-compositional.sh runs it beside gfn.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchgfn_hypergrid  # noqa: E402  (its networks, optimiser and training step)

REWARDS = ("bitwise_xor", "multiplicative_coprime", "conditional_multiscale")
PRESETS = ("easy", "medium", "hard", "challenging", "impossible")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reward", choices=REWARDS, required=True)
    p.add_argument("--preset", choices=PRESETS, required=True)
    p.add_argument("--ndim", type=int, default=10)
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--R0", type=float, default=1e-3)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--n_iterations", type=int, default=2000)
    p.add_argument("--validation_interval", type=int, default=125)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr_logz", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    for name in ("ndim", "height", "batch_size", "n_iterations", "validation_interval", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if not (math.isfinite(args.R0) and args.R0 > 0):
        p.error("--R0 must be positive (log R(x) must be finite)")
    # The rest of torchgfn_hypergrid's settings, at its defaults: TB, untied, KHot, 2x256.
    args.loss, args.tied, args.preprocessor = "TB", False, "KHot"
    args.hidden_dim, args.n_hidden = 256, 2
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch
    from gfn.gym import HyperGrid
    from gfn.gym.hypergrid import get_reward_presets
    from gfn.utils.common import set_seed

    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    kwargs = dict(get_reward_presets(args.reward, args.ndim, args.height)[args.preset])
    kwargs["R0"] = args.R0
    env = HyperGrid(
        ndim=args.ndim,
        height=args.height,
        reward_fn_str=args.reward,
        reward_fn_kwargs=kwargs,
        device="cpu",
        validate_modes=False,
    )
    gflownet, optimizer = torchgfn_hypergrid.build(args, env, torch)
    threshold = env._mode_reward_threshold()
    weights = [float(w) for w in kwargs["tier_weights"]]
    # Reward levels R0 + w_0 + ... + w_{k-1}; a state's level is the nearest one.
    levels = torch.tensor([args.R0 + sum(weights[:k]) for k in range(len(weights) + 1)],
                          dtype=torch.float64)
    seen, tier_counts, modes = set(), [0] * len(weights), 0
    train_seconds, loss_sum, loss_count = 0.0, 0.0, 0

    def emit(obj):
        print(json.dumps(obj), flush=True)

    emit({"header": {"args": vars(args), "kwargs": kwargs, "mode_threshold": threshold}})
    for it in range(1, args.n_iterations + 1):
        t0 = time.perf_counter()
        trajectories, loss = torchgfn_hypergrid.train_step(gflownet, optimizer, env, args.batch_size)
        train_seconds += time.perf_counter() - t0
        loss_sum, loss_count = loss_sum + float(loss.item()), loss_count + 1

        states = trajectories.terminating_states
        rewards = env.reward(states).double()
        tiers = (rewards[:, None] - levels[None, :]).abs().argmin(-1).tolist()
        is_mode = (env.reward(states) >= threshold).tolist()
        for x, k, m in zip(states.tensor.tolist(), tiers, is_mode):
            key = tuple(x)
            if key in seen:
                continue
            seen.add(key)
            for t in range(k):
                tier_counts[t] += 1
            modes += bool(m)
        if it % args.validation_interval == 0 or it == args.n_iterations:
            emit({
                "it": it,
                "trajectories": it * args.batch_size,
                "train_seconds": train_seconds,
                "distinct_states": len(seen),
                "tiers_found": tier_counts,
                "modes_found": modes,
                "logZ": float(gflownet.logZ.item()),
                "loss": loss_sum / loss_count,
            })
            loss_sum, loss_count = 0.0, 0
    emit({"summary": {"it_per_s": args.n_iterations / train_seconds,
                      "trajectories": args.n_iterations * args.batch_size,
                      "train_seconds": train_seconds, "modes_found": modes,
                      "tiers_found": tier_counts, "distinct_states": len(seen)}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
