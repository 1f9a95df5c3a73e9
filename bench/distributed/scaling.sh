#!/usr/bin/env bash
# Data-parallel scaling on the CPU: the same Trainer steps (fixed global batch) in 1 process and in
# 2 processes under mpirun, one OpenMP thread per process. Prints
#   case=<name> ranks=1 ms=<ms/step> ranks=2 ms=<ms/step> speedup=<t1/t2>
# Usage: bench/distributed/scaling.sh [build dir, default build/release]
# The build needs MPI (scripts/setup.sh installs OpenMPI). The GPU/NCCL case is not built: graft
# has no NCCL backend yet, so there is nothing to time on GPUs (see README, Distributed training).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/release}
if [[ ! -f "$build/build.ninja" ]]; then cmake --preset release >/dev/null; fi
ninja -C "$build" graft_bench_distributed_scaling >/dev/null
bin="$build/graft_bench_distributed_scaling"
# As root (containers) OpenMPI needs these; harmless otherwise.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
ms() { sed -n 's/.*ms_per_step=\([0-9.]*\).*/\1/p'; }
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
