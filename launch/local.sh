#!/usr/bin/env bash
# Starts a whole gfn run on this machine's loopback: M buffers, N samplers and K learners
# (under mpirun when K > 1; needs a build with `--features mpi`). Ctrl-C stops every process.
# The run ends when the learners finish; learner rank 0 writes the one metrics file.
#
#   launch/local.sh [--samplers N] [--buffers M] [--learners K] [--port P] [--gfn PATH] [-- RUN FLAGS...]
#
# Example: launch/local.sh --samplers 3 --learners 2 -- --n_trajectories 32000 --run_dir runs/local
set -euo pipefail

samplers=2
buffers=1
learners=1
port=5555
gfn="${GFN:-${CARGO_TARGET_DIR:-$HOME/.cache/gfn-target}/release/gfn}"

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --samplers) samplers="$2"; shift 2 ;;
        --buffers) buffers="$2"; shift 2 ;;
        --learners) learners="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --gfn) gfn="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) echo "local.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
for n in "$samplers" "$buffers" "$learners" "$port"; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "local.sh: counts and port must be numbers (got $n)" >&2; exit 2; }
done
(( buffers >= 1 && learners >= 1 )) || { echo "local.sh: need at least one buffer and one learner" >&2; exit 2; }
[[ -x "$gfn" ]] || { echo "local.sh: no gfn binary at $gfn (build it, or pass --gfn)" >&2; exit 2; }

# The token goes to every process through the environment, never on a command line (where
# `ps` shows it to every user of the machine).
GFN_RUN_TOKEN="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export GFN_RUN_TOKEN
ingest="" serve=""
for ((i = 0; i < buffers; i++)); do
    ingest+="${ingest:+,}tcp://127.0.0.1:$((port + 2 * i))"
    serve+="${serve:+,}tcp://127.0.0.1:$((port + 2 * i + 1))"
done
weights="tcp://127.0.0.1:$((port + 2 * buffers))"
net=(--ingest "$ingest" --serve "$serve" --weights "$weights")

pids=()
stop_all() {
    if ((${#pids[@]})); then
        kill "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
}
trap 'echo "local.sh: interrupted, stopping every process" >&2; stop_all; exit 130' INT TERM

for ((i = 0; i < buffers; i++)); do
    "$gfn" buffer --id "$i" "${net[@]}" "$@" &
    pids+=("$!")
done
# One process holds every sampler (ids 0 to N-1): they share one weight subscription, so the
# learner sends each weight version once to this machine.
if ((samplers > 0)); then
    "$gfn" sampler --id 0 --samplers "$samplers" "${net[@]}" "$@" &
    pids+=("$!")
fi
if ((learners > 1)); then
    root=()
    [[ $EUID -eq 0 ]] && root=(--allow-run-as-root)
    mpirun "${root[@]}" --oversubscribe -x GFN_RUN_TOKEN -n "$learners" "$gfn" learner --quiet "${net[@]}" "$@" &
else
    "$gfn" learner --quiet "${net[@]}" "$@" &
fi
learner_pid=$!
status=0
wait "$learner_pid" || status=$?
# The learner told the others to stop; give them a moment, then make sure.
sleep 1
stop_all
exit "$status"
