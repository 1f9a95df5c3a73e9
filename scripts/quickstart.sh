#!/usr/bin/env bash
# The main job. Until the fine-tuning issue lands: train a small MLP on synthetic data with
# graft's autograd and print its loss falling.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release > /dev/null
cmake --build --preset release --target graft_quickstart -j"$(nproc)"
build/release/graft_quickstart
