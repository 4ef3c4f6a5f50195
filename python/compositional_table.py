"""The table and plots of `launch/compare-compositional.sh`: for each reward preset, gfn against
torchgfn over their finished seeds, distinct mode states found (and states per tier) against
trajectories and against wall-clock seconds.

gfn's seconds are its run's wall time (validation is a few counters on these grids); torchgfn's
are its training steps only (its bookkeeping of visited states excluded), which favours torchgfn.

Usage: python python/compositional_table.py OUT   (writes OUT/compare.md, and
OUT/modes-<reward>-<preset>.png where matplotlib is installed)
"""

import json
import pathlib
import re
import statistics
import sys


def gfn_run(path):
    """(trajectories, seconds, modes, tiers, distinct) per validation of a finished gfn run."""
    records = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line]
    if not any("summary" in r for r in records):
        return None
    rows = []
    for r in records:
        v = r.get("validation")
        if v:
            tiers = [n for _, n in v.get("tiers_found", [])]
            rows.append((v["trajectories"], v["wall_s"], v["modes_found"], tiers, v["distinct_states"]))
    return rows


def torchgfn_run(path):
    records = [json.loads(line) for line in path.read_text().splitlines() if line]
    if not any("summary" in r for r in records):
        return None
    return [(r["trajectories"], r["train_seconds"], r["modes_found"], r["tiers_found"], r["distinct_states"])
            for r in records if "it" in r]


def runs(out):
    """{(reward, preset): {"gfn": [run, ...], "torchgfn": [...]}} of the finished runs."""
    found = {}
    for path in sorted(out.iterdir()):
        m = re.fullmatch(r"(gfn|torchgfn)-(\w+)-(\w+)-seed(\d+)(\.jsonl)?", path.name)
        if not m:
            continue
        system, reward, preset = m.group(1), m.group(2), m.group(3)
        run = gfn_run(path) if system == "gfn" else torchgfn_run(path)
        if run:
            found.setdefault((reward, preset), {}).setdefault(system, []).append(run)
    return found


def at(run, trajectories):
    """The last validation at or before `trajectories`."""
    return [r for r in run if r[0] <= trajectories][-1]


def cell(xs, fmt="{:.0f}"):
    if not xs:
        return "–"
    if len(xs) == 1:
        return fmt.format(xs[0])
    return f"{fmt.format(statistics.mean(xs))} ± {fmt.format(statistics.stdev(xs))}"


def table(found):
    md = ["| reward, preset | system | seeds | modes found at ¼ / ½ / all of the budget | states per tier (final) | distinct states | trajectories/s | seconds |",
          "|---|---|---|---|---|---|---|---|"]
    for (reward, preset), systems in sorted(found.items()):
        for system in ("gfn", "torchgfn"):
            rs = systems.get(system, [])
            if not rs:
                continue
            budget = min(r[-1][0] for r in rs)
            modes = " / ".join(cell([at(r, budget * f)[2] for r in rs]) for f in (0.25, 0.5, 1.0))
            tiers = " / ".join(cell(list(t)) for t in zip(*[at(r, budget)[3] for r in rs]))
            distinct = cell([at(r, budget)[4] for r in rs])
            rate = cell([at(r, budget)[0] / at(r, budget)[1] for r in rs])
            secs = cell([at(r, budget)[1] for r in rs], "{:.1f}")
            md.append(f"| {reward} {preset} | {system} | {len(rs)} | {modes} | {tiers} | {distinct} | {rate} | {secs} |")
    return "\n".join(md) + "\n"


def plot(found, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    for (reward, preset), systems in sorted(found.items()):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for system, colour in (("gfn", "tab:blue"), ("torchgfn", "tab:orange")):
            for i, run in enumerate(systems.get(system, [])):
                label = system if i == 0 else None
                axes[0].plot([r[0] for r in run], [r[2] for r in run], color=colour, label=label)
                axes[1].plot([r[1] for r in run], [r[2] for r in run], color=colour, label=label)
        axes[0].set_xlabel("trajectories")
        axes[1].set_xlabel("seconds")
        for ax in axes:
            ax.set_ylabel("distinct mode states found")
            ax.legend()
            ax.grid(alpha=0.3)
        fig.suptitle(f"{reward} {preset}: modes found, one line per seed")
        fig.tight_layout()
        path = out / f"modes-{reward}-{preset}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path.name)
    return written


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = pathlib.Path(sys.argv[1])
    found = runs(out)
    md = "# gfn against torchgfn 2.4.1 on compositional rewards\n\n" + table(found)
    for name in plot(found, out):
        md += f"\n![{name}]({name})\n"
    (out / "compare.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
