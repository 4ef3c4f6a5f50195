"""The table of `launch/lag-async.sh`: per layout, over its finished seeds, the trajectories and
the wall-clock seconds to the first validation at exact L1 <= 0.1, the final exact L1, the lag
the learner saw, and the wall-clock speedup to exact L1 0.1 against `train-lag0`.

Usage: python3 python/lag_table.py OUT   (standard library only)
"""

import json
import pathlib
import statistics
import sys

LEVEL = 0.1
LAYOUTS = ["train-lag0", "train-lag1", "async-2", "async-4"]


def runs(layout_dir):
    """Each finished seed's validations (a run without its summary line is unfinished)."""
    for metrics in sorted(layout_dir.glob("seed*/metrics.jsonl")):
        records = [json.loads(line) for line in metrics.read_text().splitlines() if line]
        if any("summary" in r for r in records):
            yield [r["validation"] for r in records if "validation" in r]


def first_reach(validations):
    return next((v for v in validations if v["exact_l1"] <= LEVEL), None)


def cell(xs, fmt):
    if not xs:
        return "–"
    if len(xs) == 1:
        return fmt.format(xs[0])
    return (fmt + " ± " + fmt).format(statistics.mean(xs), statistics.stdev(xs))


def main(out):
    rows, base = [], None
    for layout in LAYOUTS:
        seeds = list(runs(out / layout))
        if not seeds:
            continue
        reached = [r for r in map(first_reach, seeds) if r]
        wall = [r["wall_s"] for r in reached]
        if layout == "train-lag0" and len(reached) == len(seeds):
            base = statistics.mean(wall)
        speedup = (
            f"{base / statistics.mean(wall):.2f}×"
            if base and wall and len(reached) == len(seeds)
            else "–"
        )
        rows.append(
            f"| {layout} | {len(seeds)} | {len(reached)} "
            f"| {cell([r['trajectories'] for r in reached], '{:.0f}')} "
            f"| {cell(wall, '{:.1f}')} | {speedup} "
            f"| {cell([s[-1]['exact_l1'] for s in seeds], '{:.4f}')} "
            f"| {cell([s[-1]['lag_mean'] for s in seeds], '{:.2f}')} "
            f"| {cell([s[-1]['lag_max'] for s in seeds], '{:.0f}')} "
            f"| {cell([s[-1]['wall_s'] for s in seeds], '{:.1f}')} |"
        )
    print(
        f"| layout | seeds | reached {LEVEL} | trajectories to exact L1 ≤ {LEVEL} "
        f"| wall s to exact L1 ≤ {LEVEL} | speedup | final exact L1 | mean lag "
        "| max lag | wall s |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(pathlib.Path(sys.argv[1]))
