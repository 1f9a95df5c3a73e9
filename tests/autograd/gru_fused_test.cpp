// The fused GRU node, on each CPU kernel (graft's own: GruImplementation::fused; oneDNN's lbr_gru:
// fused_onednn), against (1) a plain loop over the f64 reference kernel
// (kernels/gru/reference.cpp), layer by layer, and (2) the reference composite of autograd ops,
// gru(..., GruImplementation::reference): outputs, h_n and every gradient (input, h0, each param),
// for 1-3 layers, uni/bidirectional, batch_first both ways, with and without h0 and bias.
// Shape letters: T steps, N batch, I input, H hidden, L layers, D directions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/gru.h"
#include "autograd/ops.h"
#include "kernels/gru/gru.h"
#include "tensor/factory.h"

using namespace graft;

namespace {

struct Config {
  int64_t T, N, I, H, L;
  bool bidirectional, batch_first, h0, bias;
  std::string str() const {
    return "T=" + std::to_string(T) + " N=" + std::to_string(N) + " I=" + std::to_string(I) + " H=" +
           std::to_string(H) + " L=" + std::to_string(L) + " bi=" + std::to_string(bidirectional) +
           " batch_first=" + std::to_string(batch_first) + " h0=" + std::to_string(h0) + " bias=" + std::to_string(bias);
  }
};

const std::vector<Config> kConfigs{
    {5, 3, 4, 6, 1, false, false, true, true},  {7, 2, 5, 9, 2, true, false, true, true},
    {6, 4, 3, 5, 3, false, true, false, true},  {9, 3, 8, 7, 2, true, true, true, false},
    {4, 1, 11, 13, 1, true, false, false, true}, {12, 5, 16, 16, 2, false, false, true, true}};

double max_rel_error(const Tensor& got, const Tensor& want) {
  const auto a = got.to_vector<double>(), b = want.to_vector<double>();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return diff / std::max(scale, 1e-30);
}

// Inputs of one problem, f32 leaves that require grad.
struct Problem {
  Config c;
  GruOptions options;
  Tensor input, h0, gy, gh;  // gy, gh: fixed projections of output / h_n for the loss
  std::vector<Tensor> params;
};

Problem make(const Config& c, Generator& g) {
  Problem p;
  p.c = c;
  p.options.num_layers = c.L;
  p.options.bidirectional = c.bidirectional;
  p.options.batch_first = c.batch_first;
  p.options.bias = c.bias;
  const int64_t D = c.bidirectional ? 2 : 1;
  p.input = randn(c.batch_first ? Shape{c.N, c.T, c.I} : Shape{c.T, c.N, c.I}, {}, &g).requires_grad_();
  if (c.h0) p.h0 = randn({c.L * D, c.N, c.H}, {}, &g).requires_grad_();
  const double bound = 1.0 / std::sqrt(double(c.H));
  for (int64_t l = 0; l < c.L; ++l)
    for (int64_t d = 0; d < D; ++d) {
      const int64_t in = l == 0 ? c.I : D * c.H;
      p.params.push_back(uniform({3 * c.H, in}, -bound, bound, {}, &g).requires_grad_());
      p.params.push_back(uniform({3 * c.H, c.H}, -bound, bound, {}, &g).requires_grad_());
      if (c.bias) {
        p.params.push_back(uniform({3 * c.H}, -bound, bound, {}, &g).requires_grad_());
        p.params.push_back(uniform({3 * c.H}, -bound, bound, {}, &g).requires_grad_());
      }
    }
  p.gy = randn(c.batch_first ? Shape{c.N, c.T, D * c.H} : Shape{c.T, c.N, D * c.H}, {}, &g);
  p.gh = randn({c.L * D, c.N, c.H}, {}, &g);
  return p;
}

// One run on fresh leaves holding the problem's values: output, h_n, then the gradient of
// loss = sum(output * gy) + sum(h_n * gh) for input, h0 (when given) and each param.
struct GruRun {
  Tensor output, h_n;
  std::vector<Tensor> grads;
  std::vector<std::string> names;
};

GruRun run(const Problem& p, GruImplementation impl, Generator* dropout_generator = nullptr,
           const Tensor& lengths = Tensor()) {
  auto leaf = [](const Tensor& t) { return t.defined() ? t.detach().clone().requires_grad_() : Tensor(); };
  Tensor input = leaf(p.input), h0 = leaf(p.h0);
  std::vector<Tensor> params;
  for (const Tensor& q : p.params) params.push_back(leaf(q));
  GruOptions options = p.options;
  options.generator = dropout_generator;
  const bool fused = impl == GruImplementation::fused || impl == GruImplementation::fused_onednn;
  GruResult r = fused && !lengths.defined() ? gru_fused(input, h0, params, options, Tensor(), impl)
                                            : gru(input, h0, params, options, lengths, impl);
  (sum(r.output * p.gy) + sum(r.h_n * p.gh)).backward();
  GruRun out{r.output.detach(), r.h_n.detach(), {input.grad()}, {"d input"}};
  if (h0.defined()) {
    out.grads.push_back(h0.grad());
    out.names.push_back("d h0");
  }
  for (size_t i = 0; i < params.size(); ++i) {
    out.grads.push_back(params[i].grad());
    out.names.push_back("d params[" + std::to_string(i) + "]");
  }
  return out;
}

Tensor f64(const Tensor& t) { return t.detach().to(DType::f64).contiguous(); }

// The same function as a plain loop over the f64 reference kernel, layer by layer (no dropout).
GruRun plain_loop(const Problem& p) {
  namespace k = graft::kernels;
  const Config& c = p.c;
  const int64_t D = c.bidirectional ? 2 : 1, per = c.bias ? 4 : 2, T = c.T, N = c.N, H = c.H;
  const Tensor x0 = c.batch_first ? f64(p.input).permute({1, 0, 2}).contiguous() : f64(p.input);
  const Tensor h0 = c.h0 ? f64(p.h0) : zeros({c.L * D, N, H}, DType::f64);
  std::vector<Tensor> w;
  for (const Tensor& q : p.params) w.push_back(f64(q));
  auto weights = [&](int64_t l) {
    k::GruLayerWeights<double> lw;
    for (int64_t d = 0; d < D; ++d) {
      const int64_t b = (l * D + d) * per;
      lw.w_ih[d] = w[b].data_ptr<double>();
      lw.w_hh[d] = w[b + 1].data_ptr<double>();
      if (c.bias) lw.b_ih[d] = w[b + 2].data_ptr<double>(), lw.b_hh[d] = w[b + 3].data_ptr<double>();
    }
    return lw;
  };
  std::vector<Tensor> xs{x0}, ys, wss;
  Tensor h_n = empty({c.L * D, N, H}, DType::f64);
  for (int64_t l = 0; l < c.L; ++l) {
    const k::GruLayerShape s{T, N, xs[l].size(2), H, D};
    ys.push_back(empty({T, N, D * H}, DType::f64));
    wss.push_back(empty({int64_t(k::gru_reference_workspace_bytes<double>(s) / 8)}, DType::f64));
    k::gru_reference_forward<double>(s, xs[l].data_ptr<double>(), h0.data_ptr<double>() + l * D * N * H, weights(l),
                                     ys[l].data_ptr<double>(), h_n.data_ptr<double>() + l * D * N * H,
                                     wss[l].data_ptr<double>());
    xs.push_back(ys[l]);
  }
  Tensor dy = c.batch_first ? f64(p.gy).permute({1, 0, 2}).contiguous() : f64(p.gy);
  const Tensor gh = f64(p.gh), dh0 = empty({c.L * D, N, H}, DType::f64);
  std::vector<Tensor> dw;
  for (const Tensor& q : w) dw.push_back(empty(q.shape(), DType::f64));
  for (int64_t l = c.L - 1; l >= 0; --l) {
    const k::GruLayerShape s{T, N, xs[l].size(2), H, D};
    k::GruLayerGrads<double> g;
    for (int64_t d = 0; d < D; ++d) {
      const int64_t b = (l * D + d) * per;
      g.w_ih[d] = dw[b].data_ptr<double>();
      g.w_hh[d] = dw[b + 1].data_ptr<double>();
      if (c.bias) g.b_ih[d] = dw[b + 2].data_ptr<double>(), g.b_hh[d] = dw[b + 3].data_ptr<double>();
    }
    Tensor dx = empty(xs[l].shape(), DType::f64);
    k::gru_reference_backward<double>(s, xs[l].data_ptr<double>(), h0.data_ptr<double>() + l * D * N * H, weights(l),
                                      ys[l].data_ptr<double>(), h_n.data_ptr<double>() + l * D * N * H,
                                      wss[l].data_ptr<double>(), dy.data_ptr<double>(),
                                      gh.data_ptr<double>() + l * D * N * H, dx.data_ptr<double>(),
                                      dh0.data_ptr<double>() + l * D * N * H, g);
    dy = dx;
  }
  GruRun out;
  out.output = c.batch_first ? ys.back().permute({1, 0, 2}).contiguous() : ys.back();
  out.h_n = h_n;
  out.grads.push_back(c.batch_first ? dy.permute({1, 0, 2}).contiguous() : dy);
  if (c.h0) out.grads.push_back(dh0);
  for (const Tensor& t : dw) out.grads.push_back(t);
  return out;
}

void expect_close(const GruRun& got, const GruRun& want, double tol, const std::string& where) {
  ASSERT_EQ(got.output.shape(), want.output.shape()) << where;
  ASSERT_EQ(got.h_n.shape(), want.h_n.shape()) << where;
  EXPECT_LT(max_rel_error(got.output, want.output), tol) << "output " << where;
  EXPECT_LT(max_rel_error(got.h_n, want.h_n), tol) << "h_n " << where;
  ASSERT_EQ(got.grads.size(), want.grads.size()) << where;
  for (size_t i = 0; i < got.grads.size(); ++i) {
    ASSERT_TRUE(got.grads[i].defined()) << got.names[i] << " missing, " << where;
    ASSERT_EQ(got.grads[i].shape(), want.grads[i].shape()) << got.names[i] << " " << where;
    EXPECT_LT(max_rel_error(got.grads[i], want.grads[i]), tol) << got.names[i] << " " << where;
  }
}

bool kernel_available(GruImplementation impl) {
  return impl == GruImplementation::fused_onednn ? kernels::gru_onednn_available() : kernels::gru_cpu_available();
}

}  // namespace

class GruFused : public ::testing::TestWithParam<GruImplementation> {
 protected:
  GruImplementation impl() const { return GetParam(); }
  bool fused_available() const { return kernel_available(GetParam()); }
  const char* missing() const {
    return GetParam() == GruImplementation::fused_onednn ? "graft was built without oneDNN: fused_onednn does not apply"
                                                         : "graft was built without AVX2/FMA: the fused GRU does not apply";
  }
};

INSTANTIATE_TEST_SUITE_P(CpuKernels, GruFused,
                         ::testing::Values(GruImplementation::fused, GruImplementation::fused_onednn),
                         [](const ::testing::TestParamInfo<GruImplementation>& info) {
                           return info.param == GruImplementation::fused ? "graft" : "onednn";
                         });

TEST_P(GruFused, MatchesPlainLoopOverReferenceKernel) {
  if (!fused_available()) GTEST_SKIP() << missing();
  const unsigned seed = std::random_device{}();  // fresh inputs every run
  SCOPED_TRACE("seed=" + std::to_string(seed));
  Generator g(seed);
  for (const Config& c : kConfigs) {
    const Problem p = make(c, g);
    expect_close(run(p, impl()), plain_loop(p), 1e-5, c.str());
  }
}

TEST_P(GruFused, MatchesReferenceComposite) {
  if (!fused_available()) GTEST_SKIP() << missing();
  const unsigned seed = std::random_device{}();  // fresh inputs every run
  SCOPED_TRACE("seed=" + std::to_string(seed));
  Generator g(seed);
  for (const Config& c : kConfigs) {
    const Problem p = make(c, g);
    const GruRun fused = run(p, impl()), reference = run(p, GruImplementation::reference);
    expect_close(fused, reference, 1e-5, c.str());
    EXPECT_TRUE(gru_fused_applies(p.input, p.params, p.options, Tensor(), impl()));
  }
}

TEST_P(GruFused, VariableLengthsMatchReferenceComposite) {
  if (!fused_available()) GTEST_SKIP() << missing();
  const unsigned seed = std::random_device{}();  // fresh inputs every run
  SCOPED_TRACE("seed=" + std::to_string(seed));
  Generator g(seed);
  for (const Config& c : kConfigs) {
    Problem p = make(c, g);
    p.options.enforce_sorted = false;
    std::vector<int64_t> lens;  // unsorted, in [1, T], the first one full
    for (int64_t n = 0; n < c.N; ++n) lens.push_back(n == 0 ? c.T : 1 + (n * 7 + 3) % c.T);
    const Tensor lengths = from_vector<int64_t>(lens, {c.N});
    EXPECT_TRUE(gru_fused_applies(p.input, p.params, p.options, lengths, impl()));
    expect_close(run(p, impl(), nullptr, lengths), run(p, GruImplementation::reference, nullptr, lengths),
                 1e-5, c.str() + " with lengths");
  }
}

TEST_P(GruFused, DropoutMasksMatchReferenceComposite) {
  if (!fused_available()) GTEST_SKIP() << missing();
  // Both draw bernoulli([T, N, D*H], 1 - p) per layer in the same order: equal generators, equal masks.
  for (double dropout : {0.3, 1.0}) {
    Generator g(7);
    Problem p = make({8, 3, 5, 6, 3, true, true, true, true}, g);
    p.options.dropout = dropout;
    Generator g1(99), g2(99);
    const GruRun fused = run(p, impl(), &g1), reference = run(p, GruImplementation::reference, &g2);
    expect_close(fused, reference, 1e-5, "dropout=" + std::to_string(dropout));
    EXPECT_EQ(g1.offset(), g2.offset());
  }
}

// Masks are drawn in the caller's batch order; graft's kernel runs the batch sorted by length, so
// its node permutes them: unsorted lengths with dropout must still match the composite.
TEST_P(GruFused, DropoutWithUnsortedLengthsMatchesReferenceComposite) {
  if (!fused_available()) GTEST_SKIP() << missing();
  Generator g(11);
  Problem p = make({7, 5, 4, 6, 3, true, true, true, true}, g);
  p.options.dropout = 0.4;
  p.options.enforce_sorted = false;
  const Tensor lengths = from_vector<int64_t>({3, 7, 1, 5, 7}, {5});
  Generator g1(5), g2(5);
  expect_close(run(p, impl(), &g1, lengths), run(p, GruImplementation::reference, &g2, lengths), 1e-5,
               "dropout with lengths");
}

TEST_P(GruFused, InferenceMatchesTraining) {
  if (!fused_available()) GTEST_SKIP() << missing();
  const unsigned seed = std::random_device{}();  // fresh inputs every run
  SCOPED_TRACE("seed=" + std::to_string(seed));
  Generator g(seed);
  const Problem p = make({10, 2, 7, 9, 2, true, false, true, true}, g);
  const GruRun training = run(p, impl());
  NoGradGuard no_grad;
  GruResult r = gru_fused(p.input, p.h0, p.params, p.options, Tensor(), impl());
  EXPECT_FALSE(r.output.requires_grad());
  EXPECT_LT(max_rel_error(r.output, training.output), 1e-6);
  EXPECT_LT(max_rel_error(r.h_n, training.h_n), 1e-6);
}

TEST_P(GruFused, AppliesOnlyWhereItCan) {
  Tensor x = randn({3, 2, 4});
  std::vector<Tensor> params{randn({6, 4}), randn({6, 2}), randn({6}), randn({6})};
  GruOptions options;
  EXPECT_EQ(gru_fused_applies(x, params, options, Tensor(), impl()), fused_available());
  EXPECT_FALSE(gru_fused_applies(x.to(DType::f64), params, options, Tensor(), impl()));  // f32 only
  EXPECT_EQ(gru_fused_applies(x, params, options, from_vector<int64_t>({3, 2}), impl()), fused_available());  // lengths
  EXPECT_THROW(gru_fused(x.to(DType::f64), Tensor(), params, options, Tensor(), impl()), NotImplementedError);
  // An explicit request that cannot run says why.
  std::vector<Tensor> params64;
  for (const Tensor& q : params) params64.push_back(q.to(DType::f64));
  try {
    gru(x.to(DType::f64), Tensor(), params64, options, Tensor(), impl());
    ADD_FAILURE() << "an f64 input ran on an f32 kernel";
  } catch (const NotImplementedError& e) {
    EXPECT_NE(std::string(e.what()).find("f64"), std::string::npos) << e.what();
  }
}
