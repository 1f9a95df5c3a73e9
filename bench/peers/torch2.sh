#!/usr/bin/env bash
# Installs PyPI's torch 2.x (the stronger peer) into a virtual environment under build/ and prints
# its interpreter, for: GRAFT_PEER_PYTHON=$(bench/peers/torch2.sh) bench/compare.sh <family>
# PyPI's Linux wheel is the CUDA build (about 4 GB with its nvidia-* dependencies); on a machine
# without a GPU it runs on the CPU, which is what the peer scripts measure. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=build/peers/torch2
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  if ! python3 -m venv --help >/dev/null 2>&1; then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >&2
  fi
  echo "torch2: installing PyPI torch into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check torch numpy >&2
fi
echo "torch2: $("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)')" >&2
echo "$PWD/$venv/bin/python"
