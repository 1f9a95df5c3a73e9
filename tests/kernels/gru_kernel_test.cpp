// The GRU layer kernels: the reference's backward against finite differences (f64), and the oneDNN
// kernel (forward and every backward output) against the f64 reference on fresh random inputs at
// odd sizes, uni- and bidirectional, with and without bias and h0. The fast kernel's error must
// stay near the f32 reference's own error (both measured against f64).
// Shape letters: T steps, N batch, I input, H hidden, D directions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

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

template <class S, bool fast>
Outputs run(const Problem& p) {
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
    grads.w_ih[d] = g[d][0].data();
    grads.w_hh[d] = g[d][1].data();
    if (p.bias) {
      weights.b_ih[d] = w[d][2].data();
      weights.b_hh[d] = w[d][3].data();
      grads.b_ih[d] = g[d][2].data();
      grads.b_hh[d] = g[d][3].data();
    }
  }
  std::vector<S> y(s.T * s.N * s.D * s.H, S(-7)), h_n(s.D * s.N * s.H, S(-7)), dx(x.size(), S(-7)),
      dh0(h0.size(), S(-7));
  const S* h0p = p.has_h0 ? h0.data() : nullptr;
  std::vector<unsigned char> ws;
  if constexpr (fast) {
    ws.resize(k::gru_cpu_workspace_bytes(s));
    k::gru_cpu_forward(s, x.data(), h0p, weights, y.data(), h_n.data(), ws.data());
    k::gru_cpu_backward(s, x.data(), h0p, weights, y.data(), h_n.data(), ws.data(), dy.data(), dh_n.data(), dx.data(),
                        dh0.data(), grads);
  } else {
    ws.resize(k::gru_reference_workspace_bytes<S>(s));
    k::gru_reference_forward<S>(s, x.data(), h0p, weights, y.data(), h_n.data(), ws.data());
    k::gru_reference_backward<S>(s, x.data(), h0p, weights, y.data(), h_n.data(), ws.data(), dy.data(), dh_n.data(),
                                 dx.data(), dh0.data(), grads);
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

const std::vector<Case> kCases{{1, 1, 1, 1, 1, true, true},     {7, 3, 5, 9, 1, true, true},
                               {13, 5, 17, 11, 2, true, true},  {5, 2, 33, 7, 2, false, true},
                               {9, 4, 3, 16, 1, true, false},   {31, 7, 29, 37, 2, true, false},
                               {17, 1, 64, 65, 1, false, false}};

}  // namespace

// The reference backward is the truth for everything else: check it against central differences
// of L = sum(y * dy) + sum(h_n * dh_n), in f64.
TEST(GruKernel, ReferenceBackwardMatchesFiniteDifferences) {
  std::mt19937 rng(std::random_device{}());
  for (const Case& c : {Case{4, 2, 3, 5, 2, true, true}, Case{3, 3, 4, 2, 1, true, false}}) {
    Problem p = make_problem(c, rng);
    const Outputs analytic = run<double, false>(p);
    auto loss = [&](const Problem& q) {
      const Outputs o = run<double, false>(q);
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

TEST(GruKernel, OneDnnMatchesReference) {
  if (!k::gru_cpu_available()) GTEST_SKIP() << "graft was built without oneDNN: no fast GRU kernel to test";
  const unsigned seed = std::random_device{}();  // fresh inputs every run; the seed is in failures
  std::mt19937 rng(seed);
  for (const Case& c : kCases) {
    const Problem p = make_problem(c, rng);
    const Outputs truth = run<double, false>(p);
    const Outputs ref32 = run<float, false>(p);
    const Outputs fast = run<float, true>(p);
    ASSERT_EQ(fast.all.size(), truth.all.size());
    for (size_t i = 0; i < truth.all.size(); ++i) {
      if (truth.names[i] == "dh0" && !c.h0) continue;  // no h0: its gradient is still written, unchecked
      const std::string where = truth.names[i] + " T=" + std::to_string(c.T) + " N=" + std::to_string(c.N) +
                                " I=" + std::to_string(c.I) + " H=" + std::to_string(c.H) +
                                " D=" + std::to_string(c.D) + " bias=" + std::to_string(c.bias) +
                                " seed=" + std::to_string(seed);
      ASSERT_GT(max_abs(truth.all[i]), 0.0) << "all-zero truth: " << where;
      const double err = rel_error(fast.all[i], truth.all[i]);
      const double ref_err = rel_error(ref32.all[i], truth.all[i]);
      EXPECT_LT(err, 1e-5) << where << " (f32 reference error " << ref_err << ")";
    }
  }
}

TEST(GruKernel, OneDnnInferenceMatchesTraining) {
  if (!k::gru_cpu_available()) GTEST_SKIP() << "graft was built without oneDNN: no fast GRU kernel to test";
  std::mt19937 rng(std::random_device{}());
  const Problem p = make_problem({11, 3, 6, 10, 2, true, true}, rng);
  const Outputs truth = run<double, false>(p);
  std::vector<float> x = cast<float>(p.x), h0 = cast<float>(p.h0), w[2][4];
  k::GruLayerWeights<float> weights;
  for (int d = 0; d < 2; ++d) {
    for (int i = 0; i < 4; ++i) w[d][i] = cast<float>(p.w[d][i]);
    weights.w_ih[d] = w[d][0].data();
    weights.w_hh[d] = w[d][1].data();
    weights.b_ih[d] = w[d][2].data();
    weights.b_hh[d] = w[d][3].data();
  }
  std::vector<float> y(truth.all[0].size()), h_n(truth.all[1].size());
  k::gru_cpu_forward(p.shape, x.data(), h0.data(), weights, y.data(), h_n.data(), nullptr);  // forward_inference
  EXPECT_LT(rel_error(std::vector<double>(y.begin(), y.end()), truth.all[0]), 1e-5);
  EXPECT_LT(rel_error(std::vector<double>(h_n.begin(), h_n.end()), truth.all[1]), 1e-5);
}
