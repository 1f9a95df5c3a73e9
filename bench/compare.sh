#!/usr/bin/env bash
# Runs graft's Google Benchmark cases and the same cases in PyTorch (bench/peers/) in one go and
# prints one line per case:
#   case=<name> graft_ms=<median> peer_ms=<median> speedup=<peer/graft> gflops=<graft> peer_gflops=<peer>
# (for gru also `vendor:` lines, graft's kernel against the same op on oneDNN's lbr_gru)
# (gbps= / peer_gbps= instead for memory-bound families, whose cases count bytes moved), then, for
# matmul, whether graft reaches 80% of PyTorch's GFLOP/s at 1024³ and 2048³.
#   bench/compare.sh matmul | optim | gru | attention | bert
# The peer is Debian's python3-torch (1.13) under /usr/bin/python3 on OpenBLAS (libopenblas0-pthread);
# both are installed here if missing. GRAFT_PEER_PYTHON picks another interpreter, e.g. PyPI's
# torch 2.x: GRAFT_PEER_PYTHON=$(bench/peers/torch2.sh) bench/compare.sh gru Both sides use the same thread count: GRAFT_BENCH_THREADS,
# else `nproc`. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, where the environment sets them, are left
# as they are (the log says which OpenBLAS kernel ran).
set -euo pipefail
cd "$(dirname "$0")/.."
family=${1:?usage: bench/compare.sh <family>   (families: matmul, optim, gru, attention, bert)}
[[ -f "bench/peers/$family.py" ]] || { echo "compare: no peer script bench/peers/$family.py" >&2; exit 2; }

# Build and peer dependencies (Debian packages; installs nothing when all are present).
bash scripts/setup.sh --bench >&2
peer_python=${GRAFT_PEER_PYTHON:-/usr/bin/python3}
if [[ -z "${GRAFT_PEER_PYTHON:-}" ]] && ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "compare: installing the peer (python3-torch, libopenblas0-pthread)" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y python3-torch libopenblas0-pthread >&2
fi

threads=${GRAFT_BENCH_THREADS:-$(nproc)}
export GRAFT_BENCH_THREADS=$threads
# graft's CPU GEMM is oneDNN on OpenMP: give it the same count as the peer (unless already set).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$threads}
# OMP_WAIT_POLICY is left as the environment has it (unset: GNU OpenMP spins briefly, then sleeps),
# as users run. It matters for RNNs, which open parallel regions every time step: on a machine
# whose cores are busy with other work, set it to passive for both sides (docs/PERFORMANCE.md).

if [[ ! -f build/release/build.ninja && ! -f build/release/Makefile ]]; then
  cmake --preset release >&2
fi
cmake --build build/release --target "graft_bench_$family" -j"${GRAFT_BUILD_JOBS:-$(nproc)}" >&2

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, threads=$threads; $(date -u '+%F %T UTC')"
echo "env: OMP_NUM_THREADS=$OMP_NUM_THREADS OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"

"build/release/bench/graft_bench_$family" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_format=json > "$out/graft.json" 2> "$out/graft.err" || { cat "$out/graft.err" >&2; exit 1; }
"$peer_python" "bench/peers/$family.py" > "$out/peer.jsonl" 2> "$out/peer.info" || { cat "$out/peer.info" >&2; exit 1; }
sed 's/^/peer: /' "$out/peer.info"

/usr/bin/python3 - "$family" "$out/graft.json" "$out/peer.jsonl" <<'PY'
import json, sys

family, graft_path, peer_path = sys.argv[1:]
to_ms = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
doc = json.load(open(graft_path))
ctx = doc.get("context", {})
print(f"graft: {ctx.get('executable', '?')} ({ctx.get('num_cpus', '?')} CPUs, {ctx.get('mhz_per_cpu', '?')} MHz), "
      "Google Benchmark median of 5 repetitions")
graft = {}
for b in doc["benchmarks"]:
    if b.get("aggregate_name") != "median":
        continue
    name = b["run_name"].removesuffix("/real_time")
    rate = ("gflops", b["GFLOP/s"]) if "GFLOP/s" in b else ("gbps", b.get("GB/s", 0.0))
    graft[name] = (b["real_time"] * to_ms[b.get("time_unit", "ns")], rate)
ratios = {}
for line in open(peer_path):
    p = json.loads(line)
    if p["case"] not in graft:
        print(f"compare: peer case {p['case']} has no graft counterpart", file=sys.stderr)
        continue
    ms, (unit, rate) = graft[p["case"]]
    ratios[p["case"]] = rate / p[unit]
    print(f"case={p['case']} graft_ms={ms:.3f} peer_ms={p['ms']:.3f} speedup={p['ms'] / ms:.2f} "
          f"{unit}={rate:.1f} peer_{unit}={p[unit]:.1f}")
if family == "matmul":
    best = max([g for _, (_, g) in graft.values()] + [json.loads(l)["gflops"] for l in open(peer_path)])
    print(f"sgemm ceiling seen: {best:.1f} GFLOP/s (best of graft and peer, all cases)")
    for case in ("matmul_square/1024", "matmul_square/2048"):
        if case in ratios:
            r = ratios[case]
            print(f"target: {case} graft/peer GFLOP/s = {100 * r:.0f}% (>= 80%: {'met' if r >= 0.8 else 'NOT met'})")
if family == "gru":
    # The issue's targets: training T=50 N=32 H=512 >= 5x PyTorch and >= 60% of the measured sgemm
    # GFLOP/s (GRAFT_SGEMM_GFLOPS, from `bench/compare.sh matmul` on this machine); every training
    # case >= 3x; inference at N=1 >= 2x.
    import os
    peers = {json.loads(l)["case"]: json.loads(l)["ms"] for l in open(peer_path)}
    for case, (ms, (_, rate)) in sorted(graft.items()):
        if case not in peers:
            continue
        s = peers[case] / ms
        need = 5.0 if case == "gru_train_T50_N32_H512" else 3.0 if case.startswith("gru_train") else 2.0
        print(f"target: {case} speedup {s:.2f} (>= {need:g}x: {'met' if s >= need else 'NOT met'})")
    # graft's own kernel against the same node on oneDNN's lbr_gru (gru_onednn_<case>), same process.
    for case, (ms, (_, rate)) in sorted(graft.items()):
        vendor = "gru_onednn_" + case[len("gru_"):]
        if vendor in graft:
            vms, (_, vrate) = graft[vendor]
            print(f"vendor: case={case} graft_ms={ms:.3f} onednn_ms={vms:.3f} speedup={vms / ms:.2f} "
                  f"gflops={rate:.1f} onednn_gflops={vrate:.1f}")
    ceiling = float(os.environ.get("GRAFT_SGEMM_GFLOPS", "0") or 0)
    case = "gru_train_T50_N32_H512"
    if case in graft:
        rate = graft[case][1][1]
        if ceiling > 0:
            print(f"target: {case} {rate:.1f} GFLOP/s = {100 * rate / ceiling:.0f}% of sgemm {ceiling:.1f} "
                  f"(>= 60%: {'met' if rate >= 0.6 * ceiling else 'NOT met'})")
        else:
            print(f"target: {case} {rate:.1f} GFLOP/s; set GRAFT_SGEMM_GFLOPS (bench/compare.sh matmul) for the 60% check")
PY
