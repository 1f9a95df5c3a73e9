#!/usr/bin/env bash
# Fuzzes the safetensors reader with libFuzzer under AddressSanitizer and UBSan.
#   scripts/fuzz.sh [seconds]     default 30; exits nonzero when the fuzzer finds a crash
#
# Builds fuzz/safetensors_fuzz.cpp with clang++ together with the graft sources it needs (the core
# GRAFT_SOURCES list and GRAFT_NN_IO_SOURCES from CMakeLists.txt, with the portable GEMM and the
# CUDA stub) into build/fuzz/, incrementally through a generated build.ninja. The corpus grows in
# build/fuzz/corpus; fuzz/corpus/ and tests/golden/safetensors/ are the seeds. A crashing input is
# saved as build/fuzz/crash-<hash>: rerun it with build/fuzz/safetensors_fuzz <file>.
# Needs clang, its libFuzzer runtime and its OpenMP (Debian: clang libclang-rt-14-dev libomp-dev).
set -euo pipefail

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [seconds]" >&2
  exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/build/fuzz"
cxx="${FUZZ_CXX:-clang++}"
jobs="${FUZZ_JOBS:-2}"

for tool in "$cxx" ninja; do
  command -v "$tool" >/dev/null || { echo "fuzz: '$tool' not found (Debian: clang libclang-rt-14-dev libomp-dev ninja-build)" >&2; exit 1; }
done
mkdir -p "$out"
# Fail early and clearly when the libFuzzer runtime or OpenMP is missing.
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$out/probe.cpp"
if ! "$cxx" -fsanitize=fuzzer -fopenmp "$out/probe.cpp" -o "$out/probe" 2> "$out/probe.log"; then
  cat "$out/probe.log" >&2
  echo "fuzz: $cxx cannot link a libFuzzer target with OpenMP (Debian: libclang-rt-14-dev libomp-dev)" >&2
  exit 1
fi

# The sources, from the lists in CMakeLists.txt so that this script never drifts from the library.
cmake_list() {  # the .cpp files of `set(<name> ...)`, which may span lines
  awk -v name="$1" '$0 ~ "^set\\(" name "([ \t]|$)" {on = 1} on {print; if ($0 ~ /\)/) exit}' "$root/CMakeLists.txt" |
    tr -s ' \t()' '\n' | grep '\.cpp$' || true
}
sources=($(cmake_list GRAFT_SOURCES) $(cmake_list GRAFT_NN_IO_SOURCES)
         kernels/gemm/cpu_fallback.cpp kernels/memory/cuda_memory_stub.cpp fuzz/safetensors_fuzz.cpp)
for s in "${sources[@]}"; do
  [[ -f "$root/$s" ]] || { echo "fuzz: source $s (from CMakeLists.txt) does not exist" >&2; exit 1; }
done

includes="-I$root"
[[ -d "$root/.deps/include" ]] && includes+=" -I$root/.deps/include"
{
  echo "cxx = $cxx"
  echo "cflags = -std=c++20 -O1 -g -fno-omit-frame-pointer -fopenmp $includes -fsanitize=address,undefined -fno-sanitize-recover=all -fsanitize=fuzzer-no-link"
  echo "rule cxx"
  echo "  command = \$cxx -MMD -MF \$out.d \$cflags -c \$in -o \$out"
  echo "  depfile = \$out.d"
  echo "  deps = gcc"
  echo "  description = CXX \$in"
  echo "rule link"
  echo "  command = \$cxx -fsanitize=fuzzer,address,undefined -fopenmp \$in -o \$out"
  echo "  description = LINK \$out"
  objects=()
  for s in "${sources[@]}"; do
    echo "build obj/${s%.cpp}.o: cxx $root/$s"
    objects+=("obj/${s%.cpp}.o")
  done
  echo "build safetensors_fuzz: link ${objects[*]}"
} > "$out/build.ninja.new"
# Rewrite only on change, so ninja does not rebuild everything each run.
cmp -s "$out/build.ninja.new" "$out/build.ninja" 2>/dev/null || mv "$out/build.ninja.new" "$out/build.ninja"
rm -f "$out/build.ninja.new"
ninja -C "$out" -j "$jobs" safetensors_fuzz

mkdir -p "$out/corpus" "$out/seeds"
cp "$root"/tests/golden/safetensors/*.safetensors "$root"/fuzz/corpus/* "$out/seeds/"
echo "fuzz: running for ${seconds}s"
# The first directory collects new inputs; the seeds are only read. Leaks count as failures too.
set +e
(cd "$out" && ./safetensors_fuzz -max_total_time="$seconds" -dict="$root/fuzz/safetensors.dict" -max_len=4096 \
   -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$out/" corpus seeds)
status=$?
set -e
if ((status != 0)); then
  echo "fuzz: FAILED (exit $status); the crashing input is in $out/ (crash-*, leak-*, timeout-*, oom-*)" >&2
  exit "$status"
fi
echo "fuzz: no crash in ${seconds}s"
