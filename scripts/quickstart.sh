#!/usr/bin/env bash
# The main job. Until the fine-tuning issue lands: pretrain an MLP on a synthetic source task, save
# it as safetensors, transfer it to a target task with 64 labelled examples (frozen backbone, then
# fine-tuned) and print what each stage learned against training from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release > /dev/null
cmake --build --preset release --target graft_quickstart -j"$(nproc)"
build/release/graft_quickstart
