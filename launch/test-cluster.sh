#!/usr/bin/env bash
# A real two-node Slurm cluster on this machine, for tests and CI: slurmctld, one slurmd per
# virtual node (`slurmd -N nodeK`, both at 127.0.0.1) and a private munged, all as root,
# everything under one folder.
#
#   launch/test-cluster.sh start        install what is missing (Debian packages), start the
#                                       daemons, wait until every node is idle (idempotent)
#   launch/test-cluster.sh env          the exports clients need (SLURM_CONF, Open MPI as root)
#   launch/test-cluster.sh wait JOB [S] wait for job JOB (S seconds at most); exit 0 iff it COMPLETED
#   launch/test-cluster.sh stop         cancel its jobs and stop the daemons it started (only those)
#
# Knobs: GFN_CLUSTER_DIR (/tmp/gfn-test-cluster), GFN_CLUSTER_NODES (2), GFN_CLUSTER_PORT (16817;
# node K listens on 17000 + K).
set -euo pipefail

dir="${GFN_CLUSTER_DIR:-/tmp/gfn-test-cluster}"
nodes="${GFN_CLUSTER_NODES:-2}"
port="${GFN_CLUSTER_PORT:-16817}"
case "$dir" in /|/tmp|/tmp/|"") echo "test-cluster.sh: GFN_CLUSTER_DIR must be a folder of its own" >&2; exit 2 ;; esac
[[ "$nodes" =~ ^[1-9][0-9]*$ ]] || { echo "test-cluster.sh: GFN_CLUSTER_NODES must be a positive number" >&2; exit 2; }
conf="$dir/etc/slurm.conf"
socket="$dir/munge/munge.socket"
export SLURM_CONF="$conf"

say() { echo "test-cluster: $*" >&2; }

install_missing() {
    local pkg missing=()
    for pkg in slurmctld slurmd slurm-client munge openmpi-bin libopenmpi-dev libpmix-dev; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    say "installing ${missing[*]}"
    apt-get update -qq >"$dir/log/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >>"$dir/log/apt.log" 2>&1 || { tail -20 "$dir/log/apt.log" >&2; return 1; }
}

# The PID in a PID file, if that process still runs the expected program (a recycled PID is
# never signalled) and is not a zombie.
running_pid() {
    local file=$1 program=$2 pid state
    [[ -s "$file" ]] || return 1
    pid="$(cat "$file")"
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    [[ "$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n1 | xargs -r basename)" == "$program" ]] || return 1
    alive "$pid" || return 1
    echo "$pid"
}

# Whether a process runs (a zombie, waiting for PID 1 to reap it, does not).
alive() {
    local state
    state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
    [[ -n "$state" && "$state" != Z ]]
}

# "file program" for each daemon, in stopping order.
daemons() {
    local k
    for ((k = 1; k <= nodes; k++)); do echo "$dir/run/slurmd-node$k.pid slurmd"; done
    echo "$dir/run/slurmctld.pid slurmctld"
    echo "$dir/munge/munged.pid munged"
}

write_config() {
    local host k
    host="$(hostname -s)"
    mkdir -p "$dir"/{etc,state,run,munge}
    for ((k = 1; k <= nodes; k++)); do mkdir -p "$dir/spool/node$k" "$dir/tmp/node$k"; done
    {
        echo "ClusterName=gfntest"
        echo "SlurmctldHost=$host(127.0.0.1)"
        echo "SlurmctldPort=$port"
        echo "SlurmUser=root"
        echo "SlurmdUser=root"
        echo "AuthType=auth/munge"
        echo "AuthInfo=socket=$socket"
        echo "CryptoType=crypto/munge"
        echo "StateSaveLocation=$dir/state"
        echo "SlurmdSpoolDir=$dir/spool/%n"
        # One TmpFS per node: pmix makes a folder per step there, and two slurmd on one host
        # would collide in a shared /tmp.
        echo "TmpFS=$dir/tmp/%n"
        echo "SlurmctldPidFile=$dir/run/slurmctld.pid"
        echo "SlurmdPidFile=$dir/run/slurmd-%n.pid"
        echo "SlurmctldLogFile=$dir/log/slurmctld.log"
        echo "SlurmdLogFile=$dir/log/slurmd-%n.log"
        echo "ProctrackType=proctrack/linuxproc"
        echo "TaskPlugin=task/none"
        echo "SelectType=select/cons_tres"
        echo "SelectTypeParameters=CR_Core"
        echo "MpiDefault=none"
        echo "SwitchType=switch/none"
        echo "JobAcctGatherType=jobacct_gather/none"
        echo "AccountingStorageType=accounting_storage/none"
        echo "JobCompType=jobcomp/filetxt"
        echo "JobCompLoc=$dir/log/jobcomp.txt"
        echo "MailProg=/bin/true"
        echo "ReturnToService=2"
        # Nodes take their CPUs and memory from this file, not from the hardware.
        echo "SlurmdParameters=config_overrides"
        echo "InactiveLimit=0"
        echo "KillWait=5"
        for ((k = 1; k <= nodes; k++)); do
            echo "NodeName=node$k NodeHostname=$host NodeAddr=127.0.0.1 Port=$((17000 + k)) CPUs=$(nproc) RealMemory=2000 State=UNKNOWN"
        done
        echo "PartitionName=test Nodes=node[1-$nodes] Default=YES MaxTime=INFINITE State=UP"
    } >"$conf"
    {
        echo "export SLURM_CONF=$conf"
        echo "export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
    } >"$dir/env"
}

# Waits for a daemon's PID file to name it.
await_daemon() {
    local _
    for _ in $(seq 1 100); do running_pid "$1" "$2" >/dev/null && return 0; sleep 0.1; done
    say "$2 did not start"; tail -n 20 "$dir"/log/*.log >&2 || true
    return 1
}

await_idle_nodes() {
    local _ ready
    for _ in $(seq 1 120); do
        ready="$(sinfo -h -N -o '%N %T' 2>/dev/null | awk '$2 ~ /^(idle|mixed|allocated|completing)$/' | sort -u | wc -l)"
        ((ready >= nodes)) && return 0
        sleep 0.5
    done
    say "nodes not ready after 60 s"; sinfo -N >&2 || true
    return 1
}

all_running() {
    local file program
    while read -r file program; do running_pid "$file" "$program" >/dev/null || return 1; done < <(daemons)
}

start() {
    mkdir -p "$dir/log"
    install_missing
    if all_running && sinfo -h >/dev/null 2>&1; then
        await_idle_nodes
        return 0
    fi
    stop_daemons
    rm -rf "${dir:?}"/{state,spool,tmp,run,munge,etc}
    write_config
    # A private munge key and socket: /etc/munge and any system munged are left alone.
    chmod 755 "$dir/munge"
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 600 "$dir/munge/munge.key"
    munged --socket="$socket" --key-file="$dir/munge/munge.key" --pid-file="$dir/munge/munged.pid" \
        --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" </dev/null >>"$dir/log/daemons.out" 2>&1
    await_daemon "$dir/munge/munged.pid" munged
    slurmctld -f "$conf" </dev/null >>"$dir/log/daemons.out" 2>&1
    await_daemon "$dir/run/slurmctld.pid" slurmctld
    local k
    for ((k = 1; k <= nodes; k++)); do
        slurmd -f "$conf" -N "node$k" </dev/null >>"$dir/log/daemons.out" 2>&1
        await_daemon "$dir/run/slurmd-node$k.pid" slurmd
    done
    await_idle_nodes
    say "$nodes node(s) up: $(sinfo -h -o '%D %T %N' | tr '\n' ' ')"
}

stop_daemons() {
    local file program pid killed=()
    while read -r file program; do
        if pid="$(running_pid "$file" "$program")"; then kill "$pid" 2>/dev/null || true; killed+=("$pid"); fi
    done < <(daemons)
    for pid in "${killed[@]}"; do
        for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    done
    rm -f "$dir"/run/*.pid "$dir/munge/munged.pid"
}

stop() {
    if running_pid "$dir/run/slurmctld.pid" slurmctld >/dev/null; then
        local jobs
        jobs="$(squeue -h -o %A 2>/dev/null || true)"
        if [[ -n "$jobs" ]]; then
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 1 40); do [[ -z "$(squeue -h -o %A 2>/dev/null)" ]] && break; sleep 0.5; done
        fi
    fi
    stop_daemons
}

# Waits for a job; exit 0 iff it COMPLETED (sbatch --wait polls far more slowly).
wait_job() {
    local job=$1 limit=${2:-600} state start=$SECONDS
    while :; do
        state="$(scontrol show job -o "$job" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2 || true)"
        case "$state" in
            COMPLETED) return 0 ;;
            PENDING|CONFIGURING|RUNNING|COMPLETING|SUSPENDED) ;;
            *) say "job $job ended ${state:-unknown}: $(scontrol show job -o "$job" 2>/dev/null | grep -o 'ExitCode=[0-9:]*' || true)"; return 1 ;;
        esac
        if ((SECONDS - start > limit)); then say "job $job still $state after $limit s: cancelled"; scancel "$job"; return 1; fi
        sleep 0.5
    done
}

case "${1:-}" in
    start) start ;;
    env) cat "$dir/env" ;;
    stop) stop ;;
    wait) [[ -n "${2:-}" ]] || { echo "usage: $0 wait JOB [SECONDS]" >&2; exit 2; }; wait_job "$2" "${3:-600}" ;;
    *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
