#!/usr/bin/env bash
# One command on a GPU machine (CUDA toolkit, CMake, ninja, PyTorch with CUDA; no oneDNN, GoogleTest
# or Google Benchmark needed): builds graft with the CUDA backend, runs every test, the CUDA ones
# included, then the GPU benchmarks against PyTorch on the same device (bench/gpu/gpu_bench.cpp and
# bench/peers/gpu.py, joined by bench/gpu/table.py), and prints both tables. Logs go to the folder
# given as $1 (default: gpu-logs). GRAFT_GPU_BENCH=0 skips the benchmarks; GRAFT_GPU_BENCH_FILTER
# runs only the cases whose name contains it; GRAFT_GPU_FINETUNE=0 skips the MiniLM fine-tune (which
# needs assets/ or .gpu-assets/, see below).
#
# GoogleTest is built from source: GRAFT_GTEST_SOURCE, else ./.gtest (a copy of Debian's
# /usr/src/googletest carried to the machine), else /usr/src/googletest. nlohmann-json comes from
# the system or from ./.deps/include/nlohmann (a copy of Debian's /usr/include/nlohmann), which
# CMakeLists.txt picks up, and so utf8proc (the tokenizer's Unicode tables: .deps/include/utf8proc.h,
# .deps/lib/libutf8proc.so*). To prepare them on a Debian machine before carrying them:
#   cp -r /usr/src/googletest .gtest && mkdir -p .deps/include .deps/lib && cp -r /usr/include/nlohmann .deps/include/
#   cp /usr/include/utf8proc.h .deps/include/ && cp -P /usr/lib/x86_64-linux-gnu/libutf8proc.so* .deps/lib/
#   bench/gpu/pack_assets.sh    # .gpu-assets/: MiniLM (f16) and Rotten Tomatoes, 47 MB, for the fine-tune
set -uo pipefail
cd "$(dirname "$0")/../.."
LOG=$(realpath -m "${1:-gpu-logs}")
mkdir -p "$LOG"

GTEST_SRC=""
for candidate in "${GRAFT_GTEST_SOURCE:-}" .gtest /usr/src/googletest; do
  if [ -n "$candidate" ] && [ -f "$candidate/CMakeLists.txt" ]; then GTEST_SRC=$(realpath "$candidate"); break; fi
done
[ -n "$GTEST_SRC" ] || { echo "run_all: no GoogleTest source found (set GRAFT_GTEST_SOURCE)"; exit 2; }

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nvcc --version | tail -2; date -u; } \
  > "$LOG/device.txt" 2>&1
echo "device: $(head -1 "$LOG/device.txt")"

status=0
cmake --preset cuda -DGRAFT_GTEST_SOURCE="$GTEST_SRC" > "$LOG/configure.log" 2>&1 || { echo "configure FAILED"; tail -30 "$LOG/configure.log"; exit 1; }
cmake --build --preset cuda -j"$(nproc)" > "$LOG/build.log" 2>&1 || { echo "build FAILED"; grep -E "error" -A3 "$LOG/build.log" | head -60; exit 1; }
cmake --build --preset cuda --target graft_bench_gpu -j"$(nproc)" >> "$LOG/build.log" 2>&1 || { echo "bench build FAILED"; grep -E "error" -A3 "$LOG/build.log" | head -40; exit 1; }
ctest --preset cuda -j4 --output-junit "$LOG/ctest.xml" > "$LOG/ctest.log" 2>&1 || status=1

# Count result lines only ("N/M Test #k: name ... Passed"), not ctest's closing summary.
passed=$(grep -cE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed" "$LOG/ctest.log" || true)
failed=$(grep -cE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*Failed|Exception|Timeout)" "$LOG/ctest.log" || true)
skipped=$(grep -cE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*\*\*\*Skipped" "$LOG/ctest.log" || true)
echo
echo "| suite | passed | failed | skipped |"
echo "|---|---|---|---|"
echo "| all tests (CUDA build) | $passed | $failed | $skipped |"
echo
echo "tests touching CUDA:"
grep -iE "cuda|device" "$LOG/ctest.log" | sed 's/^ *//' | head -40
grep -E "\*\*\*Failed|Exception" "$LOG/ctest.log" | head -20
tail -3 "$LOG/ctest.log"

# The main job on the GPU: the MiniLM full fine-tune on Rotten Tomatoes, f32 and bf16, against the
# CPU's recorded result (docs/RESULTS.md: test accuracy 0.8275). From assets/ where the machine has
# it, else from .gpu-assets/ (bench/gpu/pack_assets.sh: the model stored as f16, small enough to
# carry; graft loads it into f32 parameters).
model="" data=""
if [ -f assets/all-MiniLM-L6-v2/model.safetensors ] && [ -f assets/rotten_tomatoes.csv ]; then
  model=assets/all-MiniLM-L6-v2 data=assets/rotten_tomatoes.csv
elif [ -f .gpu-assets/all-MiniLM-L6-v2-f16/model.safetensors ] && [ -f .gpu-assets/rotten_tomatoes.csv ]; then
  model=.gpu-assets/all-MiniLM-L6-v2-f16 data=.gpu-assets/rotten_tomatoes.csv
fi
if [ "${GRAFT_GPU_FINETUNE:-1}" = "0" ]; then
  echo "MiniLM fine-tune on the GPU: skipped (GRAFT_GPU_FINETUNE=0)"
elif [ -n "$model" ]; then
  for precision in none bf16; do
    build/cuda/graft finetune --config recipes/minilm_rt_full.json --device cuda --set model.path="$model" \
      --set data.path="$data" --set train.mixed_precision=$precision \
      --set output_dir="$LOG/minilm_rt_full_cuda_$precision" --set overwrite=true --set train.progress=false \
      > "$LOG/finetune_cuda_$precision.log" 2>&1 || status=1
    echo "MiniLM RT full fine-tune on the GPU ($model, $precision): $(tail -1 "$LOG/finetune_cuda_$precision.log")"
  done
else
  echo "MiniLM fine-tune on the GPU: skipped (neither assets/ nor .gpu-assets/ here: bench/gpu/pack_assets.sh)"
fi

if [ "${GRAFT_GPU_BENCH:-1}" != "0" ]; then
  filter=()
  [ -n "${GRAFT_GPU_BENCH_FILTER:-}" ] && filter=(--filter "$GRAFT_GPU_BENCH_FILTER")
  echo
  echo "GPU benchmarks, graft against PyTorch on the same device ($(head -1 "$LOG/device.txt")):"
  build/cuda/graft_bench_gpu "${filter[@]}" > "$LOG/bench_graft.jsonl" 2> "$LOG/bench_graft.err" || status=1
  python3 bench/peers/gpu.py "${filter[@]}" > "$LOG/bench_torch.jsonl" 2> "$LOG/bench_torch.err" || status=1
  head -1 "$LOG/bench_torch.err"
  python3 bench/gpu/table.py "$LOG/bench_graft.jsonl" "$LOG/bench_torch.jsonl" | tee "$LOG/bench_table.md"
  tail -3 "$LOG/bench_graft.err" "$LOG/bench_torch.err"
fi
exit $status
