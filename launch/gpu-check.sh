#!/usr/bin/env bash
# The GPU device check: TB on the GPU against the CPU (same seed and budget), the training
# benchmark with the GPU rows (4-D H=16 batch 512 among them), and sampler scaling (1, 2, 4, 8
# CPU sampler processes feeding one GPU learner). The GPU machine has no Rust toolchain, so the
# check runs in two places:
#
#   launch/gpu-check.sh build          # here: the release binary with --features cuda, in gpu-bin/
#   launch/gpu-check.sh run [OUT]      # on the GPU machine (carry gpu-bin/): a short table, and
#                                      # every output under OUT (default gpu-check/)
#
# `run` is sized to finish within 5 minutes on one H200. It exits non-zero when the GPU's exact
# L1 is more than 0.01 from the CPU's.
set -euo pipefail
cd "$(dirname "$0")/.."

build() {
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gfn-target-cuda}"
    CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}" \
        cargo build --release -p gfn-launch --features cuda
    mkdir -p gpu-bin
    cp "$CARGO_TARGET_DIR/release/gfn" gpu-bin/gfn
    echo "built gpu-bin/gfn"
}

# The final exact L1 in a `gfn train` summary.
exact_l1() {
    grep -o '"exact_l1": [0-9.eE+-]*' "$1" | head -n 1 | awk '{ print $2 }'
}

run() {
    local out="${1:-gpu-check}" gfn="${GFN:-gpu-bin/gfn}" status=0
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader |
        tee "$out/gpu.txt"
    echo "== correctness: 2-D H=8 TB, batch 128, 32,000 trajectories, seed 1, CPU and GPU"
    for device in cpu cuda; do
        "$gfn" train --config configs/tb-2d8-reference.toml --device "$device" --quiet \
            --run_dir "$out/tb2d8-$device" > "$out/tb2d8-$device.json"
    done
    awk -v cpu="$(exact_l1 "$out/tb2d8-cpu.json")" -v gpu="$(exact_l1 "$out/tb2d8-cuda.json")" \
        'BEGIN { d = cpu - gpu; if (d < 0) d = -d
                 printf "| exact L1 cpu | exact L1 cuda | difference | within 0.01 |\n|---|---|---|---|\n"
                 printf "| %.4f | %.4f | %.4f | %s |\n", cpu, gpu, d, (d <= 0.01 ? "yes" : "NO")
                 exit (d > 0.01) }' | tee "$out/correctness.md" || status=1
    echo "== training benchmark on the GPU"
    "$gfn" bench --device cuda --steps_small 500 --steps_large 200 \
        --json "$out/bench-cuda.json" | tee "$out/bench-cuda.md"
    echo "== sampler scaling: 4-D H=16, batch 512, CPU samplers feeding one GPU learner"
    "$gfn" bench-pipeline --samplers 1,2,4,8 --height 16 --batch_size 512 --steps 100 \
        --learner_device cuda | tee "$out/scaling.md"
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
