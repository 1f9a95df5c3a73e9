#!/usr/bin/env python3
"""PyTorch on the GPU on the cases of bench/gpu/gpu_bench.cpp, one for one, one JSON line per case
on stdout ({"case": ..., "ms": <median>, "gflops" or "gbps": <at the median>}); which torch and
which device go to stderr. bench/gpu/run_all.sh runs both sides on the same GPU.

Peers are PyTorch's best stock path for each case: cuBLAS matmul (TF32 only in the tf32 case),
F.scaled_dot_product_attention (its fastest backend: flash / memory-efficient / cuDNN), nn.GRU
(cuDNN), F.layer_norm, softmax, F.cross_entropy, torch.optim.AdamW(fused=True) where this torch
has it, and BERT with MiniLM's shape (bench/peers/bert.py's model) with torch.autocast for bf16.
    python3 bench/peers/gpu.py [--device cuda|cpu] [--quick] [--filter SUBSTRING]
"""
import argparse
import json
import os
import sys

import torch
from torch import nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import timed  # noqa: E402

args = argparse.ArgumentParser()
args.add_argument("--device", default="cuda")
args.add_argument("--quick", action="store_true")
args.add_argument("--filter", default="")
args = args.parse_args()
dev = torch.device(args.device)
quick = args.quick


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def case(name, step, flops=0, nbytes=None):
    if args.filter and args.filter not in name:
        return

    def run():
        step()
        sync()

    try:
        timed(name, run, flops, nbytes=nbytes)
    except Exception as e:  # one failing case must not hide the others
        print(json.dumps({"case": name, "error": f"{type(e).__name__}: {e}"}), flush=True)


def randn(*shape, dtype=torch.float32, grad=False, seed=1):
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(*shape, generator=g).to(dtype).to(dev)
    return t.requires_grad_(grad)


def gemm_cases():
    n = 128 if quick else 4096
    with torch.no_grad():
        for tag, dtype, tf32 in (("f32", torch.float32, False), ("tf32", torch.float32, True), ("bf16", torch.bfloat16, False)):
            if dev.type == "cpu" and dtype != torch.float32:
                continue
            a, b = randn(n, n, dtype=dtype, seed=1), randn(n, n, dtype=dtype, seed=2)
            torch.backends.cuda.matmul.allow_tf32 = tf32
            case(f"matmul_{tag}/{n}", lambda: torch.matmul(a, b), 2.0 * n ** 3)
            torch.backends.cuda.matmul.allow_tf32 = False
        M, K, N = (256, 64, 128) if quick else (8192, 1024, 4096)
        dtype = torch.float32 if dev.type == "cpu" else torch.bfloat16
        tag = "f32" if dtype == torch.float32 else "bf16"
        x, w, bias = randn(M, K, dtype=dtype, seed=3), randn(N, K, dtype=dtype, seed=4), randn(N, dtype=dtype, seed=5)
        case(f"linear_bias_{tag}/M{M}_K{K}_N{N}", lambda: F.linear(x, w, bias), 2.0 * M * N * K)


def attention_case(tag, dtype, B, H, S, D, backward):
    fwd = 4.0 * B * H * S * S * D
    name = f"attention_{'fwdbwd' if backward else 'fwd'}_{tag}/B{B}_H{H}_S{S}_D{D}"
    q, k, v = (randn(B, H, S, D, dtype=dtype, grad=backward, seed=s) for s in (6, 7, 8))
    dout = randn(B, H, S, D, dtype=dtype, seed=9)
    if not backward:
        with torch.no_grad():
            case(name, lambda: F.scaled_dot_product_attention(q, k, v), fwd)
        return

    def step():
        F.scaled_dot_product_attention(q, k, v).backward(dout)
        q.grad = k.grad = v.grad = None

    case(name, step, 3.5 * fwd)


def attention_cases():
    if quick:
        attention_case("f32", torch.float32, 2, 2, 64, 32, False)
        attention_case("f32", torch.float32, 2, 2, 64, 32, True)
        return
    attention_case("bf16", torch.bfloat16, 8, 16, 2048, 128, False)
    attention_case("bf16", torch.bfloat16, 8, 16, 2048, 128, True)
    attention_case("f32", torch.float32, 32, 12, 128, 32, True)


def memory_bound_cases():
    R, C = (256, 128) if quick else (16384, 1024)
    shape = f"/R{R}_C{C}"
    tensor_bytes = 4.0 * R * C
    x, dy = randn(R, C, grad=True, seed=10), randn(R, C, seed=11)
    w, b = randn(C, grad=True, seed=12), randn(C, grad=True, seed=13)

    def layer_norm_step():
        F.layer_norm(x, (C,), w, b, 1e-12).backward(dy)
        x.grad = w.grad = b.grad = None

    case("layer_norm_fwdbwd_f32" + shape, layer_norm_step, nbytes=5 * tensor_bytes)
    with torch.no_grad():
        xs = randn(R, C, seed=14)
        case("softmax_f32" + shape, lambda: torch.softmax(xs, -1), nbytes=2 * tensor_bytes)
    N, V = (64, 1000) if quick else (4096, 30522)
    logits = randn(N, V, grad=True, seed=15)
    labels = torch.randint(0, V, (N,)).to(dev)

    def ce_step():
        F.cross_entropy(logits, labels).backward()
        logits.grad = None

    case(f"cross_entropy_fwdbwd_f32/N{N}_C{V}", ce_step, nbytes=3 * 4.0 * N * V)
    tensors, rows, cols = (4, 384, 64) if quick else (50, 384, 1536)
    params = []
    for i in range(tensors):
        p = nn.Parameter(randn(rows, cols, seed=100 + i))
        p.grad = randn(rows, cols, seed=200 + i)
        params.append(p)
    try:
        optimizer = torch.optim.AdamW(params, fused=dev.type == "cuda")
    except (TypeError, RuntimeError):
        optimizer = torch.optim.AdamW(params)
    numel = tensors * rows * cols
    case(f"adamw_f32/{numel}", optimizer.step, nbytes=7 * 4.0 * numel)


def gru_case(T, N, H):
    gru = nn.GRU(H, H).to(dev)
    x = randn(T, N, H, seed=16)

    def step():
        y, _ = gru(x)
        y.sum().backward()
        gru.zero_grad(set_to_none=True)

    case(f"gru_train_f32/T{T}_N{N}_H{H}", step, 3.0 * 2.0 * T * N * 3 * H * (2 * H))


def gru_cases():
    if quick:
        return gru_case(5, 4, 32)
    gru_case(50, 32, 512)
    gru_case(187, 32, 1536)


def bert_cases():
    import bert  # bench/peers/bert.py: MiniLM's shape, transformers' BERT or the same math in plain torch

    B, S = (2, 16) if quick else (32, 128)
    bert.L = 1 if quick else 6
    _, _, make_classifier = bert.make_models()
    for tag in ("f32", "bf16"):
        torch.manual_seed(1)
        model = make_classifier().to(dev).train()
        optimizer = torch.optim.AdamW(model.parameters())
        ids, mask = torch.randint(0, bert.VOCAB, (B, S)).to(dev), torch.ones(B, S, dtype=torch.long).to(dev)
        labels = torch.randint(0, bert.LABELS, (B,)).to(dev)

        def step():
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=tag == "bf16"):
                loss = F.cross_entropy(model(ids, mask), labels)
            loss.backward()
            optimizer.step()

        case(f"bert_train_{tag}/B{B}_S{S}", step, bert.flops(B, S, True))


def main():
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"torch {torch.__version__} on {name}", file=sys.stderr)
    gemm_cases()
    attention_cases()
    memory_bound_cases()
    gru_cases()
    bert_cases()


if __name__ == "__main__":
    main()
