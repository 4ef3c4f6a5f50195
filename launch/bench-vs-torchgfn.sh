#!/usr/bin/env bash
# Measures torchgfn 2.4.1 and gfn on the same machine, one after the other, with the same number
# of compute threads (TB, batch 16, 2x256 untied MLPs, on-policy, R0 0.1) on 4-D H=8 and on
# 10-D H=128 (about 10^21 states), then prints both speeds and their ratio for each.
#
#   TORCHGFN_PYTHON=/path/to/venv/bin/python launch/bench-vs-torchgfn.sh [iterations] [threads]
#
# iterations is for 4-D H=8; 10-D H=128 runs a tenth of it. torchgfn's side is
# python/torchgfn_hypergrid.py (its docstring gives the set-up: a venv with torchgfn==2.4.1);
# TORCHGFN_SCRIPT names another script with the same flags and output.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations="${1:-2000}"
threads="${2:-1}"
huge=$((iterations / 10 > 0 ? iterations / 10 : 1))
python="${TORCHGFN_PYTHON:-python3}"
reference="${TORCHGFN_SCRIPT:-python/torchgfn_hypergrid.py}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gfn-target}"
cargo build --release -q -p gfn-launch
gfn="$CARGO_TARGET_DIR/release/gfn"

# it/s of torchgfn's training steps on one grid (extra flags after the iterations).
torch_its() {
    local line
    line=$("$python" "$reference" --R0 0.1 --loss TB --batch_size 16 --seed 0 \
        --threads "$threads" --n_iterations "$@" 2>/dev/null | grep '"summary"')
    python3 -c 'import json,sys; print(json.loads(sys.argv[1])["summary"]["it_per_s"])' "$line"
}

echo "== torchgfn 2.4.1, $threads thread(s): 4-D H=8 ($iterations it), 10-D H=128 ($huge it)"
torch_small=$(torch_its "$iterations" --ndim 4 --height 8 --validation_interval "$iterations" \
    --validation_samples 20000)
torch_huge=$(torch_its "$huge" --ndim 10 --height 128 --speed_only)
echo "torchgfn: $torch_small it/s (4-D H=8), $torch_huge it/s (10-D H=128)"

echo "== gfn, $threads compute thread(s) per role"
"$gfn" bench --steps_small "$iterations" --steps_large 20 --steps_huge "$huge" \
    --threads "$threads" --json /tmp/gfn-bench.json
python3 - "$torch_small" "$torch_huge" <<'PY'
import json, sys
torch = {"4-D H=8 batch 16": float(sys.argv[1]), "10-D H=128 batch 16": float(sys.argv[2])}
for row in json.load(open("/tmp/gfn-bench.json")):
    for grid, its in torch.items():
        if row["name"].startswith(grid):
            print(f'{row["name"]}: {row["steps_per_s"]:.1f} it/s = {row["steps_per_s"] / its:.1f}x torchgfn ({its:.1f} it/s)')
PY
