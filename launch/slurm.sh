#!/usr/bin/env bash
# Multi-node gfn run under Slurm, as job steps of one allocation: buffers and learners on the
# first node (learners as one MPI step), samplers on every node. Counts are independent.
#
#   sbatch --nodes=2 launch/slurm.sh [--samplers-per-node N] [--buffers M] [--learners K]
#          [--port P] [--gfn PATH] [-- RUN FLAGS...]
#   launch/slurm.sh --dry-run --nodes node1,node2 ...   # print the plan where Slurm is absent
#
# Buffers and learner rank 0 listen on all interfaces of the first node; every message carries
# a random run token, so processes of other runs cannot inject data.
set -euo pipefail

samplers_per_node=4
buffers=1
learners=1
port=5555
gfn="${GFN:-gfn}"
dry_run=0
nodes=""

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --samplers-per-node) samplers_per_node="$2"; shift 2 ;;
        --buffers) buffers="$2"; shift 2 ;;
        --learners) learners="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --gfn) gfn="$2"; shift 2 ;;
        --nodes) nodes="$2"; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) echo "slurm.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
for n in "$samplers_per_node" "$buffers" "$learners" "$port"; do
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

# Job steps inherit the environment (srun --export=ALL): the token never goes on a command line.
GFN_RUN_TOKEN="${GFN_RUN_TOKEN:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}"
export GFN_RUN_TOKEN
ingest="" serve=""
for ((i = 0; i < buffers; i++)); do
    ingest+="${ingest:+,}tcp://$head_node:$((port + 2 * i))"
    serve+="${serve:+,}tcp://$head_node:$((port + 2 * i + 1))"
done
weights="tcp://$head_node:$((port + 2 * buffers))"
net="--ingest $ingest --serve $serve --weights $weights"
extra="$*"

# One line per job step; `\$SLURM_PROCID` is expanded by each task.
steps=(
    "srun --nodes=1 --ntasks=$buffers --nodelist=$head_node bash -c 'exec $gfn buffer --id \$SLURM_PROCID --bind_host \"*\" $net $extra'"
    "srun --nodes=$n_nodes --ntasks-per-node=$samplers_per_node --nodelist=$nodes bash -c 'exec $gfn sampler --id \$SLURM_PROCID $net $extra'"
    "srun --nodes=1 --ntasks=$learners --nodelist=$head_node --mpi=pmix $gfn learner --quiet --bind_host '*' $net $extra"
)

echo "# gfn on $n_nodes node(s): $buffers buffer(s) and $learners learner(s) on $head_node, $((samplers_per_node * n_nodes)) sampler(s)"
if ((dry_run)); then
    printf '%s\n' "${steps[@]}"
    exit 0
fi
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; exit 130' INT TERM
eval "${steps[0]} &"; pids+=("$!")
eval "${steps[1]} &"; pids+=("$!")
status=0
eval "${steps[2]}" || status=$?
sleep 2
kill "${pids[@]}" 2>/dev/null || true
wait || true
exit "$status"
