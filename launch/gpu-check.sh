#!/usr/bin/env bash
# The GPU device check: TB on the GPU against the CPU (same seed and budget), the training
# benchmark with the GPU rows (4-D H=16 batch 512 among them), and sampler scaling on the GPU
# machine's cores (CPU samplers feeding a GPU learner, CPU only, GPU samplers). The GPU machine
# has no Rust toolchain, so the check runs in two places:
#
#   launch/gpu-check.sh build          # here: three release binaries, compressed to carry:
#                                      # gpu-bin/gfn.xz (cuda), gpu-bin/gfn-fused.xz (cuda with
#                                      # burn's kernel fusion and autotuning) and
#                                      # gpu-bin/gfn-mpi.xz (cuda, mpi)
#   launch/gpu-check.sh run [OUT]      # on the GPU machine (carry gpu-bin/): a short table per
#                                      # section, every output under OUT (default gpu-check/)
#
# `run` holds a time budget (GPU_CHECK_BUDGET seconds, default 330, which leaves room for a
# rerun within a 15-minute loan): each section gets at most its own limit and what is left of
# the budget, and sections that no longer fit are skipped and say so. With GPU_CHECK_COPY set
# to a folder, OUT is packed into GPU_CHECK_COPY/gpu-check.tgz after every section, so a call
# cut short still brings back what finished. It exits non-zero when the GPU's exact L1 is more
# than 0.01 from the CPU's.
set -euo pipefail
cd "$(dirname "$0")/.."

build() {
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gfn-target-cuda}"
    export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
    mkdir -p gpu-bin
    local features name
    for features in cuda:gfn cuda-fusion:gfn-fused cuda,mpi:gfn-mpi; do
        name=${features#*:}
        features=${features%:*}
        cargo build --release -p gfn-launch --features "$features"
        xz -T0 -6 -c "$CARGO_TARGET_DIR/release/gfn" > "gpu-bin/$name.xz"
    done
    ls -l gpu-bin
}

# Unpacks a carried binary into /tmp and prints its path.
unpack() {
    xz -dc "gpu-bin/$1.xz" > "/tmp/$1"
    chmod +x "/tmp/$1"
    echo "/tmp/$1"
}

# burn-cuda compiles its kernels at run time with NVRTC: it needs the CUDA headers (CUDA_PATH)
# and libnvrtc on the loader's path.
cuda_env() {
    if [[ -z "${CUDA_PATH:-}" ]]; then
        local nvcc
        nvcc="$(command -v nvcc || true)"
        if [[ -n "$nvcc" ]]; then
            CUDA_PATH="$(dirname "$(dirname "$(readlink -f "$nvcc")")")"
        else
            CUDA_PATH=/usr/local/cuda
        fi
        export CUDA_PATH
    fi
    local lib
    for lib in "$CUDA_PATH/lib64" "$CUDA_PATH/targets/x86_64-linux/lib"; do
        [[ -d "$lib" ]] && LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    done
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"
}

# The final exact L1 in a `gfn train` summary.
exact_l1() {
    grep -o '"exact_l1": [0-9.eE+-]*' "$1" | head -n 1 | awk '{ print $2 }'
}

# Runs `$3…` as section `$1` under the smaller of its own limit (`$2` s) and what is left of
# the budget; skips it when less than 20 s are left.
section() {
    local name="$1" own="$2" left=$((DEADLINE - SECONDS))
    shift 2
    local limit=$((own < left ? own : left))
    if ((limit < 20)); then
        echo "== $name: skipped, ${left}s of the budget left" | tee -a "$OUT_DIR/skipped.txt"
        return 0
    fi
    echo "== $name (at most ${limit}s; ${left}s of the budget left)"
    local start=$SECONDS rc=0
    # Through bash, so that a section can be one of this script's functions.
    timeout --kill-after=5 "$limit" bash -o pipefail -c '"$@"' "$name" "$@" || rc=$?
    # Whatever a killed section left running would hold the output open.
    pkill -KILL -f -- "$GFN" || true
    echo "== $name: exit $rc after $((SECONDS - start))s" | tee -a "$OUT_DIR/sections.txt"
    if [[ -n "${GPU_CHECK_COPY:-}" ]]; then
        tar czf "$GPU_CHECK_COPY/gpu-check.tgz" -C "$(dirname "$OUT_DIR")" "$(basename "$OUT_DIR")"
    fi
    return 0
}

# What the machine has; it runs in a pipeline's subshell, so a failed probe stops nothing.
probe() {
    set +e
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader ||
        echo "nvidia-smi failed"
    echo "cores: $(nproc); CUDA_PATH=$CUDA_PATH"
    find -L "$CUDA_PATH" -maxdepth 4 -name 'libnvrtc.so*' 2>/dev/null | head -n 3
    if command -v mpirun; then mpirun --version | head -n 1; else echo "no mpirun"; fi
    ldd "$GFN" | grep -E "not found|zmq|mpi|cuda"
    "$GFN" --version
}

# Trains the reference configuration as `$1` (a name) with binary `$2` on device `$3`, at most
# `$4` seconds, and prints one table row: exact L1, its distance from the CPU's, the wall time.
reference_run() {
    local name="$1" bin="$2" device="$3" start=$SECONDS l1
    timeout --kill-after=5 "$4" "$bin" train --config configs/tb-2d8-reference.toml \
        --device "$device" --quiet --run_dir "$OUT_DIR/tb2d8-$name" > "$OUT_DIR/tb2d8-$name.json" ||
        true
    l1="$(exact_l1 "$OUT_DIR/tb2d8-$name.json")"
    awk -v name="$name" -v cpu="${CPU_L1:-}" -v l1="${l1:-}" -v s=$((SECONDS - start)) \
        'BEGIN { if (l1 == "") { printf "| %s | did not finish | | %d s |\n", name, s; exit }
                 if (cpu == "") { printf "| %s | %.4f | (the reference) | %d s |\n", name, l1, s
                                  exit }
                 d = cpu - l1; if (d < 0) d = -d
                 printf "| %s | %.4f | %.4f (%s) | %d s |\n", name, l1, d,
                        (d <= 0.01 ? "yes" : "NO"), s }'
}

# The reference run on the CPU and with each GPU build; the faster GPU build that agrees with
# the CPU is written to $OUT_DIR/gpu-build for the sections after this one.
correctness() {
    {
        echo "| build | exact L1 | distance from cpu (within 0.01) | wall |"
        echo "|---|---|---|---|"
        reference_run cpu "$GFN" cpu 30
        CPU_L1="$(exact_l1 "$OUT_DIR/tb2d8-cpu.json")"
        reference_run cuda "$GFN" cuda 45
        [[ -n "$GFN_FUSED" ]] && reference_run cuda-fused "$GFN_FUSED" cuda 45
    } | tee "$OUT_DIR/correctness.md"
    # Rows that pass, fastest first; the wall time is the last column.
    grep "(yes)" "$OUT_DIR/correctness.md" | grep -v "^| cpu " |
        sort -t'|' -k5 -n | head -n 1 | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' \
        > "$OUT_DIR/gpu-build"
    [[ -s "$OUT_DIR/gpu-build" ]]
}

scaling() {
    local name="$1"
    shift
    "$GFN" bench-pipeline --height 16 --batch_size 512 "$@" | tee "$OUT_DIR/scaling-$name.md"
}

run() {
    OUT_DIR="${1:-gpu-check}"
    DEADLINE=$((SECONDS + ${GPU_CHECK_BUDGET:-330}))
    mkdir -p "$OUT_DIR"
    OUT_DIR="$(cd "$OUT_DIR" && pwd)"
    GFN="${GFN:-$(unpack gfn)}"
    GFN_FUSED="$(unpack gfn-fused 2>/dev/null || true)"
    cuda_env
    # The MPI build needs the machine's Open MPI; without it the MPI section is skipped.
    GFN_MPI="$(unpack gfn-mpi 2>/dev/null || true)"
    if [[ -z "$GFN_MPI" ]] || ! "$GFN_MPI" --version > /dev/null 2>&1; then
        echo "no usable MPI build: the MPI learner section is skipped" | tee "$OUT_DIR/mpi.txt"
        GFN_MPI=""
    fi
    export GFN GFN_FUSED GFN_MPI OUT_DIR
    export -f correctness reference_run scaling exact_l1
    export RUST_LOG="${RUST_LOG:-warn}"
    probe 2>&1 | tee "$OUT_DIR/probe.txt"
    local status=0
    section "correctness: 2-D H=8 TB, batch 128, 32,000 trajectories, CPU and GPU builds" 110 \
        correctness
    grep -q "(yes)" "$OUT_DIR/correctness.md" 2>/dev/null || status=1
    # The sections below use the GPU build that passed and was faster (the plain one if none).
    local gpu_bin="$GFN" picked=cuda other_bin="$GFN_FUSED" other=cuda-fused
    if [[ "$(cat "$OUT_DIR/gpu-build" 2>/dev/null)" == cuda-fused ]]; then
        gpu_bin="$GFN_FUSED" picked=cuda-fused other_bin="$GFN" other=cuda
    fi
    echo "GPU sections use $gpu_bin" | tee -a "$OUT_DIR/sections.txt"
    section "training benchmark on the GPU" 130 \
        "$gpu_bin" bench --device cuda --steps_small 200 --steps_large 100 \
        --json "$OUT_DIR/bench-$picked.json"
    section "scaling: CPU samplers feeding one GPU learner" 60 \
        env GFN="$gpu_bin" bash -c 'scaling cpu-to-gpu --samplers 1,2,4,8 --steps 100 \
        --learner_device cuda'
    section "scaling: CPU only, CPU samplers feeding one 8-thread CPU learner" 45 \
        scaling cpu-only --samplers 1,2,4,8 --steps 100 --learner_threads 8
    if [[ -n "$GFN_MPI" ]]; then
        section "scaling: CPU only, 8 CPU samplers feeding 2 MPI learners of 4 threads" 30 \
            env GFN="$GFN_MPI" bash -c 'scaling cpu-mpi --samplers 8 --steps 100 --learners 2 \
            --learner_threads 4'
    fi
    section "scaling: GPU samplers feeding one GPU learner" 45 \
        env GFN="$gpu_bin" bash -c 'scaling gpu-to-gpu --samplers 1,2,4 --steps 100 \
        --learner_device cuda --sampler_device cuda'
    if [[ -n "$other_bin" ]]; then
        section "training benchmark on the GPU, the other build ($other)" 60 \
            "$other_bin" bench --device cuda --steps_small 100 --steps_large 50 \
            --json "$OUT_DIR/bench-$other.json"
    fi
    nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu,power.draw --format=csv \
        >> "$OUT_DIR/probe.txt" 2>&1 || true
    return "$status"
}

case "${1:-}" in
    build) build ;;
    run) run "${2:-}" ;;
    *)
        echo "usage: launch/gpu-check.sh build | run [OUT]" >&2
        exit 2
        ;;
esac
