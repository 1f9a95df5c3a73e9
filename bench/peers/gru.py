#!/usr/bin/python3
"""PyTorch's CPU torch.nn.GRU on the cases of bench/gru_bench.cpp, one JSON line per case on stdout:
    {"case": ..., "ms": <median>, "gflops": <at the median>}
Which torch ran, and its threads, go to stderr.

Shape letters: T steps, N batch, I input, H hidden, L layers, D directions.
train_*: forward + backward as a user trains (parameters require grad, the input does not;
loss = output.sum(), then backward); infer_*: forward under torch.no_grad(). FLOPs as graft counts
them: forward 2*T*N*3H*(I_l + H) per layer and direction, training 3x forward.
Times are the median of repeated runs after a warm-up, on random data made outside the timed
region. Threads: GRAFT_BENCH_THREADS, else the CPUs this process may run on (as matmul.py).
"""
import json
import os
import sys

THREADS = int(os.environ.get("GRAFT_BENCH_THREADS", len(os.sched_getaffinity(0))))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))  # before torch loads OpenBLAS (see matmul.py)

import torch  # noqa: E402

from timing import timed  # noqa: E402


def flops(steps, I, H, L, D, training):
    """steps: T * N, or the sum of the lengths (only valid steps count)."""
    f = sum(D * 2.0 * steps * 3 * H * ((I if l == 0 else D * H) + H) for l in range(L))
    return 3 * f if training else f


def length_of(T, N, i):
    """Sequence i's length in a varlen case: the formula of bench/gru_bench.cpp."""
    longest, shortest = T, T // 5
    j = (i * 7) % N
    return longest - j * (longest - shortest) // (N - 1)


def bench(name, T, N, I, H, L=1, bidirectional=False, training=True, varlen=False, min_time=1.0, min_runs=5):
    torch.manual_seed(1)
    gru = torch.nn.GRU(I, H, num_layers=L, bidirectional=bidirectional)
    x = torch.randn(T, N, I)
    gru.train(training)
    lengths = torch.tensor([length_of(T, N, i) for i in range(N)]) if varlen else None

    def forward():
        if lengths is None:
            return gru(x)[0]
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        return torch.nn.utils.rnn.pad_packed_sequence(gru(packed)[0], total_length=T)[0]

    def step():
        if training:
            forward().sum().backward()
        else:
            with torch.no_grad():
                forward()

    steps = int(lengths.sum()) if varlen else T * N
    timed(name, step, flops(steps, I, H, L, 2 if bidirectional else 1, training), min_time, min_runs)


def main():
    torch.set_num_threads(THREADS)
    print(json.dumps({"torch": torch.__version__, "python": sys.executable, "threads": torch.get_num_threads(),
                      "mkldnn": torch.backends.mkldnn.is_available()}), file=sys.stderr)
    bench("gru_train_T50_N32_H512", 50, 32, 512, 512)
    bench("gru_train_T25_N64_H512", 25, 64, 512, 512)
    bench("gru_train_T100_N16_H256", 100, 16, 256, 256)
    bench("gru_train_L2_bi_T50_N32_H256", 50, 32, 256, 256, L=2, bidirectional=True)
    bench("gru_infer_T50_N1_H256", 50, 1, 256, 256, training=False)
    bench("gru_train_T187_N32_H1536", 187, 32, 1536, 1536, min_time=0.0, min_runs=3)  # seconds per run
    bench("gru_train_varlen_bi_T50_N32_H512", 50, 32, 512, 512, bidirectional=True, varlen=True)


if __name__ == "__main__":
    main()
