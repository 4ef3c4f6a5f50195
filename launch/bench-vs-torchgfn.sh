#!/usr/bin/env bash
# Measures torchgfn 2.4.1 and gfn on the same machine, one after the other, on 4-D H=8, R0 0.1,
# TB, batch 16 (2x256 untied MLPs, on-policy), with the same number of compute threads, then
# prints both speeds and their ratio.
#
#   TORCHGFN_PYTHON=/path/to/venv/bin/python launch/bench-vs-torchgfn.sh [iterations] [threads]
#
# torchgfn's side is python/torchgfn_hypergrid.py (its docstring gives the set-up: a venv with
# torchgfn==2.4.1); TORCHGFN_SCRIPT names another script with the same flags and output.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations="${1:-2000}"
threads="${2:-1}"
python="${TORCHGFN_PYTHON:-python3}"
reference="${TORCHGFN_SCRIPT:-python/torchgfn_hypergrid.py}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gfn-target}"
cargo build --release -q -p gfn-launch
gfn="$CARGO_TARGET_DIR/release/gfn"

echo "== torchgfn 2.4.1, $threads thread(s), $iterations iterations"
torch_line=$("$python" "$reference" --ndim 4 --height 8 --R0 0.1 --loss TB --batch_size 16 \
    --n_iterations "$iterations" --validation_interval "$iterations" --validation_samples 20000 \
    --seed 0 --threads "$threads" 2>/dev/null | grep '"summary"')
torch_its=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["summary"]["it_per_s"])' "$torch_line")
echo "torchgfn: $torch_its it/s"

echo "== gfn, $threads compute thread(s) per role, $iterations iterations"
"$gfn" bench --steps_small "$iterations" --steps_large 20 --threads "$threads" \
    --json /tmp/gfn-bench.json
python3 - "$torch_its" <<'PY'
import json, sys
torch = float(sys.argv[1])
for row in json.load(open("/tmp/gfn-bench.json")):
    if "H=8" in row["name"]:
        print(f'{row["name"]}: {row["steps_per_s"]:.1f} it/s = {row["steps_per_s"] / torch:.1f}x torchgfn ({torch:.1f} it/s)')
PY
