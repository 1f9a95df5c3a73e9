// The GRU through graft's op front, fused path: graft's own CPU kernel (gru_<case>) and the same
// node on oneDNN's lbr_gru (gru_onednn_<case>, GruImplementation::fused_onednn), the vendor
// baseline. The gru_<case> names mirror bench/peers/gru.py one for one; bench/compare.sh gru runs
// both and prints graft against PyTorch and against oneDNN.
// Shape letters: T steps, N batch, I input, H hidden, L layers, D directions.
//
// train_*: forward + backward as a user trains (params require grad, the input does not; loss =
// output.sum()); infer_*: forward under NoGradGuard. FLOPs, the standard count: forward
// 2*T*N*3H*(I_l + H) per layer and direction; training = 3x forward (backward ~2x).
// Inputs and parameters are real random data made before the timed loop; a warm-up iteration,
// checked against the reference composite (where that is affordable), precedes timing.
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/gru.h"
#include "autograd/ops.h"
#include "kernels/gru/gru.h"
#include "tensor/factory.h"

namespace {

struct Case {
  int64_t T, N, I, H, L;
  bool bidirectional, training;
  bool varlen = false;  // lengths spread evenly from T down to T/5, unsorted (enforce_sorted=false)
};

// Sequence i's length in a varlen case; bench/peers/gru.py uses the same formula.
int64_t length_of(const Case& c, int64_t i) {
  const int64_t longest = c.T, shortest = c.T / 5;
  const int64_t j = (i * 7) % c.N;  // a fixed shuffle (7 is coprime with the batch sizes used)
  return longest - j * (longest - shortest) / (c.N - 1);
}

// Only the valid steps count: sum of lengths instead of T * N.
double flops(const Case& c) {
  const int64_t D = c.bidirectional ? 2 : 1;
  double steps = double(c.T) * c.N;
  if (c.varlen) {
    steps = 0;
    for (int64_t i = 0; i < c.N; ++i) steps += length_of(c, i);
  }
  double f = 0;
  for (int64_t l = 0; l < c.L; ++l) f += D * 2.0 * steps * 3.0 * c.H * ((l == 0 ? c.I : D * c.H) + c.H);
  return c.training ? 3.0 * f : f;
}

double max_rel_error(const graft::Tensor& got, const graft::Tensor& want) {
  const auto a = got.to_vector<float>(), b = want.to_vector<float>();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::fmax(diff, std::fabs(double(a[i]) - b[i]));
    scale = std::fmax(scale, std::fabs(double(b[i])));
  }
  return scale > 0 ? diff / scale : 1.0;  // all zeros is no result either
}

void run(benchmark::State& state, const Case& c, graft::GruImplementation implementation) {
  using namespace graft;
  Generator g(1);
  const int64_t D = c.bidirectional ? 2 : 1;
  GruOptions options;
  options.num_layers = c.L;
  options.bidirectional = c.bidirectional;
  options.training = c.training;
  options.enforce_sorted = false;
  Tensor lengths;
  if (c.varlen) {
    std::vector<int64_t> l(c.N);
    for (int64_t i = 0; i < c.N; ++i) l[i] = length_of(c, i);
    lengths = from_vector<int64_t>(l, {c.N});
  }
  const Tensor input = randn({c.T, c.N, c.I}, {}, &g);
  std::vector<Tensor> params;
  const double bound = 1.0 / std::sqrt(double(c.H));
  for (int64_t l = 0; l < c.L; ++l)
    for (int64_t d = 0; d < D; ++d)
      for (const Shape& s : {Shape{3 * c.H, l == 0 ? c.I : D * c.H}, Shape{3 * c.H, c.H}, Shape{3 * c.H}, Shape{3 * c.H}})
        params.push_back(uniform(s, -bound, bound, {}, &g).requires_grad_(c.training));
  auto step = [&] {
    if (c.training) {
      GruResult r = gru(input, Tensor(), params, options, lengths, implementation);
      sum(r.output).backward();
      return r.output;
    }
    NoGradGuard no_grad;
    return gru(input, Tensor(), params, options, lengths, implementation).output;
  };
  {  // warm-up (builds and caches the primitives), checked: a fast wrong answer is no result
    Tensor out = step();
    if (flops(c) < 5e10) {
      NoGradGuard no_grad;
      Tensor want = gru(input, Tensor(), params, options, lengths, GruImplementation::reference).output;
      const double err = max_rel_error(out, want);
      if (!(err < 1e-4)) {
        state.SkipWithError(("fused output differs from the reference: " + std::to_string(err)).c_str());
        return;
      }
    }
  }
  for (auto _ : state) {
    Tensor out = step();
    benchmark::DoNotOptimize(out.data_ptr());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops(c) * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void reg(const std::string& name, const Case& c) {
  using graft::GruImplementation;
  for (const GruImplementation implementation : {GruImplementation::fused, GruImplementation::fused_onednn}) {
    const bool onednn = implementation == GruImplementation::fused_onednn;
    if (onednn && !graft::kernels::gru_onednn_available()) continue;
    const std::string full = onednn ? "gru_onednn_" + name.substr(4) : name;
    benchmark::RegisterBenchmark(full.c_str(), [c, implementation](benchmark::State& s) { run(s, c, implementation); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  reg("gru_train_T50_N32_H512", {50, 32, 512, 512, 1, false, true});
  reg("gru_train_T25_N64_H512", {25, 64, 512, 512, 1, false, true});
  reg("gru_train_T100_N16_H256", {100, 16, 256, 256, 1, false, true});
  reg("gru_train_L2_bi_T50_N32_H256", {50, 32, 256, 256, 2, true, true});
  reg("gru_infer_T50_N1_H256", {50, 1, 256, 256, 1, false, false});
  reg("gru_train_T187_N32_H1536", {187, 32, 1536, 1536, 1, false, true});
  reg("gru_train_varlen_bi_T50_N32_H512", {50, 32, 512, 512, 1, true, true, /*varlen=*/true});
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
