#!/usr/bin/python3
"""PyTorch's CPU attention on the cases of bench/attention_bench.cpp, one JSON line per case on stdout:
    {"case": ..., "ms": <median>, "gflops": <at the median>}
Which torch ran, which attention it used, and its threads go to stderr.

Shape letters: B batch, h heads, S sequence length (queries = keys), d head dim.
attn_fb_*: forward + backward, q/k/v [B, h, S, d] require grad, loss = sum(out * dO) with a fixed
random dO. The attention is F.scaled_dot_product_attention where torch has it (2.x), else eager:
softmax(q k^T * d^-1/2) v as matmul, softmax, matmul (torch 1.13). FLOPs as graft counts them:
forward 4*B*h*S^2*d, backward 2.5x forward, so 3.5x forward in all.
Times are the median of repeated runs after a warm-up, on random data made outside the timed
region. Threads: GRAFT_BENCH_THREADS, else the CPUs this process may run on (as matmul.py).
"""
import json
import math
import os
import sys

THREADS = int(os.environ.get("GRAFT_BENCH_THREADS", len(os.sched_getaffinity(0))))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))  # before torch loads OpenBLAS (see matmul.py)

import torch  # noqa: E402

from timing import timed  # noqa: E402
import torch.nn.functional as F  # noqa: E402

FUSED = hasattr(F, "scaled_dot_product_attention")


def attention(q, k, v):
    if FUSED:
        return F.scaled_dot_product_attention(q, k, v)
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def bench(name, B, h, S, d, min_time=1.0, min_runs=5):
    torch.manual_seed(1)
    q, k, v = (torch.randn(B, h, S, d, requires_grad=True) for _ in range(3))
    grad_out = torch.randn(B, h, S, d)

    def step():
        for t in (q, k, v):
            t.grad = None
        (attention(q, k, v) * grad_out).sum().backward()

    timed(name, step, 3.5 * 4.0 * B * h * S * S * d, min_time, min_runs)


def main():
    torch.set_num_threads(THREADS)
    print(json.dumps({"torch": torch.__version__, "python": sys.executable, "threads": torch.get_num_threads(),
                      "attention": "F.scaled_dot_product_attention" if FUSED else "eager matmul-softmax-matmul"}),
          file=sys.stderr)
    bench("attn_fb/B8_h12_S128_d32", 8, 12, 128, 32)
    bench("attn_fb/B4_h8_S512_d64", 4, 8, 512, 64)
    bench("attn_fb/B1_h12_S2048_d64", 1, 12, 2048, 64)


if __name__ == "__main__":
    main()
