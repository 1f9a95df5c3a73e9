#!/usr/bin/env bash
# Data-parallel scaling: the same Trainer steps (fixed global batch) in 1 process and under mpirun.
#
# CPU (the default): 1 process against 2 processes, one OpenMP thread each. Prints
#   case=<name> ranks=1 ms=<ms/step> ranks=2 ms=<ms/step> speedup=<t1/t2>
# Usage: bench/distributed/scaling.sh [build dir, default build/release]
# The build needs MPI (scripts/setup.sh installs OpenMPI).
#
# GPU: bench/distributed/scaling.sh gpu [build dir, default build/cuda] on a machine with N >= 2
# GPUs: 1 process on 1 GPU against N processes on N GPUs (one per process, gradients reduced by
# NCCL). Prints
#   case=<name> device=cuda ranks=1 ms=<ms/step> ranks=<N> ms=<ms/step> speedup=<t1/tN>
# The build needs MPI, the CUDA backend and NCCL (ProcessGroup::nccl_available()).
# NEVER RUN: the GPU mode was written without a multi-GPU machine; its cases and sizes are a first
# guess, and nothing in docs/PERFORMANCE.md comes from it.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=cpu
if [[ "${1:-}" == gpu ]]; then
  mode=gpu
  shift
fi
if [[ $mode == cpu ]]; then
  build=${1:-build/release}
  preset=release
else
  build=${1:-build/cuda}
  preset=cuda
fi
if [[ ! -f "$build/build.ninja" ]]; then cmake --preset "$preset" >/dev/null; fi
ninja -C "$build" graft_bench_distributed_scaling >/dev/null
bin="$build/graft_bench_distributed_scaling"
# As root (containers) OpenMPI needs these; harmless otherwise.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
ms() { sed -n 's/.*ms_per_step=\([0-9.]*\).*/\1/p'; }

if [[ $mode == cpu ]]; then
  run_case() {  # name, then the bench's arguments
    local name=$1; shift
    local one two
    one=$("$bin" "$@" | ms)
    two=$(mpirun -np 2 --oversubscribe --bind-to none "$bin" "$@" | ms)
    echo "case=$name ranks=1 ms=$one ranks=2 ms=$two speedup=$(awk -v a="$one" -v b="$two" 'BEGIN { printf "%.2f", a / b }')"
  }
  run_case mlp_1.3M_batch128 --steps 40 --batch 128 --in 256 --hidden 1024
  run_case mlp_1.3M_batch1024 --steps 15 --batch 1024 --in 256 --hidden 1024
  run_case mlp_17M_batch64 --steps 20 --batch 64 --in 1024 --hidden 4096
  exit 0
fi

# GPU mode (never run).
gpus=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | wc -l)
if (( gpus < 2 )); then
  echo "scaling.sh gpu: needs at least 2 GPUs, nvidia-smi lists $gpus" >&2
  exit 2
fi
run_gpu_case() {  # name, then the bench's arguments (global batch divisible by the GPU count)
  local name=$1; shift
  local one many
  one=$(CUDA_VISIBLE_DEVICES=0 "$bin" --device cuda "$@" | ms)
  # One process per GPU; each takes the GPU of its local rank (ProcessGroup::device()).
  many=$(mpirun -np "$gpus" --bind-to none "$bin" --device cuda "$@" | ms)
  echo "case=$name device=cuda ranks=1 ms=$one ranks=$gpus ms=$many speedup=$(awk -v a="$one" -v b="$many" 'BEGIN { printf "%.2f", a / b }')"
}
# Global batches divisible by 8 GPUs and smaller counts that divide 8 (2, 4).
run_gpu_case mlp_17M_batch512 --steps 30 --batch 512 --in 1024 --hidden 4096
run_gpu_case mlp_17M_batch4096 --steps 20 --batch 4096 --in 1024 --hidden 4096
run_gpu_case mlp_336M_batch1024 --steps 15 --batch 1024 --in 4096 --hidden 16384
