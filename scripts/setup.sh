#!/usr/bin/env bash
# Installs what graft's build needs (Debian packages). Idempotent: a second run installs nothing.
#   scripts/setup.sh           build + test dependencies
#   scripts/setup.sh --bench   also the PyTorch peer for bench/compare.sh
set -euo pipefail

# ocl-icd-opencl-dev: Debian's dnnl-config.cmake calls find_package(OpenCL); it is only a Recommends of libdnnl-dev.
# clang, libclang-rt-14-dev (libFuzzer), libomp-dev: scripts/fuzz.sh, which CI runs.
# openmpi-bin, libopenmpi-dev: distributed training (train/distributed) and its mpirun tests.
packages=(cmake ninja-build g++ ccache libdnnl-dev ocl-icd-opencl-dev nlohmann-json3-dev libcli11-dev libfmt-dev libutf8proc-dev
          libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev libomp-dev openmpi-bin libopenmpi-dev)
if [[ "${1:-}" == "--bench" ]]; then packages+=(python3-torch libopenblas0-pthread); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
# env (not a prefix assignment) so the variable survives sudo's env_reset.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
