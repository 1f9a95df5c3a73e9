// Scaled dot-product attention through graft's op front, fused path (kernels/attention/cpu.cpp).
// Cases mirror bench/peers/attention.py one for one; bench/compare.sh attention runs both.
// Shape letters: B batch, h heads, S sequence length (queries = keys), d head dim.
//
// attn_fb/*: forward + backward, q/k/v [B, h, S, d] require grad, loss = sum(out * dO) with a
// fixed random dO. FLOPs, the standard count: forward 4*B*h*S^2*d, backward 2.5x forward, so
// 3.5x forward in all. Inputs are real random data made before the timed loop; a warm-up
// iteration, checked against the reference composite, precedes timing.
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>

#include "autograd/attention.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tensor/factory.h"

namespace {

struct Case {
  int64_t B, h, S, d;
};

double flops(const Case& c) { return 3.5 * 4.0 * c.B * c.h * double(c.S) * c.S * c.d; }

double max_rel_error(const graft::Tensor& got, const graft::Tensor& want) {
  const auto a = got.to_vector<float>(), b = want.to_vector<float>();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::fmax(diff, std::fabs(double(a[i]) - b[i]));
    scale = std::fmax(scale, std::fabs(double(b[i])));
  }
  return scale > 0 ? diff / scale : 1.0;  // all zeros is no result either
}

void run(benchmark::State& state, const Case& c) {
  using namespace graft;
  Generator g(1);
  const Shape shape{c.B, c.h, c.S, c.d};
  const Tensor q = randn(shape, {}, &g).requires_grad_(), k = randn(shape, {}, &g).requires_grad_(),
               v = randn(shape, {}, &g).requires_grad_();
  const Tensor grad_out = randn(shape, {}, &g);
  auto step = [&] {
    for (const Tensor* t : {&q, &k, &v}) t->set_grad(Tensor());
    Tensor out = scaled_dot_product_attention(q, k, v, {}, AttentionImplementation::fused);
    sum(out * grad_out).backward();
    return q.grad();
  };
  {  // warm-up, checked: a fast wrong answer is no result
    const Tensor dq = step();
    NoGradGuard no_grad;
    const Tensor out = scaled_dot_product_attention(q, k, v, {}, AttentionImplementation::fused);
    const Tensor want = scaled_dot_product_attention(q, k, v, {}, AttentionImplementation::reference);
    const double err = max_rel_error(out, want);
    if (!(err < 1e-4) || !dq.defined()) {
      state.SkipWithError(("fused output differs from the reference: " + std::to_string(err)).c_str());
      return;
    }
  }
  for (auto _ : state) {
    Tensor dq = step();
    benchmark::DoNotOptimize(dq.data_ptr());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops(c) * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void reg(const std::string& name, const Case& c) {
  benchmark::RegisterBenchmark(name.c_str(), [c](benchmark::State& s) { run(s, c); })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  reg("attn_fb/B8_h12_S128_d32", {8, 12, 128, 32});
  reg("attn_fb/B4_h8_S512_d64", {4, 8, 512, 64});
  reg("attn_fb/B1_h12_S2048_d64", {1, 12, 2048, 64});
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
