#!/usr/bin/env bash
# Trains torchgfn 2.4.1 and gfn side by side at equal trajectory budgets and seeds on 4-D H=8, TB,
# batch 16 (the TB paper's setting, on-policy, untied 2x256 MLPs), for each R0, then writes one
# table of exact L1 and |log Z - log Z*| (the mean and spread over seeds) for both.
#
#   TORCHGFN_PYTHON=/path/to/venv/bin/python launch/compare-torchgfn.sh [iterations] [seeds] [out]
#
# Defaults: 6250 iterations (100,000 trajectories), seeds 0-2, out = results/compare-torchgfn.
# torchgfn runs on one thread; its side is python/torchgfn_hypergrid.py (its docstring gives the
# set-up: a venv with torchgfn==2.4.1).
# Finished runs (a file with a final line) are not rerun. R0S="0.1 0.01" limits the runs to
# some R0 (to share them between two invocations on one folder); the table needs all three.
# TABLE_ONLY=1 starts no run and writes the table from what has finished. GFN_ARGS adds flags to
# gfn's side only (e.g. GFN_ARGS="--lr_schedule cosine"), to compare a gfn variant against the
# same torchgfn runs (link their files into the new folder and they are not rerun).
# TORCHGFN_SCRIPT=launch/torchgfn_cosine.py runs torchgfn with the same cosine schedule.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations="${1:-6250}"
seeds="${2:-3}"
out="${3:-results/compare-torchgfn}"
interval=$((iterations / 5))
python="${TORCHGFN_PYTHON:-python3}"
reference="${TORCHGFN_SCRIPT:-python/torchgfn_hypergrid.py}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gfn-target}"
[[ "${TABLE_ONLY:-0}" == 1 ]] || cargo build --release -q -p gfn-launch
gfn="$CARGO_TARGET_DIR/release/gfn"
read -ra gfn_args <<< "${GFN_ARGS:-}"
mkdir -p "$out"

[[ "${TABLE_ONLY:-0}" == 1 ]] && R0S=none
for r0 in ${R0S:-0.1 0.01 0.001}; do
    [[ "$r0" == none ]] && continue
    for ((seed = 0; seed < seeds; seed++)); do
        name="r0_${r0}-seed${seed}"
        if ! grep -qs "\"it\": $iterations," "$out/torchgfn-$name.jsonl"; then
            echo "== torchgfn R0 $r0 seed $seed, $iterations iterations"
            "$python" "$reference" --ndim 4 --height 8 --R0 "$r0" --loss TB --batch_size 16 \
                --n_iterations "$iterations" --validation_interval "$interval" \
                --late_after "$iterations" --validation_samples 20000 --seed "$seed" \
                --threads 1 > "$out/torchgfn-$name.jsonl" 2>/dev/null
        fi
        if ! grep -qs '"summary"' "$out/gfn-$name/metrics.jsonl"; then
            echo "== gfn R0 $r0 seed $seed, $((iterations * 16)) trajectories"
            "$gfn" train --ndim 4 --height 8 --R0 "$r0" --loss TB --batch_size 16 \
                --n_trajectories $((iterations * 16)) --validation_interval "$interval" \
                --validation_samples 20000 --seed "$seed" --run_dir "$out/gfn-$name" \
                ${gfn_args[@]+"${gfn_args[@]}"} > /dev/null 2>&1
        fi
    done
done

python3 - "$out" "$iterations" "$seeds" <<'PY'
import json, statistics, sys
out, iterations, seeds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def torch_final(path):
    last = [r for r in map(json.loads, open(path)) if "it" in r][-1]
    if last["it"] != iterations:
        raise IndexError(f"{path}: the run has not finished")
    return last["exact_l1"], abs(last["logZ_err"])

def gfn_final(path):
    rows = [json.loads(l) for l in open(path)]
    if not any("summary" in r for r in rows):
        raise IndexError(f"{path}: the run has not finished")
    last = [r["validation"] for r in rows if "validation" in r][-1]
    return last["exact_l1"], last["log_z_error"]

def cell(xs):
    return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f}"

def torch_curve(path):
    """Exact L1 by trajectories at each validation of a torchgfn run."""
    return {r["it"] * 16: r["exact_l1"] for r in map(json.loads, open(path)) if "it" in r and r["it"] > 0}

def gfn_curve(path):
    """Exact L1 by trajectories at each validation of a gfn run."""
    rows = [json.loads(l) for l in open(path)]
    return {r["validation"]["trajectories"]: r["validation"]["exact_l1"] for r in rows if "validation" in r}

def nearest(curve, t):
    """The value validated closest to t trajectories, if within 1 % of t (else None)."""
    k = min(curve, key=lambda k: abs(k - t))
    return curve[k] if abs(k - t) <= 0.01 * t else None

points_at_or_below, points = 0, 0
point_lines = []

lines = [
    f"Exact L1 and |log Z − log Z*| after {iterations * 16:,} trajectories ({iterations} "
    f"iterations of batch 16), 4-D H=8, TB, seeds 0–{seeds - 1} (mean ± sd).",
    "",
    "| R0 | torchgfn exact L1 | gfn exact L1 | torchgfn \\|log Z err\\| | gfn \\|log Z err\\| |",
    "|---|---|---|---|---|",
]
for r0 in ["0.1", "0.01", "0.001"]:
    try:
        t = [torch_final(f"{out}/torchgfn-r0_{r0}-seed{s}.jsonl") for s in range(seeds)]
        g = [gfn_final(f"{out}/gfn-r0_{r0}-seed{s}/metrics.jsonl") for s in range(seeds)]
    except (OSError, IndexError):
        lines.append(f"| {r0} | runs missing | | | |")
        continue
    lines.append(
        f"| {r0} | {cell([x[0] for x in t])} | {cell([x[0] for x in g])} "
        f"| {cell([x[1] for x in t])} | {cell([x[1] for x in g])} |"
    )
    # Every validation point: the mean exact L1 over seeds on both sides.
    tc = [torch_curve(f"{out}/torchgfn-r0_{r0}-seed{s}.jsonl") for s in range(seeds)]
    gc = [gfn_curve(f"{out}/gfn-r0_{r0}-seed{s}/metrics.jsonl") for s in range(seeds)]
    # Points every seed validated at (runs may differ in validation interval).
    for traj in sorted(set.intersection(*(set(c) for c in tc))):
        near = [nearest(c, traj) for c in gc]
        if None in near:
            continue  # gfn did not validate there
        tm, gm = statistics.mean(c[traj] for c in tc), statistics.mean(near)
        points += 1
        points_at_or_below += gm <= tm
        point_lines.append(f"| {r0} | {traj:,} | {tm:.4f} | {gm:.4f} |")
lines += [
    "",
    f"At every validation point, the mean exact L1 over seeds (gfn at or below torchgfn at "
    f"{points_at_or_below} of {points}):",
    "",
    "| R0 | trajectories | torchgfn | gfn |",
    "|---|---|---|---|",
    *point_lines,
]
open(f"{out}/compare.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
