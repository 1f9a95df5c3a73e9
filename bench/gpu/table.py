#!/usr/bin/env python3
"""Joins graft's and PyTorch's GPU benchmark lines (bench/gpu/gpu_bench.cpp, bench/peers/gpu.py)
into one Markdown table: case, both medians, speedup = torch_ms / graft_ms, and each side's
GFLOP/s (or GB/s for memory-bound cases). A case that failed on either side says so.
    table.py graft.jsonl torch.jsonl"""
import json
import sys


def load(path):
    rows = {}
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            row = json.loads(line)
            rows[row["case"]] = row
    return rows


def rate(row):
    if "error" in row:
        return "error"
    return f"{row['gflops']:.1f} GFLOP/s" if "gflops" in row else f"{row['gbps']:.1f} GB/s"


graft, peer = load(sys.argv[1]), load(sys.argv[2])
print("| case | graft ms | torch ms | speedup | graft | torch |")
print("|---|---|---|---|---|---|")
for name in list(graft) + [n for n in peer if n not in graft]:
    g, p = graft.get(name, {"error": "not run"}), peer.get(name, {"error": "not run"})
    g_ms = f"{g['ms']:.3f}" if "ms" in g else "—"
    p_ms = f"{p['ms']:.3f}" if "ms" in p else "—"
    speedup = f"{p['ms'] / g['ms']:.2f}x" if "ms" in g and "ms" in p else "—"
    print(f"| {name} | {g_ms} | {p_ms} | {speedup} | {rate(g)} | {rate(p)} |")
for side, rows in (("graft", graft), ("torch", peer)):
    for name, row in rows.items():
        if "error" in row:
            print(f"{side} {name}: {row['error']}")
