#!/usr/bin/env bash
# The faults a distributed run survives, on the test cluster (launch/test-cluster.sh): each is
# injected into a two-node `sbatch launch/slurm.sh` run (one sampler per node, two learner
# replicas, one per node), and the table says how the run came through, how long recovery took,
# the final exact L1 against the uninterrupted run of the same seed, and whether anything hung.
#
#   launch/fault-suite.sh GFN_BINARY [OUT]     (a build with `--features mpi`; OUT: results/faults)
#
# FAULT_STEPS sets each run's learner steps (default 1000, the table in docs/multi-process.md; CI runs 300):
# faults are injected after 30 % of them.
#
# Faults: a buffer killed (SIGKILL) and started again by hand; a sampler killed and started
# again; a learner rank killed (the job must end promptly, then is resubmitted with --resume);
# SIGTERM to every task of the job, as at a Slurm time limit (resubmitted with --resume).
set -euo pipefail
cd "$(dirname "$0")/.."
gfn="$(realpath "${1:?usage: launch/fault-suite.sh GFN_BINARY [OUT]}")"
out="$(realpath -m "${2:-results/faults}")"
rm -rf "$out"; mkdir -p "$out"
bash launch/test-cluster.sh start
eval "$(bash launch/test-cluster.sh env)"
trap 'bash launch/test-cluster.sh stop' EXIT
GFN_RUN_TOKEN="faults-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export GFN_RUN_TOKEN
steps="${FAULT_STEPS:-1000}"
((steps >= 100)) || { echo "FAULT_STEPS must be at least 100" >&2; exit 2; }
inject=$((steps * 3 / 10))
run=(--config configs/tb-2d8-reference.toml --n_trajectories $((steps * 64)) --batch_size 64
     --validation_interval 50)
hang_limit=300

# Submits run NAME with extra run flags; prints the job id.
submit() {
    local name=$1; shift
    sbatch --parsable --nodes=2 --output="$out/$name.out" --open-mode=append launch/slurm.sh \
        --samplers-per-node 1 --learners 2 --gfn "$gfn" -- "${run[@]}" --run_dir "$out/$name" "$@"
}

# The highest validation step in a run's metrics (0 before the first).
last_step() {
    python3 - "$1/metrics.jsonl" <<'PY'
import json, sys
try:
    steps = [json.loads(l)["validation"]["step"] for l in open(sys.argv[1]) if '"validation"' in l]
except (OSError, ValueError, KeyError):
    steps = []
print(max(steps, default=0))
PY
}

# Whether a run wrote the summary of a finished (not stopped) run.
finished() {
    grep -q '^{"summary"' "$1/metrics.jsonl" 2>/dev/null &&
        ! grep '^{"summary"' "$1/metrics.jsonl" | tail -n 1 | grep -q '"stopped":true'
}

# Waits until run dir $1 writes a validation past step $2, or finishes (a short run can end
# before the next validation, when the remaining samplers feed it alone).
wait_step() {
    local start=$SECONDS
    while (( $(last_step "$1") <= $2 )) && ! finished "$1"; do
        (( SECONDS - start < hang_limit )) || return 1
        sleep 0.2
    done
}

# Waits for a job to leave the queue; fails (a hang) after the limit.
wait_gone() {
    local start=$SECONDS
    while squeue -h -j "$1" 2>/dev/null | grep -q .; do
        (( SECONDS - start < hang_limit )) || { scancel "$1"; return 1; }
        sleep 0.2
    done
}

final_l1() {
    python3 - "$1/metrics.jsonl" "$steps" <<'PY'
import json, sys
s = [json.loads(l)["summary"] for l in open(sys.argv[1]) if l.startswith('{"summary"')]
s = [x for x in s if not x.get("stopped")]
print(f'{s[-1]["final_validation"]["exact_l1"]:.2e}' if s and s[-1]["steps"] == int(sys.argv[2]) else "unfinished")
PY
}

# Trajectories a run reports lost with a buffer that started over.
lost() {
    python3 - "$1/metrics.jsonl" <<'PY'
import json, sys
s = [json.loads(l)["summary"] for l in open(sys.argv[1]) if l.startswith('{"summary"')]
print(s[-1].get("losses", {}).get("trajectories_lost", 0) if s else "?")
PY
}

# The PID of a role's gfn process in run NAME (the first, for several; not its srun).
role_pid() {
    pgrep -f "^$gfn $2 .*--run_dir $out/$1( |$)" | head -n1
}

# Kills a role's process and starts it again inside the job's allocation, with its own
# command line. Prints the seconds until the run writes its next validation.
kill_and_restart() {
    local name=$1 role=$2 job=$3 pid cmd step start
    pid="$(role_pid "$name" "$role")"
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
    step="$(last_step "$out/$name")"
    kill -9 "$pid"
    start=$SECONDS
    srun --jobid="$job" --overlap --nodes=1 --ntasks=1 --nodelist=node1 \
        bash -c "set -f; exec $cmd" >>"$out/$name.restarted.out" 2>&1 &
    wait_step "$out/$name" "$step" || { echo "hang"; return; }
    echo "$((SECONDS - start))"
}

rows=()
hangs=0
failures=0
row() { rows+=("| $1 | $2 | $3 | $4 | $5 |"); }

for seed in 3 4; do
    job="$(submit "baseline-seed$seed" --seed "$seed")"
    wait_gone "$job" || hangs=$((hangs + 1))
done
baseline="$(final_l1 "$out/baseline-seed3")"
spread="$(final_l1 "$out/baseline-seed4")"
row "none (seed 3; seed 4 for the spread)" "finished" "–" "$baseline (seed 4: $spread)" "0"

for role in buffer sampler; do
    job="$(submit "$role" --seed 3)"
    wait_step "$out/$role" "$inject"
    took="$(kill_and_restart "$role" "$role" "$job")"
    wait_gone "$job" || took=hang
    [[ $took == hang ]] && hangs=$((hangs + 1))
    l1="$(final_l1 "$out/$role")"
    outcome="rejoined, $(lost "$out/$role") trajectories lost"
    [[ $l1 == unfinished ]] && { outcome="failed"; failures=$((failures + 1)); }
    row "$role killed (SIGKILL) and started again" "$outcome" "${took} s" "$l1" "$([[ $took == hang ]] && echo 1 || echo 0)"
done

ck=(--checkpoint_dir "$out/learner-ck" --checkpoint_every $((steps / 10)))
job="$(submit learner --seed 3 "${ck[@]}")"
wait_step "$out/learner" "$inject"
kill -9 "$(role_pid learner learner)"
start=$SECONDS
ended=0; wait_gone "$job" && ended=1
took=$((SECONDS - start))
job="$(submit learner --seed 3 "${ck[@]}" --resume)"
wait_gone "$job" || ended=0
((ended)) || hangs=$((hangs + 1))
row "a learner rank killed (SIGKILL); resubmitted with --resume" "job ended in ${took} s; resumed" "–" "$(final_l1 "$out/learner")" "$((1 - ended))"

ck=(--checkpoint_dir "$out/sigterm-ck" --checkpoint_every 100000)
job="$(submit sigterm --seed 3 "${ck[@]}")"
wait_step "$out/sigterm" "$inject"
scancel --signal=TERM "$job"
ended=0; wait_gone "$job" && ended=1
saved="no checkpoint"; [[ -f "$out/sigterm-ck/checkpoint.gfnc" ]] && saved="checkpoint written"
job="$(submit sigterm --seed 3 "${ck[@]}" --resume)"
wait_gone "$job" || ended=0
((ended)) || hangs=$((hangs + 1))
row "SIGTERM to every task (a time limit); resubmitted with --resume" "$saved; resumed" "–" "$(final_l1 "$out/sigterm")" "$((1 - ended))"

{
    echo "| fault | outcome | time to recover | final exact L1 (uninterrupted: $baseline) | hangs |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} | tee "$out/faults.md"
for run in learner sigterm; do
    [[ "$(final_l1 "$out/$run")" == unfinished ]] && failures=$((failures + 1))
done
echo "fault suite: $failures run(s) did not finish, $hangs hang(s)"
((hangs == 0 && failures == 0))
