#!/usr/bin/env bash
# Why TB never finds the modes at R0 1e-4 (the SubTB grid's 4-D H=12): the same setting trained
# with tied and untied TB, tied DB and SubTB, and tied TB with epsilon-uniform exploration (gfn,
# 200,000 trajectories), and with torchgfn 2.4.1's TB and DB (40,000 trajectories, as far as its
# speed allows here), then one table of exact L1, modes found and |log Z - log Z*|.
#
#   [TORCHGFN_PYTHON=/path/to/venv/bin/python] launch/tb-collapse.sh [seeds] [out]
#
# Defaults: seeds 0-2, out = results/tb-collapse. Without TORCHGFN_PYTHON only gfn's side runs;
# torchgfn's side is python/torchgfn_hypergrid.py (its docstring gives the set-up: a venv with
# torchgfn==2.4.1), or the script TORCHGFN_SCRIPT names.
# Finished runs are not rerun; TABLE_ONLY=1 starts no run and writes the table.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-3}"
out="${2:-results/tb-collapse}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gfn-target}"
[[ "${TABLE_ONLY:-0}" == 1 ]] || cargo build --release -q -p gfn-launch
gfn="$CARGO_TARGET_DIR/release/gfn"
reference="${TORCHGFN_SCRIPT:-python/torchgfn_hypergrid.py}"
mkdir -p "$out"
setting=(--ndim 4 --height 12 --R0 0.0001)

# name and flags of each gfn variant
gfn_variants=(
    "TB-tied|--loss TB --tied"
    "TB|--loss TB"
    "DB-tied|--loss DB --tied"
    "SubTB-tied|--loss SubTB --tied"
    "TB-tied-eps0.1|--loss TB --tied --epsilon 0.1"
    "TB-tied-eps0.5|--loss TB --tied --epsilon 0.5"
)
torch_variants=("TB-tied|--loss TB --tied" "TB|--loss TB" "DB-tied|--loss DB --tied")

[[ "${TABLE_ONLY:-0}" == 1 ]] && seeds=0
for ((seed = 0; seed < seeds; seed++)); do
    for v in "${gfn_variants[@]}"; do
        name="gfn-${v%%|*}-seed$seed"
        read -ra flags <<< "${v#*|}"
        grep -qs '"summary"' "$out/$name/metrics.jsonl" && continue
        echo "== gfn ${v%%|*} seed $seed"
        "$gfn" train "${setting[@]}" "${flags[@]}" --n_trajectories 200000 \
            --validation_interval 1250 --seed "$seed" --quiet --run_dir "$out/$name" > /dev/null
    done
    [[ -n "${TORCHGFN_PYTHON:-}" ]] || continue
    for v in "${torch_variants[@]}"; do
        name="torchgfn-${v%%|*}-seed$seed"
        read -ra flags <<< "${v#*|}"
        grep -qs '"summary"' "$out/$name.jsonl" && continue
        echo "== torchgfn ${v%%|*} seed $seed"
        "$TORCHGFN_PYTHON" "$reference" "${setting[@]}" "${flags[@]}" \
            --n_iterations 2500 --validation_interval 1250 --late_after 100000 \
            --validation_samples 20000 --seed "$seed" --threads 1 > "$out/$name.jsonl" 2>/dev/null
    done
done

python3 - "$out" > "$out/results.md" <<'EOF'
"""One row per implementation and variant: the mean over seeds at 40,000 trajectories and at the
end, and how many seeds left the origin's corner (exact L1 below 1)."""
import glob, json, math, os, re, sys

out = sys.argv[1]
runs = {}  # (implementation, variant) -> [[(trajectories, exact_l1, modes, |logZ err|)]]
for path in sorted(glob.glob(f"{out}/gfn-*/metrics.jsonl")):
    rows = []
    for line in open(path):
        v = json.loads(line).get("validation")
        if v:
            rows.append((v["trajectories"], v["exact_l1"], v["modes_found"], v["log_z_error"]))
    variant = re.sub(r"^gfn-|-seed\d+$", "", os.path.basename(os.path.dirname(path)))
    runs.setdefault(("gfn", variant), []).append(rows)
for path in sorted(glob.glob(f"{out}/torchgfn-*.jsonl")):
    rows = []
    for line in open(path):
        if line.startswith('{"it"'):
            d = json.loads(line)
            rows.append((16 * d["it"], d["exact_l1"], d["modes_found"], abs(d["logZ_err"])))
    variant = re.sub(r"^torchgfn-|-seed\d+\.jsonl$", "", os.path.basename(path))
    runs.setdefault(("torchgfn", variant), []).append(rows)

def mean(xs):
    return sum(xs) / len(xs)

def at(rows, t):
    return min(rows, key=lambda r: abs(r[0] - t))

print("# Tied TB at R0 1e-4, 4-D H=12\n")
print("Mean over seeds. The origin's corner holds 1/16 of the target mass, so a sampler that never")
print("leaves it has exact L1 2 - 2/16 = 1.875 and |log Z - log Z*| = log 16 = 2.773.\n")
print("| implementation | variant | seeds | exact L1 at 40k | left the corner | trajectories | exact L1 | modes found (of 16) | \\|log Z − log Z*\\| |")
print("|---|---|---|---|---|---|---|---|---|")
for (impl, variant), seeds in sorted(runs.items()):
    seeds = [s for s in seeds if s]
    if not seeds:
        continue
    last = [s[-1] for s in seeds]
    left = sum(1 for s in seeds if s[-1][1] < 1.0)
    print(f"| {impl} | {variant} | {len(seeds)} | {mean([at(s, 40000)[1] for s in seeds]):.4f} "
          f"| {left} of {len(seeds)} | {last[0][0]} | {mean([r[1] for r in last]):.4f} "
          f"| {mean([r[2] for r in last]):.1f} | {mean([r[3] for r in last]):.3f} |")
EOF
echo "table: $out/results.md"
