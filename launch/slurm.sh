#!/usr/bin/env bash
# Multi-node gfn run under Slurm, as job steps that share one allocation (--overlap): buffers on
# the first node, samplers on every node, and the learners as one MPI step spread over the
# nodes (rank 0, which publishes the weights, on the first node). Counts are independent.
#
#   sbatch --nodes=2 launch/slurm.sh [--samplers-per-node N] [--buffers M] [--learners K]
#          [--learners-per-node L] [--port P] [--gfn PATH] [-- RUN FLAGS...]
#   launch/slurm.sh --dry-run --nodes node1,node2 ...   # print the plan where Slurm is absent
#
# Endpoints use each node's NodeAddr from Slurm (node names need not resolve). The run token
# goes to every process in the environment (GFN_RUN_TOKEN, random unless set), never on a
# command line. With `--device cuda` in the run flags, each learner and sampler task gets one
# GPU of its node. A learner rank that dies ends the whole learner step (the others would wait
# in an all-reduce forever), so the job ends promptly; resubmit it with `--resume` (and
# `--checkpoint_dir`) to continue. The script exits with the learners' status.
set -euo pipefail

samplers_per_node=4
buffers=1
learners=1
learners_per_node=""
port=5555
gfn="${GFN:-gfn}"
dry_run=0
nodes=""

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --samplers-per-node) samplers_per_node="$2"; shift 2 ;;
        --buffers) buffers="$2"; shift 2 ;;
        --learners) learners="$2"; shift 2 ;;
        --learners-per-node) learners_per_node="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --gfn) gfn="$2"; shift 2 ;;
        --nodes) nodes="$2"; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) echo "slurm.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
for n in "$samplers_per_node" "$buffers" "$learners" "$port" ${learners_per_node:+"$learners_per_node"}; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "slurm.sh: counts and port must be numbers (got $n)" >&2; exit 2; }
done
(( buffers >= 1 && learners >= 1 )) || { echo "slurm.sh: need at least one buffer and one learner" >&2; exit 2; }

if [[ -z "$nodes" ]]; then
    [[ -n "${SLURM_JOB_NODELIST:-}" ]] || { echo "slurm.sh: not in a Slurm allocation; pass --nodes (with --dry-run)" >&2; exit 2; }
    nodes="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | paste -sd, -)"
fi
IFS=, read -r -a hosts <<< "$nodes"
head_node="${hosts[0]}"
n_nodes="${#hosts[@]}"

# The address other nodes reach a node at: its NodeAddr (the name itself in a dry run).
node_addr() {
    if ((dry_run)); then echo "$1"; return; fi
    local addr
    addr="$(scontrol show node -o "$1" | grep -o 'NodeAddr=[^ ]*' | cut -d= -f2)"
    echo "${addr:-$1}"
}
head_addr="$(node_addr "$head_node")"
# Buffers and learner rank 0 listen on the head node's address only (ZeroMQ binds an IP, not a
# name); GFN_BIND_HOST overrides it ('*' for every interface, with a token you keep private).
bind_ip() {
    local ip
    ip="$(getent ahostsv4 "$1" 2>/dev/null | awk 'NR == 1 {print $1}')"
    echo "${ip:-*}"
}
bind="${GFN_BIND_HOST:-$(bind_ip "$head_addr")}"

# Learners spread over as many nodes as needed, rank 0 on the first node.
if [[ -n "$learners_per_node" ]]; then
    (( learners_per_node >= 1 )) || { echo "slurm.sh: --learners-per-node must be at least 1" >&2; exit 2; }
    learner_nodes=$(( (learners + learners_per_node - 1) / learners_per_node ))
else
    learner_nodes=$(( learners < n_nodes ? learners : n_nodes ))
fi
(( learner_nodes <= n_nodes )) || { echo "slurm.sh: $learners learners at $learners_per_node per node need $learner_nodes nodes; the allocation has $n_nodes" >&2; exit 2; }
learner_list="$(IFS=,; echo "${hosts[*]:0:learner_nodes}")"

GFN_RUN_TOKEN="${GFN_RUN_TOKEN:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}"
export GFN_RUN_TOKEN
ingest="" serve=""
for ((i = 0; i < buffers; i++)); do
    ingest+="${ingest:+,}tcp://$head_addr:$((port + 2 * i))"
    serve+="${serve:+,}tcp://$head_addr:$((port + 2 * i + 1))"
done
weights="tcp://$head_addr:$((port + 2 * buffers))"
net="--ingest $ingest --serve $serve --weights $weights"
extra="$*"
gpus=""
# On CPU nodes one sampler process per node holds the node's samplers (ids node*N to
# node*N+N-1): they share one weight subscription, so the learner sends each weight version
# once per node. With GPUs each sampler is its own task with its own GPU.
sampler_tasks="--ntasks-per-node=1"
sampler_args="--id \$((SLURM_PROCID * $samplers_per_node)) --samplers $samplers_per_node"
if [[ " $extra " =~ [[:space:]]--device[=[:space:]]cuda ]]; then
    gpus=" --gpus-per-task=1"
    sampler_tasks="--ntasks-per-node=$samplers_per_node"
    sampler_args="--id \$SLURM_PROCID"
fi

# One line per job step; `\$SLURM_PROCID` is expanded by each task. --overlap lets the steps
# share the allocation's CPUs instead of waiting for each other.
steps=(
    "srun --overlap --nodes=1 --ntasks=$buffers --nodelist=$head_node bash -c 'exec $gfn buffer --id \$SLURM_PROCID --bind_host \"$bind\" $net $extra'"
    "srun --overlap$gpus --nodes=$n_nodes $sampler_tasks --nodelist=$nodes bash -c 'exec $gfn sampler $sampler_args $net $extra'"
    "srun --overlap$gpus --nodes=$learner_nodes --ntasks=$learners --nodelist=$learner_list --distribution=block --kill-on-bad-exit=1 --mpi=pmix $gfn learner --quiet --bind_host '$bind' $net $extra"
)

echo "# gfn on $n_nodes node(s): $buffers buffer(s) on $head_node ($head_addr), $learners learner(s) on $learner_list, $((samplers_per_node * n_nodes)) sampler(s)"
if ((dry_run)); then
    printf '%s\n' "${steps[@]}"
    exit 0
fi
pids=()
stop_roles() { kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; }
trap 'stop_roles; exit 143' TERM
trap 'stop_roles; exit 130' INT
eval "${steps[0]} &"; pids+=("$!")
eval "${steps[1]} &"; pids+=("$!")
status=0
eval "${steps[2]}" || status=$?
# The learners told the buffers and samplers that the run is over; give them a moment to leave.
for _ in $(seq 1 50); do
    running=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
    ((running)) || break
    sleep 0.2
done
stop_roles
exit "$status"
