#!/usr/bin/env python
"""Side-by-side reference: torchgfn 2.4.1 trained on HyperGrid, for comparing with gfn.

Trains a GFlowNet with torchgfn's public API (its HyperGrid environment, KHot or OneHot
preprocessor, MLP modules, DiscretePolicyEstimator, TB / DB / SubTB GFlowNets and Sampler) in the
setting of the TB paper: on-policy, untied 2x256 ReLU MLPs for P_F and P_B (and log F for DB and
SubTB), a learned P_B, Adam with lr 1e-3 for the networks (log F included) and --lr_logz for log Z,
no gradient clipping, batch 16. --tied makes P_B (and log F) share P_F's trunk instead.

Set-up (PyPI's torch wheel brings its CUDA libraries, about 5 GB; the script runs on the CPU):

    python3 -m venv .venv-torchgfn
    .venv-torchgfn/bin/pip install torchgfn==2.4.1

(where https://download.pytorch.org/whl/cpu is reachable, `pip install torch --index-url
https://download.pytorch.org/whl/cpu` first saves most of that space).

Usage (one thread, to compare with one core of gfn):

    .venv-torchgfn/bin/python python/torchgfn_hypergrid.py --ndim 4 --height 8 --R0 0.1 \
        --loss TB --batch_size 16 --n_iterations 2000 --validation_interval 500 --seed 0 --threads 1

launch/bench-vs-torchgfn.sh, launch/compare-torchgfn.sh and launch/tb-collapse.sh run it
(TORCHGFN_PYTHON names the venv's python); launch/torchgfn_cosine.py wraps it with a cosine
learning-rate schedule.

Output on stdout, one JSON object per line:

- first `{"header": {...}}`: the arguments, the torchgfn and torch versions, the number of grid
  states and of mode states, and the true log Z;
- then one line per validation, starting with `{"it"` (at iteration 0, every --validation_interval
  iterations up to --late_after, every --late_interval iterations after it, and at the last one):
    it            training iterations done
    trajectories  it * batch_size
    exact_l1      sum_x |P_T(x) - R(x)/Z|, P_T the policy's exact terminal distribution, computed
                  by dynamic programming over all grid states (in order of coordinate sum) from
                  P_F's probabilities evaluated on every state at once
    l1_sampled    torchgfn's own sampled L1 (env.validate) from --validation_samples fresh
                  terminal states (absent when --validation_samples is 0); jsd_sampled its JSD
    logZ          TB: the learned log Z; DB and SubTB: log F(s0)
    logZ_err      logZ - true log Z (signed)
    modes_found   distinct mode states (reward R0 + R1 + R2: every coordinate in the thin band)
                  among all training terminal states so far; n_modes how many exist
    loss          mean training loss over the iterations since the previous line
    train_seconds wall time spent in training steps so far (validation excluded)
- last `{"summary": {...}}`: it_per_s (iterations per second of training steps only: sampling,
  loss, backward and Adam step; validation and mode bookkeeping excluded), it_per_cpu_s (the same
  per CPU-second of the process, steadier on a shared machine), n_iterations, seconds (whole run),
  train_seconds, validation_seconds and the last validation's figures.

--json_out FILE also writes {"header", "records", "summary"} to FILE (rewritten at each
validation). Warnings and errors go to stderr.

The HyperGrid reward is torchgfn's "original" one:
R(x) = R0 + R1 prod_d 1[0.25 < |x_d/(H-1) - 0.5|] + R2 prod_d 1[0.3 < |x_d/(H-1) - 0.5| < 0.4].
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

LOSSES = ("TB", "DB", "SubTB")
SUBTB_WEIGHTINGS = (
    "DB", "ModifiedDB", "TB", "geometric", "equal", "geometric_within", "equal_within"
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Train torchgfn 2.4.1 on HyperGrid and print JSON lines (see the docstring)."
    )
    p.add_argument("--ndim", type=int, default=4)
    p.add_argument("--height", type=int, default=8)
    p.add_argument("--R0", type=float, default=0.1)
    p.add_argument("--R1", type=float, default=0.5)
    p.add_argument("--R2", type=float, default=2.0)
    p.add_argument("--loss", choices=LOSSES, default="TB")
    p.add_argument("--subTB_weighting", choices=SUBTB_WEIGHTINGS, default="geometric_within")
    p.add_argument("--subTB_lambda", type=float, default=0.9)
    p.add_argument("--preprocessor", choices=("KHot", "OneHot"), default="KHot")
    p.add_argument("--tied", action="store_true", help="P_B (and log F) share P_F's trunk")
    p.add_argument("--hidden_dim", type=int, default=256)
    p.add_argument("--n_hidden", type=int, default=2, help="hidden layers per MLP")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--n_iterations", type=int, default=2000)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam lr of the networks (log F too)")
    p.add_argument("--lr_logz", type=float, default=0.1, help="Adam lr of log Z (TB)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--validation_interval", type=int, default=500)
    p.add_argument("--late_after", type=int, default=2000,
                   help="after this iteration, validate every --late_interval instead")
    p.add_argument("--late_interval", type=int, default=2000)
    p.add_argument("--validation_samples", type=int, default=200000,
                   help="fresh samples for torchgfn's sampled L1 (0: skip it)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--json_out", default="", help="also write header, records and summary here")
    p.add_argument("--speed_only", action="store_true",
                   help="time the training steps only: no validation and no enumeration, so any "
                        "grid size works (10-D H=128); the summary has it_per_s")
    args = p.parse_args(argv)

    def need(ok, message):
        if not ok:
            p.error(message)

    need(args.ndim >= 1, "--ndim must be at least 1")
    need(args.height >= 2, "--height must be at least 2")
    need(args.speed_only or args.height ** args.ndim <= 5_000_000,
         "--height ** --ndim must be at most 5,000,000 (the exact L1 enumerates every state; "
         "--speed_only times larger grids)")
    need(math.isfinite(args.R0) and args.R0 > 0, "--R0 must be positive (log R(x) must be finite)")
    need(math.isfinite(args.R1) and args.R1 >= 0, "--R1 must be non-negative")
    need(math.isfinite(args.R2) and args.R2 >= 0, "--R2 must be non-negative")
    need(math.isfinite(args.subTB_lambda) and args.subTB_lambda > 0,
         "--subTB_lambda must be positive")
    need(args.hidden_dim >= 1, "--hidden_dim must be at least 1")
    need(args.n_hidden >= 1, "--n_hidden must be at least 1")
    need(args.batch_size >= 1, "--batch_size must be at least 1")
    need(args.n_iterations >= 0, "--n_iterations must be non-negative")
    need(math.isfinite(args.lr) and args.lr > 0, "--lr must be positive")
    need(math.isfinite(args.lr_logz) and args.lr_logz > 0, "--lr_logz must be positive")
    need(args.seed >= 0, "--seed must be non-negative")
    need(args.validation_interval >= 1, "--validation_interval must be at least 1")
    need(args.late_after >= 0, "--late_after must be non-negative")
    need(args.late_interval >= 1, "--late_interval must be at least 1")
    need(args.validation_samples >= 0, "--validation_samples must be non-negative")
    need(args.threads >= 1, "--threads must be at least 1")
    return args, p


def validation_due(it, args):
    """Iteration 0, multiples of validation_interval up to late_after, multiples of
    late_interval after it, and the last iteration."""
    if it == 0 or it == args.n_iterations:
        return True
    if it <= args.late_after:
        return it % args.validation_interval == 0
    return it % args.late_interval == 0


def build(args, env, torch):
    """The GFlowNet and its Adam optimizer, from torchgfn's public modules."""
    from gfn.estimators import DiscretePolicyEstimator, ScalarEstimator
    from gfn.gflownet import DBGFlowNet, SubTBGFlowNet, TBGFlowNet
    from gfn.preprocessors import KHotPreprocessor, OneHotPreprocessor
    from gfn.utils.modules import MLP

    if args.preprocessor == "KHot":
        preprocessor = KHotPreprocessor(height=args.height, ndim=args.ndim)
    else:
        preprocessor = OneHotPreprocessor(
            n_states=env.n_states, get_states_indices=env.get_states_indices
        )

    def mlp(output_dim, trunk=None):
        return MLP(
            input_dim=preprocessor.output_dim,
            output_dim=output_dim,
            hidden_dim=args.hidden_dim,
            n_hidden_layers=args.n_hidden,
            activation_fn="relu",
            trunk=trunk,
        )

    module_pf = mlp(env.n_actions)
    shared = module_pf.trunk if args.tied else None
    module_pb = mlp(env.n_actions - 1, shared)
    pf = DiscretePolicyEstimator(
        module_pf, env.n_actions, preprocessor=preprocessor, is_backward=False
    )
    pb = DiscretePolicyEstimator(
        module_pb, env.n_actions, preprocessor=preprocessor, is_backward=True
    )
    if args.loss == "TB":
        gflownet = TBGFlowNet(pf=pf, pb=pb, init_logZ=0.0)
    else:
        logF = ScalarEstimator(mlp(1, shared), preprocessor=preprocessor)
        if args.loss == "DB":
            gflownet = DBGFlowNet(pf=pf, pb=pb, logF=logF)
        else:
            gflownet = SubTBGFlowNet(
                pf=pf, pb=pb, logF=logF, weighting=args.subTB_weighting, lamda=args.subTB_lambda
            )

    # Two groups: every network parameter (P_F, P_B, log F; a tied trunk once) at --lr, and
    # log Z (TB only) at --lr_logz. named_parameters() lists a shared tensor once.
    logz = [p for name, p in gflownet.named_parameters() if name == "logZ"]
    nets = [p for name, p in gflownet.named_parameters() if name != "logZ"]
    groups = [{"params": nets, "lr": args.lr}]
    if logz:
        groups.append({"params": logz, "lr": args.lr_logz})
    # Looked up at run time: launch/torchgfn_cosine.py replaces torch.optim.Adam.
    optimizer = torch.optim.Adam(groups)
    return gflownet, optimizer


def train_step(gflownet, optimizer, env, batch_size):
    """One on-policy step: P_F's log-probabilities are kept from sampling (save_logprobs) and
    reused by the loss; P_B (and log F) are evaluated in the loss. Returns the batch and loss."""
    trajectories = gflownet.sample_trajectories(env, n=batch_size, save_logprobs=True)
    optimizer.zero_grad()
    loss = gflownet.loss_from_trajectories(env, trajectories, recalculate_all_logprobs=False)
    loss.backward()
    optimizer.step()
    return trajectories, loss


class Evaluator:
    """The exact terminal distribution of P_F and the target, over all grid states."""

    def __init__(self, args, env, torch):
        self.torch = torch
        self.env = env
        self.all_states = env.all_states  # canonical order: index = sum_d x_d H^(ndim-1-d)
        x = self.all_states.tensor
        n = x.shape[0]
        assert torch.equal(env.get_states_indices(self.all_states), torch.arange(n))
        reward = env.reward(self.all_states).double()
        self.target = reward / reward.sum()
        self.true_log_z = env.log_partition()
        if self.true_log_z is None:
            self.true_log_z = math.log(reward.sum().item())
        # Mode states: every coordinate in the thin band (reward R0 + R1 + R2), decided on the
        # coordinates rather than by comparing float rewards (the same 1e-12 margins as torchgfn).
        ax = (x.double() / (args.height - 1) - 0.5).abs()
        self.is_mode = ((0.3 + 1e-12 < ax) & (ax < 0.4 - 1e-12)).all(-1)
        self.n_modes = int(self.is_mode.sum())
        # Layers of equal coordinate sum; a state's parents are one layer below.
        strides = [args.height ** (args.ndim - 1 - d) for d in range(args.ndim)]
        self.layers = []
        total = x.sum(-1)
        for s in range(1, int(total.max()) + 1):
            idx = (total == s).nonzero(as_tuple=True)[0]
            parents = []
            for d in range(args.ndim):
                has = x[idx, d] > 0
                parents.append((idx[has], idx[has] - strides[d], d))
            self.layers.append(parents)

    def exact_terminal(self, pf):
        """P_T(x) = P(reach x) P_F(exit | x), from P_F on every state in one batch."""
        torch = self.torch
        with torch.no_grad():
            out = pf(self.all_states)
            dist = pf.to_probability_distribution(self.all_states, out)
            probs = dist.probs.double()  # [n, ndim + 1], forbidden actions 0, exit last
        reach = torch.zeros(probs.shape[0], dtype=torch.float64)
        reach[0] = 1.0
        for parents in self.layers:
            for child, parent, d in parents:
                reach.index_add_(0, child, reach[parent] * probs[parent, d])
        return reach * probs[:, -1]

    def exact_l1(self, pf):
        return float((self.exact_terminal(pf) - self.target).abs().sum())


def main(argv=None):
    args, parser = parse_args(argv)
    wall_start = time.perf_counter()

    import torch

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    import gfn
    from gfn.gym import HyperGrid
    from gfn.utils.common import set_seed

    set_seed(args.seed)
    try:
        env = HyperGrid(
            ndim=args.ndim,
            height=args.height,
            reward_fn_str="original",
            reward_fn_kwargs={"R0": args.R0, "R1": args.R1, "R2": args.R2},
            device="cpu",
            calculate_partition=not args.speed_only,
            store_all_states=not args.speed_only,
        )
    except ValueError as e:  # e.g. no mode state on this grid
        parser.error(f"HyperGrid(ndim={args.ndim}, height={args.height}): {e}")
    evaluator = None if args.speed_only else Evaluator(args, env, torch)
    gflownet, optimizer = build(args, env, torch)
    n_params = sum(p.numel() for p in gflownet.parameters())

    header = {
        "args": vars(args),
        "torchgfn": gfn.__version__,
        "torch": torch.__version__,
        "n_states": env.n_states,
        "n_modes": evaluator.n_modes if evaluator else None,
        "true_logZ": evaluator.true_log_z if evaluator else None,
        "n_parameters": n_params,
    }
    records = []

    def emit(obj):
        print(json.dumps(obj), flush=True)

    def save(summary=None):
        if not args.json_out:
            return
        tmp = args.json_out + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"header": header, "records": records, "summary": summary}, f, indent=1)
        os.replace(tmp, args.json_out)

    emit({"header": header})
    save()

    s0 = env.States(env.s0.unsqueeze(0))
    modes_seen = set()
    train_seconds = 0.0
    train_cpu_seconds = 0.0
    validation_seconds = 0.0
    loss_sum, loss_count = 0.0, 0

    def validate(it):
        nonlocal validation_seconds
        start = time.perf_counter()
        # Validation draws from its own copy of torch's random stream, so the training run is
        # the same whatever the validation schedule.
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            record = {"it": it, "trajectories": it * args.batch_size}
            record["exact_l1"] = evaluator.exact_l1(gflownet.pf)
            if args.validation_samples > 0:
                info, _ = env.validate(
                    gflownet,
                    n_validation_samples=args.validation_samples,
                    check_sample_sufficiency=False,
                )
                record["l1_sampled"] = info["l1_dist"]
                record["jsd_sampled"] = info["jsd"]
            if args.loss == "TB":
                log_z = float(gflownet.logZ.item())
            else:
                log_z = float(gflownet.logF(s0).item())
            record["logZ"] = log_z
            record["logZ_err"] = log_z - evaluator.true_log_z
            record["modes_found"] = len(modes_seen)
            record["n_modes"] = evaluator.n_modes
            record["loss"] = loss_sum / loss_count if loss_count else None
            record["train_seconds"] = train_seconds
        validation_seconds += time.perf_counter() - start
        records.append(record)
        emit(record)
        save()

    if evaluator:
        validate(0)
    for it in range(1, args.n_iterations + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        trajectories, loss = train_step(gflownet, optimizer, env, args.batch_size)
        train_seconds += time.perf_counter() - t0
        train_cpu_seconds += time.process_time() - c0

        loss_sum += float(loss.item())
        loss_count += 1
        if not math.isfinite(loss_sum):
            print(f"error: the loss is not finite at iteration {it}", file=sys.stderr)
            return 1
        if not evaluator:
            continue
        terminal = env.get_states_indices(trajectories.terminating_states)
        found = evaluator.is_mode[terminal]
        if found.any():
            modes_seen.update(terminal[found].tolist())
        if validation_due(it, args):
            validate(it)
            loss_sum, loss_count = 0.0, 0

    last = records[-1] if records else {}
    summary = {
        "n_iterations": args.n_iterations,
        "trajectories": args.n_iterations * args.batch_size,
        "it_per_s": args.n_iterations / train_seconds if train_seconds > 0 else None,
        "it_per_cpu_s": args.n_iterations / train_cpu_seconds if train_cpu_seconds > 0 else None,
        "seconds": time.perf_counter() - wall_start,
        "train_seconds": train_seconds,
        "train_cpu_seconds": train_cpu_seconds,
        "validation_seconds": validation_seconds,
        "threads": args.threads,
        "exact_l1": last.get("exact_l1"),
        "logZ_err": last.get("logZ_err"),
        "modes_found": last.get("modes_found"),
    }
    emit({"summary": summary})
    save(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
