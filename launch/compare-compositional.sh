#!/usr/bin/env bash
# gfn and torchgfn 2.4.1 side by side on compositional rewards past enumeration: TB, batch 16,
# the same networks and rates, one thread each, one run at a time; for each preset and seed,
# distinct mode states (and states per tier) found against trajectories and against wall time.
# Then python/compositional_table.py writes OUT/compare.md and the plots.
#
#   TORCHGFN_PYTHON=/path/to/venv/bin/python launch/compare-compositional.sh \
#       [--iterations N] [--seeds S] [--presets "bitwise_xor:medium bitwise_xor:hard"]
#       [--ndim D] [--height H] [--R0 R] [--out DIR]
#
# Defaults: 2000 iterations (32,000 trajectories), 3 seeds, bitwise_xor medium and hard on 10-D
# H=128, R0 1e-3 (the presets' R0 is 0), out docs/results/compare-compositional. Finished runs
# are not rerun. torchgfn's side is python/torchgfn_compositional.py.
set -euo pipefail
cd "$(dirname "$0")/.."

iterations=2000
seeds=3
presets="bitwise_xor:medium bitwise_xor:hard"
ndim=10
height=128
r0=0.001
out=docs/results/compare-compositional
python="${TORCHGFN_PYTHON:-python3}"
gfn="${GFN:-${CARGO_TARGET_DIR:-$HOME/.cache/gfn-target}/release/gfn}"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --iterations) iterations="$2"; shift 2 ;;
        --seeds) seeds="$2"; shift 2 ;;
        --presets) presets="$2"; shift 2 ;;
        --ndim) ndim="$2"; shift 2 ;;
        --height) height="$2"; shift 2 ;;
        --R0) r0="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare-compositional.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
for n in "$iterations" "$seeds" "$ndim" "$height"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "compare-compositional.sh: counts must be positive numbers (got $n)" >&2; exit 2; }
done
[[ -x "$gfn" ]] || { echo "compare-compositional.sh: no gfn binary at $gfn (build it, or set GFN)" >&2; exit 2; }
interval=$((iterations / 16 > 0 ? iterations / 16 : 1))
mkdir -p "$out"

for entry in $presets; do
    reward="${entry%%:*}"
    preset="${entry#*:}"
    for ((seed = 0; seed < seeds; seed++)); do
        name="$reward-$preset-seed$seed"
        if ! grep -qs '"summary"' "$out/torchgfn-$name.jsonl"; then
            echo "== torchgfn $name" >&2
            "$python" python/torchgfn_compositional.py --reward "$reward" --preset "$preset" \
                --ndim "$ndim" --height "$height" --R0 "$r0" --n_iterations "$iterations" \
                --validation_interval "$interval" --seed "$seed" --threads 1 \
                > "$out/torchgfn-$name.jsonl.part"
            mv "$out/torchgfn-$name.jsonl.part" "$out/torchgfn-$name.jsonl"
        fi
        dir="$out/gfn-$name"
        if ! grep -qs '"summary"' "$dir/metrics.jsonl"; then
            echo "== gfn $name" >&2
            rm -rf "$dir"
            "$gfn" train --ndim "$ndim" --height "$height" --reward "$reward" \
                --reward_preset "$preset" --R0 "$r0" --loss TB --batch_size 16 \
                --n_trajectories $((iterations * 16)) --lr 0.001 --lr_Z 0.1 \
                --validation_interval "$interval" --threads 1 --tensorboard false --quiet \
                --seed "$seed" --run_dir "$dir" > /dev/null
        fi
    done
done
"$python" python/compositional_table.py "$out"
