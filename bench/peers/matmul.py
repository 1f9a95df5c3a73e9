#!/usr/bin/python3
"""PyTorch's CPU matmul on the cases of bench/matmul_bench.cpp, one JSON line per case.

Run under Debian's /usr/bin/python3 with python3-torch (OpenBLAS underneath). Times are the
median of repeated runs after a warm-up, on real random data.
"""
import json
import os
import statistics
import sys
import time

import torch


def bench(name, a_shape, b_shape, flops, min_time=1.0):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(*a_shape, generator=g)
    b = torch.randn(*b_shape, generator=g)
    for _ in range(3):
        torch.matmul(a, b)
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_time or len(times) < 5:
        t0 = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1e3
    print(json.dumps({"case": name, "ms": ms, "gflops": flops / (ms * 1e-3) * 1e-9}), flush=True)


def main():
    torch.set_num_threads(int(os.environ.get("GRAFT_BENCH_THREADS", os.cpu_count())))
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "blas": [l.strip() for l in torch.__config__.show().splitlines() if "BLAS" in l][:2]}),
          file=sys.stderr)
    for n in (256, 512, 1024, 2048):
        bench(f"matmul_square/{n}", (n, n), (n, n), 2.0 * n ** 3)
    bench("matmul_batched_32x128x64x128", (32, 128, 64), (32, 64, 128), 2.0 * 32 * 128 * 128 * 64)
    bench("matmul_linear_4096x768x768", (4096, 768), (768, 768), 2.0 * 4096 * 768 * 768)


if __name__ == "__main__":
    main()
