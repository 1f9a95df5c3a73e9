// f32 matmul through graft's op front (oneDNN underneath). FLOPs: 2*M*N*K per product.
// Cases mirror bench/peers/matmul.py one for one; bench/compare.sh matmul runs both.
//
// Inputs are real random data (graft::randn) made before the timed loop, so only the product
// (including the allocation of its result, as in torch.matmul) is timed.
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <utility>

#include "autograd/ops.h"
#include "tensor/factory.h"

namespace {

// A fast wrong answer is no result: check a few entries of c against a double-precision dot product.
bool spot_check(const graft::Tensor& a, const graft::Tensor& b, const graft::Tensor& c, const graft::Shape& a_shape,
                const graft::Shape& b_shape, std::string* why) {
  const int64_t r = static_cast<int64_t>(a_shape.size());
  const int64_t M = a_shape[r - 2], K = a_shape[r - 1], N = b_shape[r - 1];
  const int64_t batch = r == 3 ? a_shape[0] : 1;
  graft::Tensor ac = a.contiguous(), bc = b.contiguous(), cc = c.contiguous();
  const float *pa = ac.data_ptr<float>(), *pb = bc.data_ptr<float>(), *pc = cc.data_ptr<float>();
  for (int64_t t : {int64_t{0}, batch - 1})
    for (auto [i, j] : {std::pair<int64_t, int64_t>{0, 0}, {M - 1, N - 1}, {M / 2, N / 3}}) {
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double x = double(pa[t * M * K + i * K + k]) * double(pb[t * K * N + k * N + j]);
        ref += x;
        mag += std::fabs(x);
      }
      const double got = pc[t * M * N + i * N + j];
      if (!(std::fabs(got - ref) <= 1e-5 * mag + 1e-6)) {
        *why = "wrong result at [" + std::to_string(t) + "," + std::to_string(i) + "," + std::to_string(j) +
               "]: " + std::to_string(got) + " vs " + std::to_string(ref);
        return false;
      }
    }
  return true;
}

void run(benchmark::State& state, const graft::Shape& a_shape, const graft::Shape& b_shape, double flops) {
  graft::Generator g(1);
  graft::Tensor a = graft::randn(a_shape, {}, &g);
  graft::Tensor b = graft::randn(b_shape, {}, &g);
  {  // warm-up: oneDNN builds (and caches) its primitive on the first call of a shape
    graft::Tensor c = graft::matmul(a, b);
    std::string why;
    if (!spot_check(a, b, c, a_shape, b_shape, &why)) {
      state.SkipWithError(why.c_str());
      return;
    }
  }
  for (auto _ : state) {
    graft::Tensor c = graft::matmul(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
    benchmark::ClobberMemory();
  }
  // kIsRate: divided by the elapsed time; the value is the work of all iterations, so the
  // counter reads GFLOP/s directly (in units of 1e9, not as "G/s" with raw FLOPs).
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
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
