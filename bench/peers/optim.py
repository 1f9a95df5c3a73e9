#!/usr/bin/python3
"""PyTorch's optimizer steps and clip_grad_norm_ on the cases of bench/optim_bench.cpp (the
parameters of all-MiniLM-L6-v2: 22.7M f32 values in 101 tensors), one JSON line per case on stdout:
    {"case": ..., "ms": <median>, "gbps": <bytes the step must move / median>}
Which torch ran, and whether its optimizers took the foreach path, goes to stderr.
Threads: GRAFT_BENCH_THREADS, else the CPUs this process may run on.
"""
import os
import sys

import torch

from timing import timed

THREADS = int(os.environ.get("GRAFT_BENCH_THREADS", len(os.sched_getaffinity(0))))
torch.set_num_threads(THREADS)


def minilm_shapes():
    h, ffn = 384, 1536
    shapes = [(30522, h), (512, h), (2, h), (h,), (h,)]
    for _ in range(6):
        for _ in range(4):
            shapes += [(h, h), (h,)]
        shapes += [(h,), (h,), (ffn, h), (ffn,), (h, ffn), (h,), (h,), (h,)]
    return shapes + [(h, h), (h,)]


def make_parameters():
    g = torch.Generator().manual_seed(1)
    params = []
    for shape in minilm_shapes():
        p = torch.nn.Parameter(torch.randn(*shape, generator=g))
        p.grad = torch.randn(*shape, generator=g) * 1e-3
        params.append(p)
    return params


def bench(name, bytes_per_value, make_step):
    params = make_parameters()
    total = sum(p.numel() for p in params)
    timed(name, make_step(params), 0, min_time=2.0, min_runs=10, nbytes=bytes_per_value * total)  # warm-up allocates state
    if not all(torch.isfinite(p).all() for p in params):
        sys.exit(f"{name}: a parameter became non-finite")


def clip_step(params):
    state = {"target": float(torch.nn.utils.clip_grad_norm_(params, 1e300))}

    def step():
        state["target"] *= 0.999
        torch.nn.utils.clip_grad_norm_(params, state["target"])

    return step


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; optimizers with their default "
          "foreach setting (the single-tensor loop on CPU in torch 1.13)", file=sys.stderr)
    with torch.no_grad():
        bench("adamw_step_minilm", 28, lambda ps: torch.optim.AdamW(ps, lr=1e-4).step)
        bench("sgd_momentum_step_minilm", 20, lambda ps: torch.optim.SGD(ps, lr=1e-4, momentum=0.9).step)
        bench("clip_grad_norm_minilm", 12, clip_step)


if __name__ == "__main__":
    main()
