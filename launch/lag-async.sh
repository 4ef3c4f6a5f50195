#!/usr/bin/env bash
# The lag study's wall-clock arm: how long each layout takes to reach exact L1 0.1 on the lag
# study's grid (4-D H=8, R0 0.01, TB, batch 16, Adam 1e-3, logZ lr 0.1), one run at a time so
# that the runs do not share the cores:
#   train-lag0   gfn train --policy_lag 0: sample, then learn (one core busy at a time)
#   train-lag1   gfn train --policy_lag 1: the sampler thread works a step ahead of the learner
#   async-2      launch/local.sh: one sampler process with 2 samplers, a buffer, a learner,
#                --max_policy_lag 4 (the multi-process asynchronous mode)
#   async-4      the same with 4 samplers
# Runs go to OUT/<layout>/seed<k>/ (config.toml, metrics.jsonl); then the table is printed
# (python/lag_table.py OUT). Validation is every 125 steps (2,000 trajectories), exact L1 only.
#
#   launch/lag-async.sh [--seeds S] [--trajectories N] [--out DIR] [--gfn PATH]
set -euo pipefail

seeds=3
trajectories=200000
out=docs/results/lag-async
gfn="${GFN:-${CARGO_TARGET_DIR:-$HOME/.cache/gfn-target}/release/gfn}"
here="$(cd "$(dirname "$0")" && pwd)"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --seeds) seeds="$2"; shift 2 ;;
        --trajectories) trajectories="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --gfn) gfn="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "lag-async.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
for n in "$seeds" "$trajectories"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "lag-async.sh: counts must be positive numbers (got $n)" >&2; exit 2; }
done
[[ -x "$gfn" ]] || { echo "lag-async.sh: no gfn binary at $gfn (build it, or pass --gfn)" >&2; exit 2; }

run=(--ndim 4 --height 8 --R0 0.01 --loss TB --batch_size 16 --n_trajectories "$trajectories"
     --lr 0.001 --lr_Z 0.1 --validation_interval 125 --validation_samples 0 --paper_window 0
     --threads 1 --tensorboard false)

for ((seed = 0; seed < seeds; seed++)); do
    for layout in train-lag0 train-lag1 async-2 async-4; do
        dir="$out/$layout/seed$seed"
        if [[ -f "$dir/metrics.jsonl" ]] && grep -q '"summary"' "$dir/metrics.jsonl"; then
            echo "lag-async.sh: $dir is finished, skipping" >&2
            continue
        fi
        rm -rf "$dir"
        echo "lag-async.sh: $layout seed $seed" >&2
        case "$layout" in
            train-lag*)
                "$gfn" train "${run[@]}" --quiet --seed "$seed" --policy_lag "${layout#train-lag}" --run_dir "$dir" >/dev/null ;;
            async-*)
                GFN="$gfn" "$here/local.sh" --samplers "${layout#async-}" --port 6200 -- \
                    "${run[@]}" --seed "$seed" --max_policy_lag 4 --run_dir "$dir" >/dev/null ;;
        esac
    done
done
python3 "$here/../python/lag_table.py" "$out"
