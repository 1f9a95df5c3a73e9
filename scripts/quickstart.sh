#!/usr/bin/env bash
# The main job: fine-tune the pretrained all-MiniLM-L6-v2 on Rotten Tomatoes (12,808 review
# snippets, fresh / rotten; stratified 80/10/10 split, seed 42) on the CPU, and print what it
# learned: first a head on the frozen backbone's features (the baseline transfer needs to beat),
# then the whole model fine-tuned (recipes/minilm_rt_full.json). The last line reads
#   test_accuracy=<fine-tuned> baseline_frozen=<frozen features + head>
# Runs land in runs/quickstart_{frozen,full}/ (config, JSONL log, checkpoints, model, results).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/fetch-assets.sh minilm
bash scripts/fetch-assets.sh rotten_tomatoes
cmake --preset release > /dev/null
cmake --build --preset release --target graft_cli -j"$(nproc)"

accuracy() { python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["test"]["accuracy"], 4))' "$1/results.json"; }

echo "== frozen MiniLM features + a trained head (recipes/minilm_rt_feature_extraction.json)"
build/release/graft finetune --config recipes/minilm_rt_feature_extraction.json \
  --set output_dir=runs/quickstart_frozen --set overwrite=true --set train.progress=false
echo "== MiniLM fine-tuned end to end (recipes/minilm_rt_full.json)"
build/release/graft finetune --config recipes/minilm_rt_full.json \
  --set output_dir=runs/quickstart_full --set overwrite=true
echo "test_accuracy=$(accuracy runs/quickstart_full) baseline_frozen=$(accuracy runs/quickstart_frozen)"
