// The attention kernels: the reference's backward against finite differences (f64), and the CPU
// flash-style kernel (forward and backward) against the f64 reference on fresh random inputs at
// odd lengths (1, 7, 97, 257, 1025), head dims 32/64/128, Sq != Sk, with key padding masks, causal,
// rows whose keys are all masked, few and many heads (the backward's key-chunk split), and dropout.
// Inputs are rounded to f32 first, so the f64 reference is the exact answer for the f32 inputs.
// Shape letters: B batch, H heads, Sq queries, Sk keys, D head dim of q/k, Dv head dim of v.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention/attention.h"

namespace k = graft::kernels;

namespace {

struct Case {
  int64_t B, H, Sq, Sk, D, Dv;
  bool mask = false, causal = false;
  bool fully_masked_batch = false;  // the last batch element has every key masked
  double dropout = 0.0;
  std::string str() const {
    return "B=" + std::to_string(B) + " H=" + std::to_string(H) + " Sq=" + std::to_string(Sq) + " Sk=" +
           std::to_string(Sk) + " D=" + std::to_string(D) + " Dv=" + std::to_string(Dv) + " mask=" +
           std::to_string(mask) + " causal=" + std::to_string(causal) + " fully_masked=" +
           std::to_string(fully_masked_batch) + " dropout=" + std::to_string(dropout);
  }
};

// Inputs, the output gradient and the mask of one problem, in double (values exact in f32).
struct Problem {
  Case c;
  k::AttentionShape shape;
  std::vector<double> q, k, v, dout;
  std::unique_ptr<bool[]> mask;
  k::AttentionParams params(double scale) const {
    k::AttentionParams p;
    p.scale = scale;
    p.causal = c.causal;
    p.key_padding_mask = mask.get();
    p.dropout_p = c.dropout;
    p.dropout_seed = 1234;
    p.dropout_counter = 77;
    return p;
  }
};

Problem make_problem(const Case& c, std::mt19937& rng) {
  Problem p;
  p.c = c;
  p.shape = {c.B, c.H, c.Sq, c.Sk, c.D, c.Dv};
  std::normal_distribution<double> normal;
  auto fill = [&](std::vector<double>& x, int64_t n) {
    x.resize(n);
    for (auto& e : x) e = static_cast<float>(normal(rng));
  };
  fill(p.q, c.B * c.H * c.Sq * c.D);
  fill(p.k, c.B * c.H * c.Sk * c.D);
  fill(p.v, c.B * c.H * c.Sk * c.Dv);
  fill(p.dout, c.B * c.H * c.Sq * c.Dv);
  if (c.mask || c.fully_masked_batch) {
    p.mask.reset(new bool[c.B * c.Sk]);
    std::bernoulli_distribution masked(c.mask ? 0.3 : 0.0);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t j = 0; j < c.Sk; ++j) p.mask[b * c.Sk + j] = (c.fully_masked_batch && b == c.B - 1) || masked(rng);
  }
  return p;
}

// out, lse, dq, dk, dv of one run.
struct Outputs {
  std::vector<double> all[5];
};
const char* kNames[5] = {"out", "lse", "dq", "dk", "dv"};

template <class S, bool fast>
Outputs run(const Problem& p) {
  const auto& s = p.shape;
  const k::AttentionParams params = p.params(1.0 / std::sqrt(double(s.D)));
  const std::vector<S> q(p.q.begin(), p.q.end()), kk(p.k.begin(), p.k.end()), v(p.v.begin(), p.v.end()),
      dout(p.dout.begin(), p.dout.end());
  const S poison = std::numeric_limits<S>::quiet_NaN();  // every entry must be written
  std::vector<S> out(dout.size(), poison), lse(s.B * s.H * s.Sq, poison), dq(q.size(), poison),
      dk(kk.size(), poison), dv(v.size(), poison);
  if constexpr (fast) {
    k::attention_cpu_forward(s, params, q.data(), kk.data(), v.data(), out.data(), lse.data());
    k::attention_cpu_backward(s, params, q.data(), kk.data(), v.data(), out.data(), lse.data(), dout.data(),
                              dq.data(), dk.data(), dv.data());
  } else {
    k::attention_reference_forward<S>(s, params, q.data(), kk.data(), v.data(), out.data(), lse.data());
    k::attention_reference_backward<S>(s, params, q.data(), kk.data(), v.data(), out.data(), lse.data(),
                                       dout.data(), dq.data(), dk.data(), dv.data());
  }
  Outputs o;
  const std::vector<S>* all[5] = {&out, &lse, &dq, &dk, &dv};
  for (int i = 0; i < 5; ++i) o.all[i].assign(all[i]->begin(), all[i]->end());
  return o;
}

// max |a - b| over max |b|, magnitudes below 0.1 counted as 0.1 (with one visible key the softmax
// is constant and dq, dk are exactly zero: f32 rounding there is not a relative error). Infinities
// must match exactly and are left out of both.
double rel_error(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(b[i])) {
      if (a[i] != b[i]) return std::numeric_limits<double>::infinity();
      continue;
    }
    if (std::isnan(a[i])) return std::numeric_limits<double>::infinity();
    diff = std::max(diff, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return diff / std::max(scale, 0.1);
}

double max_finite_abs(const std::vector<double>& v) {
  double m = 0;
  for (double e : v)
    if (std::isfinite(e)) m = std::max(m, std::fabs(e));
  return m;
}

// The CPU kernel against the f64 reference: each output within 1e-5 of its own scale (2e-5 for
// the gradients, whose sums run over both lengths), and no output all zeros (dq and dk are, where
// each query sees one key only).
void expect_cpu_matches_reference(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  const Problem p = make_problem(c, rng);
  const Outputs want = run<double, false>(p), got = run<float, true>(p);
  const bool softmax_varies = c.Sk > 1 && !(c.causal && c.Sq == 1);
  for (int i = 0; i < 5; ++i) {
    const double tolerance = i < 2 ? 1e-5 : 2e-5;
    const double err = rel_error(got.all[i], want.all[i]);
    EXPECT_LE(err, tolerance) << kNames[i] << " of " << c.str();
    if ((i != 2 && i != 3) || softmax_varies)
      EXPECT_GT(max_finite_abs(want.all[i]), 0.0) << kNames[i] << " is all zeros for " << c.str();
  }
}

}  // namespace

// The reference backward is the truth for everything else: check it against central differences
// of loss = sum(out * dout) in f64, with every masking feature and dropout on.
TEST(AttentionKernel, ReferenceBackwardMatchesFiniteDifferences) {
  const std::vector<Case> cases{{2, 2, 5, 7, 3, 4, true, false, false, 0.0},
                                {1, 2, 6, 6, 4, 2, false, true, false, 0.0},
                                {3, 1, 7, 4, 3, 3, true, true, true, 0.0},
                                {2, 2, 5, 6, 3, 2, true, true, false, 0.3}};
  std::mt19937 rng(7);
  for (const Case& c : cases) {
    Problem p = make_problem(c, rng);
    const auto& s = p.shape;
    const k::AttentionParams params = p.params(0.7);
    auto loss = [&] {
      std::vector<double> out(p.dout.size()), lse(s.B * s.H * s.Sq);
      k::attention_reference_forward<double>(s, params, p.q.data(), p.k.data(), p.v.data(), out.data(), lse.data());
      double l = 0;
      for (size_t i = 0; i < out.size(); ++i) l += out[i] * p.dout[i];
      return l;
    };
    std::vector<double> out(p.dout.size()), lse(s.B * s.H * s.Sq), dq(p.q.size()), dk(p.k.size()), dv(p.v.size());
    k::attention_reference_forward<double>(s, params, p.q.data(), p.k.data(), p.v.data(), out.data(), lse.data());
    k::attention_reference_backward<double>(s, params, p.q.data(), p.k.data(), p.v.data(), out.data(), lse.data(),
                                            p.dout.data(), dq.data(), dk.data(), dv.data());
    std::vector<double>* inputs[3] = {&p.q, &p.k, &p.v};
    const std::vector<double>* grads[3] = {&dq, &dk, &dv};
    for (int t = 0; t < 3; ++t)
      for (size_t e = 0; e < inputs[t]->size(); ++e) {
        double& x = (*inputs[t])[e];
        const double saved = x, eps = 1e-6;
        x = saved + eps;
        const double up = loss();
        x = saved - eps;
        const double down = loss();
        x = saved;
        const double numerical = (up - down) / (2 * eps);
        ASSERT_NEAR((*grads[t])[e], numerical, 1e-6 + 1e-5 * std::fabs(numerical))
            << kNames[t + 2] << "[" << e << "] of " << c.str();
      }
  }
}

TEST(AttentionKernel, CpuMatchesReferenceAtOddLengthsAndHeadDims) {
  uint32_t seed = 1;
  for (int64_t S : {1, 7, 97, 257, 1025})
    for (int64_t D : {32, 64, 128}) expect_cpu_matches_reference({1, 2, S, S, D, D}, seed++);
}

TEST(AttentionKernel, CpuMatchesReferenceWithMasksAndCausal) {
  uint32_t seed = 100;
  for (int64_t S : {7, 97, 257})
    for (bool causal : {false, true}) {
      expect_cpu_matches_reference({2, 3, S, S, 64, 64, true, causal}, seed++);
      expect_cpu_matches_reference({3, 2, S, S, 32, 32, false, causal, true}, seed++);
    }
  expect_cpu_matches_reference({1, 1, 1025, 1025, 64, 64, true, true}, seed++);
}

TEST(AttentionKernel, CpuMatchesReferenceWhenQueriesAndKeysDiffer) {
  uint32_t seed = 200;
  for (bool causal : {false, true}) {
    expect_cpu_matches_reference({2, 2, 33, 200, 64, 48, true, causal}, seed++);
    expect_cpu_matches_reference({1, 3, 300, 17, 32, 40, false, causal}, seed++);
    expect_cpu_matches_reference({1, 1, 1, 257, 5, 3, true, causal}, seed++);  // head dims off the 8/16 grid
  }
}

// Many heads (one key chunk per head) and one head (the backward splits its keys into chunks).
TEST(AttentionKernel, CpuMatchesReferenceForManyAndFewHeads) {
  expect_cpu_matches_reference({4, 6, 97, 97, 32, 32, true, false}, 300);
  expect_cpu_matches_reference({1, 1, 600, 1025, 64, 64, false, false}, 301);
}

TEST(AttentionKernel, FullyMaskedRowsGiveZerosNeverNaN) {
  // Batch 1 has every key masked; under causal, batch 0's first queries see only masked keys too.
  std::mt19937 rng(9);
  Problem p = make_problem({2, 2, 130, 130, 32, 32, false, true, true}, rng);
  for (int64_t j = 0; j < 100; ++j) p.mask[j] = true;  // batch 0: queries 0..99 see only masked keys
  const int64_t Sq = 130, D = 32;
  for (const Outputs& o : {run<float, true>(p), run<double, false>(p)}) {
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t i = 0; i < Sq; ++i) {
        const bool empty_row = h >= 2 || i < 100;
        EXPECT_EQ(std::isinf(o.all[1][h * Sq + i]), empty_row) << "lse, head " << h << " row " << i;
        for (int64_t c = 0; c < D; ++c) {
          const int64_t e = (h * Sq + i) * D + c;
          ASSERT_FALSE(std::isnan(o.all[0][e]) || std::isnan(o.all[2][e])) << "head " << h << " row " << i;
          if (empty_row) {
            ASSERT_EQ(o.all[0][e], 0.0) << "out, head " << h << " row " << i;
            ASSERT_EQ(o.all[2][e], 0.0) << "dq, head " << h << " row " << i;
          }
        }
      }
    for (int i = 3; i < 5; ++i)  // masked keys get no gradient
      for (int64_t e = 0; e < static_cast<int64_t>(o.all[i].size()); ++e) {
        const int64_t head = e / (Sq * D), key = e / D % Sq;
        ASSERT_FALSE(std::isnan(o.all[i][e]));
        if (head >= 2 || key < 100) ASSERT_EQ(o.all[i][e], 0.0) << kNames[i] << "[" << e << "]";
      }
  }
}

TEST(AttentionKernel, DropoutMatchesReferenceForwardAndBackward) {
  uint32_t seed = 400;
  for (bool causal : {false, true}) {
    expect_cpu_matches_reference({2, 2, 97, 97, 32, 32, true, causal, false, 0.25}, seed++);
    expect_cpu_matches_reference({1, 2, 130, 257, 64, 64, false, causal, false, 0.6}, seed++);
  }
}
