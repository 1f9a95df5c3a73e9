#!/usr/bin/env bash
# Runs graft's Google Benchmark cases and the same cases in PyTorch (bench/peers/) in one go and
# prints one line per case:  case=<name> graft_ms=<median> peer_ms=<median> speedup=<peer/graft> gflops=<graft>
#   bench/compare.sh matmul
set -euo pipefail
cd "$(dirname "$0")/.."
family=${1:?usage: bench/compare.sh <family>   (families: matmul)}
bash scripts/setup.sh --bench > /dev/null
cmake --preset release > /dev/null
cmake --build --preset release --target "graft_bench_$family" -j"$(nproc)" > /dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"build/release/bench/graft_bench_$family" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_format=json > "$out/graft.json"
/usr/bin/python3 "bench/peers/$family.py" > "$out/peer.jsonl" 2> "$out/peer.info"
echo "peer: $(cat "$out/peer.info")"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) threads; $(date -u +%F)"
/usr/bin/python3 - "$out/graft.json" "$out/peer.jsonl" <<'PY'
import json, sys
graft = {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("aggregate_name") == "median":
        name = b["run_name"].replace("/real_time", "")
        graft[name] = (b["real_time"], b.get("GFLOP/s", 0) / 1e9 if b.get("GFLOP/s", 0) > 1e6 else b.get("GFLOP/s", 0))
for line in open(sys.argv[2]):
    p = json.loads(line)
    if p["case"] not in graft:
        continue
    ms, gflops = graft[p["case"]]
    print(f"case={p['case']} graft_ms={ms:.3f} peer_ms={p['ms']:.3f} speedup={p['ms'] / ms:.2f} gflops={gflops:.1f}")
PY
