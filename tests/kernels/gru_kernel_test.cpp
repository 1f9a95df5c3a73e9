// The GRU layer kernels: the reference's backward against finite differences (f64), and both fast
// CPU kernels, graft's own (kernels/gru/cpu.cpp) and oneDNN's lbr_gru (forward and every backward
// output), against the f64 reference on fresh random inputs at odd sizes (batch rows and hidden
// units off the register tiles), uni- and bidirectional, with and without bias and h0, on several
// thread counts, and with gradients not wanted. Errors are relative to the f64 truth, below 1e-5.
// Shape letters: T steps, N batch, I input, H hidden, D directions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <omp.h>

#include "kernels/gru/gru.h"

namespace k = graft::kernels;

namespace {

struct Case {
  int64_t T, N, I, H, D;
  bool bias, h0;
};

// All inputs and output gradients of one layer, in double; cast per test.
struct Problem {
  k::GruLayerShape shape;
  bool bias = true, has_h0 = true;
  std::vector<double> x, h0, dy, dh_n;
  std::vector<double> w[2][4];  // per direction: w_ih, w_hh, b_ih, b_hh
};

Problem make_problem(const Case& c, std::mt19937& rng) {
  Problem p;
  p.shape = {c.T, c.N, c.I, c.H, c.D};
  p.bias = c.bias;
  p.has_h0 = c.h0;
  std::normal_distribution<double> normal;
  const double bound = 1.0 / std::sqrt(double(c.H));
  std::uniform_real_distribution<double> uniform(-bound, bound);
  auto fill = [&](std::vector<double>& v, size_t n, bool weights) {
    v.resize(n);
    for (auto& e : v) e = weights ? uniform(rng) : normal(rng);
  };
  fill(p.x, c.T * c.N * c.I, false);
  fill(p.h0, c.D * c.N * c.H, false);
  fill(p.dy, c.T * c.N * c.D * c.H, false);
  fill(p.dh_n, c.D * c.N * c.H, false);
  for (int64_t d = 0; d < c.D; ++d) {
    fill(p.w[d][0], 3 * c.H * c.I, true);
    fill(p.w[d][1], 3 * c.H * c.H, true);
    fill(p.w[d][2], 3 * c.H, true);
    fill(p.w[d][3], 3 * c.H, true);
  }
  return p;
}

// What a run produces: y, h_n, dx, dh0, then dw_ih, dw_hh, db_ih, db_hh per direction.
struct Outputs {
  std::vector<std::vector<double>> all;
  std::vector<std::string> names;
};

template <class S>
std::vector<S> cast(const std::vector<double>& v) {
  return std::vector<S>(v.begin(), v.end());
}

enum class Backend { reference, graft, onednn };

const char* backend_name(Backend b) { return b == Backend::graft ? "graft" : b == Backend::onednn ? "oneDNN" : "reference"; }

bool available(Backend b) {
  return b == Backend::graft ? k::gru_cpu_available() : b == Backend::onednn ? k::gru_onednn_available() : true;
}

// What a run asks for: a null pointer means "not wanted" in the kernel contract.
struct Wanted {
  bool dx = true, dh0 = true, w_ih = true, w_hh = true, bias = true;
};

// lengths: only for Backend::graft (null: every sequence runs all T steps).
template <class S, Backend backend = Backend::reference>
Outputs run(const Problem& p, const Wanted& want = {}, const int64_t* lengths = nullptr) {
  const auto& s = p.shape;
  std::vector<S> x = cast<S>(p.x), h0 = cast<S>(p.h0), dy = cast<S>(p.dy), dh_n = cast<S>(p.dh_n);
  std::vector<S> w[2][4], g[2][4];
  k::GruLayerWeights<S> weights;
  k::GruLayerGrads<S> grads;
  for (int64_t d = 0; d < s.D; ++d)
    for (int i = 0; i < 4; ++i) {
      w[d][i] = cast<S>(p.w[d][i]);
      g[d][i].assign(w[d][i].size(), S(-7));  // poison: every entry must be overwritten
    }
  for (int64_t d = 0; d < s.D; ++d) {
    weights.w_ih[d] = w[d][0].data();
    weights.w_hh[d] = w[d][1].data();
    if (want.w_ih) grads.w_ih[d] = g[d][0].data();
    if (want.w_hh) grads.w_hh[d] = g[d][1].data();
    if (p.bias) {
      weights.b_ih[d] = w[d][2].data();
      weights.b_hh[d] = w[d][3].data();
      if (want.bias) grads.b_ih[d] = g[d][2].data();
      if (want.bias) grads.b_hh[d] = g[d][3].data();
    }
  }
  std::vector<S> y(s.T * s.N * s.D * s.H, S(-7)), h_n(s.D * s.N * s.H, S(-7)), dx(x.size(), S(-7)),
      dh0(h0.size(), S(-7));
  const S* h0p = p.has_h0 ? h0.data() : nullptr;
  std::vector<unsigned char> ws;
  S* dxp = want.dx ? dx.data() : nullptr;
  S* dh0p = want.dh0 ? dh0.data() : nullptr;
  if constexpr (backend == Backend::graft) {
    ws.resize(k::gru_cpu_workspace_bytes(s));
    k::gru_cpu_forward(s, x.data(), h0p, weights, y.data(), h_n.data(), ws.data(), lengths);
    k::gru_cpu_backward(s, x.data(), h0p, weights, y.data(), h_n.data(), ws.data(), dy.data(), dh_n.data(), dxp, dh0p,
                        grads, lengths);
  } else if constexpr (backend == Backend::onednn) {
    ws.resize(k::gru_onednn_workspace_bytes(s));
    k::gru_onednn_forward(s, x.data(), h0p, weights, y.data(), h_n.data(), ws.data());
    k::gru_onednn_backward(s, x.data(), h0p, weights, y.data(), h_n.data(), ws.data(), dy.data(), dh_n.data(), dxp,
                           dh0p, grads);
  } else {
    ws.resize(k::gru_reference_workspace_bytes<S>(s));
    k::gru_reference_forward<S>(s, x.data(), h0p, weights, y.data(), h_n.data(), ws.data());
    k::gru_reference_backward<S>(s, x.data(), h0p, weights, y.data(), h_n.data(), ws.data(), dy.data(), dh_n.data(),
                                 dxp, dh0p, grads);
  }
  Outputs o;
  auto add = [&](const std::string& name, const std::vector<S>& v) {
    o.all.emplace_back(v.begin(), v.end());
    o.names.push_back(name);
  };
  add("y", y);
  add("h_n", h_n);
  add("dx", dx);
  add("dh0", dh0);
  const char* names[4] = {"dw_ih", "dw_hh", "db_ih", "db_hh"};
  for (int64_t d = 0; d < s.D; ++d)
    for (int i = 0; i < (p.bias ? 4 : 2); ++i) add(std::string(names[i]) + "[d=" + std::to_string(d) + "]", g[d][i]);
  return o;
}

// max |a - b| / max |b|: an error relative to the tensor's scale.
// Max difference over the max magnitude, with magnitudes below 0.1 counted as 0.1: GRU values are
// O(1), and for a tiny case (T=N=I=H=1) whose only output happens to be near zero, f32 rounding in
// a different operation order would otherwise read as a large relative error (seen: 1.2e-5 on a
// value of ~0.01, i.e. 1.2e-7 absolute).
double rel_error(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return diff / std::max(scale, 0.1);
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double e : v) m = std::max(m, std::fabs(e));
  return m;
}

// graft's kernel tiles 4 batch rows by 8 hidden units (forward) or 24 columns (backward): the
// cases put N and H on and off those multiples.
const std::vector<Case> kCases{{1, 1, 1, 1, 1, true, true},      {7, 3, 5, 9, 1, true, true},
                               {13, 5, 17, 11, 2, true, true},   {5, 2, 33, 7, 2, false, true},
                               {9, 4, 3, 16, 1, true, false},    {31, 7, 29, 37, 2, true, false},
                               {17, 1, 64, 65, 1, false, false}, {6, 8, 40, 48, 1, true, true},
                               {4, 9, 20, 100, 2, true, true}};

// The reference backward is the truth for everything else: check it against central differences
// of L = sum(y * dy) + sum(h_n * dh_n), in f64.
void expect_reference_backward_matches_finite_differences() {
  std::mt19937 rng(std::random_device{}());
  for (const Case& c : {Case{4, 2, 3, 5, 2, true, true}, Case{3, 3, 4, 2, 1, true, false}}) {
    Problem p = make_problem(c, rng);
    const Outputs analytic = run<double>(p);
    auto loss = [&](const Problem& q) {
      const Outputs o = run<double>(q);
      double l = 0;
      for (size_t i = 0; i < q.dy.size(); ++i) l += o.all[0][i] * q.dy[i];
      for (size_t i = 0; i < q.dh_n.size(); ++i) l += o.all[1][i] * q.dh_n[i];
      return l;
    };
    // Perturb each input tensor that has a gradient, in Outputs' order from index 2.
    std::vector<std::vector<double>*> wrt{&p.x, &p.h0};
    for (int64_t d = 0; d < c.D; ++d)
      for (int i = 0; i < 4; ++i) wrt.push_back(&p.w[d][i]);
    for (size_t t = 0; t < wrt.size(); ++t) {
      if (t == 1 && !c.h0) continue;
      for (size_t i = 0; i < wrt[t]->size(); ++i) {
        const double keep = (*wrt[t])[i], eps = 1e-6;
        (*wrt[t])[i] = keep + eps;
        const double up = loss(p);
        (*wrt[t])[i] = keep - eps;
        const double down = loss(p);
        (*wrt[t])[i] = keep;
        const double numeric = (up - down) / (2 * eps);
        const double got = analytic.all[2 + t][i];
        EXPECT_NEAR(got, numeric, 1e-6 * std::max(1.0, std::fabs(numeric)))
            << analytic.names[2 + t] << "[" << i << "] T=" << c.T << " D=" << c.D;
      }
    }
  }
}

template <Backend backend>
void expect_matches_reference(const Wanted& want = {}) {
  if (!available(backend)) GTEST_SKIP() << "no " << backend_name(backend) << " GRU kernel in this build";
  const unsigned seed = std::random_device{}();  // fresh inputs every run; the seed is in failures
  std::mt19937 rng(seed);
  for (const Case& c : kCases) {
    const Problem p = make_problem(c, rng);
    const Outputs truth = run<double>(p);
    const Outputs ref32 = run<float>(p);
    const Outputs fast = run<float, backend>(p, want);
    ASSERT_EQ(fast.all.size(), truth.all.size());
    for (size_t i = 0; i < truth.all.size(); ++i) {
      const std::string& name = truth.names[i];
      if (name == "dh0" && !c.h0) continue;  // no h0: its gradient is still written, unchecked
      const bool wanted = (name != "dx" || want.dx) && (name != "dh0" || want.dh0) &&
                          (name.rfind("dw_ih", 0) != 0 || want.w_ih) && (name.rfind("dw_hh", 0) != 0 || want.w_hh) &&
                          (name.rfind("db_", 0) != 0 || want.bias);
      const std::string where = name + " " + backend_name(backend) + " T=" + std::to_string(c.T) +
                                " N=" + std::to_string(c.N) + " I=" + std::to_string(c.I) +
                                " H=" + std::to_string(c.H) + " D=" + std::to_string(c.D) +
                                " bias=" + std::to_string(c.bias) + " threads=" + std::to_string(omp_get_max_threads()) +
                                " seed=" + std::to_string(seed);
      if (!wanted) {  // a null output pointer: nothing written there (the buffer keeps its poison)
        EXPECT_TRUE(std::all_of(fast.all[i].begin(), fast.all[i].end(), [](double v) { return v == -7; })) << where;
        continue;
      }
      ASSERT_GT(max_abs(truth.all[i]), 0.0) << "all-zero truth: " << where;
      const double err = rel_error(fast.all[i], truth.all[i]);
      const double ref_err = rel_error(ref32.all[i], truth.all[i]);
      EXPECT_LT(err, 1e-5) << where << " (f32 reference error " << ref_err << ")";
    }
  }
}

// Runs f with omp_get_max_threads() == n, then restores the count.
template <class F>
void with_threads(int n, F f) {
  const int keep = omp_get_max_threads();
  omp_set_num_threads(n);
  f();
  omp_set_num_threads(keep);
}

template <Backend backend>
void expect_inference_matches_training() {
  if (!available(backend)) GTEST_SKIP() << "no " << backend_name(backend) << " GRU kernel in this build";
  std::mt19937 rng(std::random_device{}());
  for (const Case& c : {Case{11, 3, 6, 10, 2, true, true}, Case{7, 5, 9, 30, 1, true, false}}) {
    const Problem p = make_problem(c, rng);
    const Outputs truth = run<double>(p);
    std::vector<float> x = cast<float>(p.x), h0 = cast<float>(p.h0), w[2][4];
    k::GruLayerWeights<float> weights;
    for (int d = 0; d < c.D; ++d) {
      for (int i = 0; i < 4; ++i) w[d][i] = cast<float>(p.w[d][i]);
      weights.w_ih[d] = w[d][0].data();
      weights.w_hh[d] = w[d][1].data();
      weights.b_ih[d] = w[d][2].data();
      weights.b_hh[d] = w[d][3].data();
    }
    std::vector<float> y(truth.all[0].size()), h_n(truth.all[1].size());
    const float* h0p = c.h0 ? h0.data() : nullptr;
    if constexpr (backend == Backend::graft)
      k::gru_cpu_forward(p.shape, x.data(), h0p, weights, y.data(), h_n.data(), nullptr);
    else
      k::gru_onednn_forward(p.shape, x.data(), h0p, weights, y.data(), h_n.data(), nullptr);  // forward_inference
    EXPECT_LT(rel_error(std::vector<double>(y.begin(), y.end()), truth.all[0]), 1e-5);
    EXPECT_LT(rel_error(std::vector<double>(h_n.begin(), h_n.end()), truth.all[1]), 1e-5);
  }
}

}  // namespace

TEST(GruKernel, ReferenceBackwardMatchesFiniteDifferences) { expect_reference_backward_matches_finite_differences(); }

TEST(GruKernel, GraftMatchesReference) { expect_matches_reference<Backend::graft>(); }

// Each thread owns a slice of hidden units (forward) and of dh columns (backward): uneven slices,
// more threads than slices, and one thread must all give the same results.
TEST(GruKernel, GraftMatchesReferenceOnAnyThreadCount) {
  for (int threads : {1, 3, 5}) with_threads(threads, [] { expect_matches_reference<Backend::graft>(); });
}

// A null gradient pointer is skipped, not written (dx of a first layer whose input needs no
// gradient is the common case: graft's kernel then skips the dx GEMM).
TEST(GruKernel, GraftSkipsGradientsNotWanted) {
  expect_matches_reference<Backend::graft>({.dx = false, .dh0 = false});
  expect_matches_reference<Backend::graft>({.dx = true, .dh0 = true, .w_ih = false, .w_hh = false, .bias = false});
  expect_matches_reference<Backend::graft>({.dx = false, .dh0 = true, .w_ih = true, .w_hh = false, .bias = true});
}

// Variable lengths: each sequence alone, run by the f64 reference over its own length, is the
// truth: its outputs (zero past its length), h_n, dx (zero past its length) and dh0, and the sum
// of the weight gradients over the sequences. dy past a length is nonzero and must be ignored.
TEST(GruKernel, GraftVariableLengthsMatchEachSequenceAlone) {
  if (!available(Backend::graft)) GTEST_SKIP() << "no graft GRU kernel in this build";
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  for (const Case& c : {Case{9, 7, 5, 10, 2, true, true}, Case{6, 5, 8, 30, 1, true, false},
                        Case{7, 9, 4, 17, 2, false, true}, Case{5, 1, 3, 8, 2, true, true}}) {
    const Problem p = make_problem(c, rng);
    // Sorted longest first, some equal, the longest possibly short of T.
    std::vector<int64_t> lengths(c.N);
    std::uniform_int_distribution<int64_t> pick(1, c.T);
    for (auto& l : lengths) l = pick(rng);
    std::sort(lengths.begin(), lengths.end(), std::greater<>());
    for (bool threads3 : {false, true}) {
      Outputs got;
      with_threads(threads3 ? 3 : omp_get_max_threads(), [&] { got = run<float, Backend::graft>(p, {}, lengths.data()); });
      const int64_t T = c.T, N = c.N, I = c.I, H = c.H, D = c.D;
      std::vector<std::vector<double>> want(got.all.size());
      for (size_t i = 0; i < want.size(); ++i) want[i].assign(got.all[i].size(), 0.0);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t len = lengths[n];
        Problem q = p;
        q.shape.T = len, q.shape.N = 1;
        q.x.assign(len * I, 0), q.dy.assign(len * D * H, 0), q.h0.assign(D * H, 0), q.dh_n.assign(D * H, 0);
        for (int64_t t = 0; t < len; ++t) {
          for (int64_t i = 0; i < I; ++i) q.x[t * I + i] = p.x[(t * N + n) * I + i];
          for (int64_t j = 0; j < D * H; ++j) q.dy[t * D * H + j] = p.dy[(t * N + n) * D * H + j];
        }
        for (int64_t d = 0; d < D; ++d)
          for (int64_t j = 0; j < H; ++j) {
            q.h0[d * H + j] = p.h0[(d * N + n) * H + j];
            q.dh_n[d * H + j] = p.dh_n[(d * N + n) * H + j];
          }
        const Outputs alone = run<double>(q);
        for (int64_t t = 0; t < len; ++t) {
          for (int64_t j = 0; j < D * H; ++j) want[0][(t * N + n) * D * H + j] = alone.all[0][t * D * H + j];
          for (int64_t i = 0; i < I; ++i) want[2][(t * N + n) * I + i] = alone.all[2][t * I + i];
        }
        for (int64_t d = 0; d < D; ++d)
          for (int64_t j = 0; j < H; ++j) {
            want[1][(d * N + n) * H + j] = alone.all[1][d * H + j];
            want[3][(d * N + n) * H + j] = alone.all[3][d * H + j];
          }
        for (size_t i = 4; i < want.size(); ++i)
          for (size_t e = 0; e < want[i].size(); ++e) want[i][e] += alone.all[i][e];
      }
      for (size_t i = 0; i < want.size(); ++i) {
        if (got.names[i] == "dh0" && !c.h0) continue;
        EXPECT_LT(rel_error(got.all[i], want[i]), 1e-5)
            << got.names[i] << " T=" << T << " N=" << N << " H=" << H << " D=" << D << " threads3=" << threads3
            << " seed=" << seed;
      }
    }
  }
}

TEST(GruKernel, GraftInferenceMatchesTraining) { expect_inference_matches_training<Backend::graft>(); }

TEST(GruKernel, OneDnnMatchesReference) { expect_matches_reference<Backend::onednn>(); }

TEST(GruKernel, OneDnnInferenceMatchesTraining) { expect_inference_matches_training<Backend::onednn>(); }
