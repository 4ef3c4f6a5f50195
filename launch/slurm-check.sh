#!/usr/bin/env bash
# A real two-node run of launch/slurm.sh on the test cluster (launch/test-cluster.sh): one
# sampler per node and two learner replicas under MPI, one per node. Passes when the job
# completes, the metrics file has its summary, both replicas report the same parameter checksum
# at every validation, and no process's command line ever held the run token.
#
#   launch/slurm-check.sh GFN_BINARY      (a build with `--features mpi`)
set -euo pipefail
cd "$(dirname "$0")/.."
gfn="$(realpath "${1:?usage: launch/slurm-check.sh GFN_BINARY}")"
out="$(mktemp -d /tmp/gfn-slurm-check.XXXXXX)"
bash launch/test-cluster.sh start
eval "$(bash launch/test-cluster.sh env)"
trap 'bash launch/test-cluster.sh stop' EXIT

GFN_RUN_TOKEN="check-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export GFN_RUN_TOKEN
start=$SECONDS
job="$(sbatch --parsable --nodes=2 --output="$out/job.out" launch/slurm.sh \
    --samplers-per-node 1 --learners 2 --gfn "$gfn" -- \
    --config configs/tb-2d8-reference.toml --n_trajectories 6400 --validation_interval 10 \
    --run_dir "$out/run")"
# Look for the token in every command line while the job runs (python reads it from the
# environment, so the search itself does not put it on a command line).
python3 - "$job" <<'PY' >"$out/leaks"
import os, subprocess, sys, time
token, job, seen = os.environ["GFN_RUN_TOKEN"].encode(), sys.argv[1], set()
while subprocess.run(["squeue", "-h", "-j", job], capture_output=True).stdout.strip():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if token in cmd:
            seen.add(cmd.replace(b"\0", b" ").decode(errors="replace"))
    time.sleep(0.2)
print("\n".join(sorted(seen)))
PY
bash launch/test-cluster.sh wait "$job" 600 || { cat "$out/job.out"; exit 1; }
echo "slurm job $job completed in $((SECONDS - start)) s"
if grep -q . "$out/leaks"; then
    echo "the run token was on a command line:" >&2; cat "$out/leaks" >&2; exit 1
fi
python3 - "$out/run/metrics.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
vals = [l["validation"] for l in lines if "validation" in l]
summary = next(l["summary"] for l in lines if "summary" in l)
assert summary["steps"] == 50, summary["steps"]
for v in vals:
    sums = v["checksums"]
    assert len(sums) == 2 and sums[0] == sums[1], f"replicas differ at step {v['step']}: {sums}"
print(f"2 learner replicas agree at {len(vals)} validations; final exact L1 "
      f"{summary['final_validation']['exact_l1']:.4f}, checksum {summary['params_checksum']}")
PY
