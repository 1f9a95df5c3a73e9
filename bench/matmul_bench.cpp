// f32 matmul through graft's op front (oneDNN underneath). FLOPs: 2*M*N*K per product.
// Cases mirror bench/peers/matmul.py one for one.
#include <benchmark/benchmark.h>

#include "autograd/ops.h"

namespace {

void run(benchmark::State& state, const graft::Shape& a_shape, const graft::Shape& b_shape, double flops) {
  graft::Generator g(1);
  graft::Tensor a = graft::randn(a_shape, {}, &g), b = graft::randn(b_shape, {}, &g);
  for (auto _ : state) {
    graft::Tensor c = graft::matmul(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void square(benchmark::State& state) {
  const int64_t n = state.range(0);
  run(state, {n, n}, {n, n}, 2.0 * n * n * n);
}
void batched(benchmark::State& state) { run(state, {32, 128, 64}, {32, 64, 128}, 2.0 * 32 * 128 * 128 * 64); }
void linear_shaped(benchmark::State& state) { run(state, {4096, 768}, {768, 768}, 2.0 * 4096 * 768 * 768); }

}  // namespace

BENCHMARK(square)->Name("matmul_square")->Arg(256)->Arg(512)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(batched)->Name("matmul_batched_32x128x64x128")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(linear_shaped)->Name("matmul_linear_4096x768x768")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
