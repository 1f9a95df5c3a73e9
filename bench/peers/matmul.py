#!/usr/bin/python3
"""PyTorch's CPU matmul on the cases of bench/matmul_bench.cpp, one JSON line per case on stdout:
    {"case": ..., "ms": <median>, "gflops": <at the median>}
Which torch and which BLAS it ran on goes to stderr.

Run under Debian's /usr/bin/python3 with python3-torch and libopenblas0-pthread (torch's sgemm
goes to libblas.so.3, which the alternatives system points at OpenBLAS). Times are the median of
repeated runs after a warm-up, on real random data made outside the timed region.
Threads: GRAFT_BENCH_THREADS, else the CPUs this process may run on (what `nproc` prints, and
what graft's OpenMP/oneDNN uses by default).
"""
import ctypes
import ctypes.util
import json
import os
import statistics
import sys
import time

THREADS = int(os.environ.get("GRAFT_BENCH_THREADS", len(os.sched_getaffinity(0))))
# torch.set_num_threads does not reach a pthread OpenBLAS under BLAS_INFO=generic: give it the
# same count before torch loads it. An OPENBLAS_NUM_THREADS or OPENBLAS_CORETYPE already set in
# the environment is left as it is.
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))

import torch  # noqa: E402


def blas_info():
    """What BLAS the process actually loaded: OpenBLAS reports its version, kernel and threads."""
    info = {}
    for name in ("openblas", "openblas64_"):
        path = ctypes.util.find_library(name)
        if not path:
            continue
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_config.restype = ctypes.c_char_p
            lib.openblas_get_corename.restype = ctypes.c_char_p
            info = {"openblas": lib.openblas_get_config().decode(), "kernel": lib.openblas_get_corename().decode(),
                    "openblas_threads": lib.openblas_get_num_threads()}
            break
        except (OSError, AttributeError):
            continue
    try:
        info["libblas.so.3"] = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
    except OSError:
        pass
    return info


def bench(name, a_shape, b_shape, flops, min_time=1.0, min_runs=5):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(*a_shape, generator=g, dtype=torch.float32)
    b = torch.randn(*b_shape, generator=g, dtype=torch.float32)
    for _ in range(3):  # warm-up
        torch.matmul(a, b)
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_time or len(times) < min_runs:
        t0 = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1e3
    print(json.dumps({"case": name, "ms": ms, "gflops": flops / (ms * 1e-3) * 1e-9}), flush=True)


def main():
    torch.set_num_threads(THREADS)
    config = torch.__config__.show().splitlines()
    print(json.dumps({"torch": torch.__version__, "python": sys.executable, "threads": torch.get_num_threads(),
                      "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"), **blas_info()}),
          file=sys.stderr)
    for line in config[:6]:
        print("torch config: " + line.strip(), file=sys.stderr)
    for line in config:
        if "BLAS_INFO" in line:
            print("torch config: " + ", ".join(f for f in line.split(", ") if "BLAS" in f or "LAPACK" in f),
                  file=sys.stderr)
    with torch.no_grad():
        for n in (256, 512, 1024, 2048):
            bench(f"matmul_square/{n}", (n, n), (n, n), 2.0 * n ** 3)
        bench("matmul_batched_32x128x64x128", (32, 128, 64), (32, 64, 128), 2.0 * 32 * 128 * 128 * 64)
        bench("matmul_linear_4096x768x768", (4096, 768), (768, 768), 2.0 * 4096 * 768 * 768)


if __name__ == "__main__":
    main()
