"""The timing loop every peer script shares: a warm-up call, then repeated timed calls until both
min_time seconds and min_runs runs are reached; prints the case's JSON line (median ms, and GFLOP/s
at the median, or GB/s when the case counts bytes instead) on stdout, the format bench/compare.sh
and bench/gpu/run_all.sh read. For GPU cases, `step` must end with torch.cuda.synchronize()."""
import json
import statistics
import time


def timed(name, step, flops, min_time=1.0, min_runs=5, nbytes=None):
    step()  # warm-up
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_time or len(times) < min_runs:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1e3
    rate = {"gbps": nbytes / (ms * 1e-3) * 1e-9} if nbytes else {"gflops": flops / (ms * 1e-3) * 1e-9}
    print(json.dumps({"case": name, "ms": ms, **rate, "runs": len(times)}), flush=True)
