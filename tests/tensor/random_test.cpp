// Philox RNG: seeds reproduce, streams advance, results ignore the thread count, and
// distributions have the right moments; dropout's mask follows the same rules.
#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "reference.h"

using namespace graft;
using namespace graft::testing;

namespace {
struct Moments {
  double mean, std;
};
Moments moments(const std::vector<double>& v) {
  double s = 0, ss = 0;
  for (double e : v) s += e;
  const double m = s / static_cast<double>(v.size());
  for (double e : v) ss += (e - m) * (e - m);
  return {m, std::sqrt(ss / static_cast<double>(v.size() - 1))};
}
}  // namespace

TEST(Random, SameSeedSameNumbers) {
  Generator g1(42), g2(42), g3(43);
  auto a = values(randn({1001}, {}, &g1)), b = values(randn({1001}, {}, &g2)), c = values(randn({1001}, {}, &g3));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // The stream advances: a second draw differs from the first.
  auto a2 = values(randn({1001}, {}, &g1));
  EXPECT_NE(a, a2);
  // Re-seeding restarts it.
  g1.manual_seed(42);
  EXPECT_EQ(values(randn({1001}, {}, &g1)), a);
  // Offsets save and restore a position in the stream.
  Generator g4(7);
  rand({10}, {}, &g4);
  const uint64_t off = g4.offset();
  auto r1 = values(rand({33}, {}, &g4));
  g4.set_offset(off);
  EXPECT_EQ(values(rand({33}, {}, &g4)), r1);
  // The default generator follows manual_seed.
  manual_seed(5);
  auto d1 = values(rand({17}));
  manual_seed(5);
  EXPECT_EQ(values(rand({17})), d1);
  // Copying a generator copies its position.
  Generator g5(9);
  rand({5}, {}, &g5);
  Generator g6 = g5;
  EXPECT_EQ(values(randn({8}, {}, &g5)), values(randn({8}, {}, &g6)));
}

TEST(Random, ThreadCountDoesNotChangeResults) {
  const int saved = omp_get_max_threads();
  auto draw = [](int threads) {
    omp_set_num_threads(threads);
    Generator g(2024);
    auto n = randn({1000000}, {}, &g).to_vector<float>();
    auto u = rand({1000003}, {}, &g).to_vector<float>();
    n.insert(n.end(), u.begin(), u.end());
    return n;
  };
  auto one = draw(1), two = draw(2);
  omp_set_num_threads(saved);
  EXPECT_EQ(one, two);
}

TEST(Random, DistributionMoments) {
  Generator g(77);
  auto n = values(randn({1000000}, {}, &g));
  Moments m = moments(n);
  EXPECT_NEAR(m.mean, 0.0, 5e-3);
  EXPECT_NEAR(m.std, 1.0, 5e-3);
  // About 68.3% within one sigma.
  const double within = std::count_if(n.begin(), n.end(), [](double v) { return std::abs(v) < 1; }) / 1e6;
  EXPECT_NEAR(within, 0.6827, 3e-3);

  auto nm = values(normal({200000}, 3.0, 0.5, DType::f64, &g));
  m = moments(nm);
  EXPECT_NEAR(m.mean, 3.0, 1e-2);
  EXPECT_NEAR(m.std, 0.5, 1e-2);

  auto u = values(uniform({200000}, -2, 6, {}, &g));
  EXPECT_GE(*std::min_element(u.begin(), u.end()), -2);
  EXPECT_LT(*std::max_element(u.begin(), u.end()), 6);
  m = moments(u);
  EXPECT_NEAR(m.mean, 2.0, 0.03);
  EXPECT_NEAR(m.std, 8 / std::sqrt(12.0), 0.02);

  auto ri = randint(-3, 4, {70000}, DType::i64, &g).to_vector<int64_t>();
  std::vector<int> counts(7, 0);
  for (int64_t v : ri) {
    ASSERT_GE(v, -3);
    ASSERT_LT(v, 4);
    ++counts[static_cast<size_t>(v + 3)];
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);

  auto bm = bernoulli({100000}, 0.3, Device::cpu(), &g);
  EXPECT_EQ(bm.dtype(), DType::boolean);
  EXPECT_NEAR(sum(bm).item() / 1e5, 0.3, 0.01);

  auto p = randperm(1000, &g).to_vector<int64_t>();
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[static_cast<size_t>(i)], i);
  int fixed = 0;
  for (int64_t i = 0; i < 1000; ++i) fixed += p[static_cast<size_t>(i)] == i;
  EXPECT_LT(fixed, 10);  // a permutation, not the identity

  EXPECT_THROW(randn({2}, DType::i64), DTypeError);
  EXPECT_THROW(randint(3, 3, {2}), ValueError);
  EXPECT_THROW(bernoulli({2}, 1.5), ValueError);
  EXPECT_THROW(normal({2}, 0, -1), ValueError);
}

TEST(Dropout, KeepsAboutOneMinusPAndScales) {
  Tensor x = ones({1000, 200});
  for (double p : {0.1, 0.5, 0.8}) {
    Generator g(11);
    Tensor y = dropout(x, p, true, &g);
    auto yv = values(y);
    int64_t kept = 0;
    for (double v : yv) {
      if (v != 0) {
        ++kept;
        ASSERT_NEAR(v, 1 / (1 - p), 1e-6);
      }
    }
    EXPECT_NEAR(static_cast<double>(kept) / 2e5, 1 - p, 0.01) << p;
    EXPECT_NEAR(mean(y).item(), 1.0, 0.03) << p;  // inverted dropout keeps the expectation
  }
}

TEST(Dropout, EvalIsIdentitySameSeedSameMask) {
  manual_seed(12);
  Tensor x = randn({37, 29});
  Tensor e = dropout(x, 0.5, false);
  EXPECT_EQ(values(e), values(x));
  EXPECT_EQ(values(dropout(x, 0.0, true)), values(x));
  EXPECT_EQ(values(dropout(x, 1.0, true)), std::vector<double>(x.numel(), 0.0));
  Generator g1(3), g2(3), g3(4);
  auto a = values(dropout(x, 0.3, true, &g1)), b = values(dropout(x, 0.3, true, &g2)),
       c = values(dropout(x, 0.3, true, &g3));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // Values that survive are x / (1 - p) at the same positions.
  const auto xv = values(x);
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != 0) ASSERT_NEAR(a[i], xv[i] / 0.7, 1e-5);
  // Works on a non-contiguous input too.
  Generator g4(3), g5(3);
  Tensor mask = ne(dropout(ones({29, 37}), 0.3, true, &g5), 0.0).to(DType::f32);
  EXPECT_TRUE(all_close(values(dropout(x.t(), 0.3, true, &g4)), values(x.t() * mask / 0.7)));
  EXPECT_THROW(dropout(x, -0.1), ValueError);
  EXPECT_THROW(dropout(ones({2}, DType::i64), 0.5), DTypeError);
}

TEST(Dropout, FusedMaskIsBernoullisDrawOnAnyThreadCount) {
  // Odd sizes so Philox blocks (4 elements) and threading chunks straddle rows.
  manual_seed(21);
  Tensor x = randn({257, 301});
  const double p = 0.3;
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  Generator gm(7);
  const auto keep = bernoulli(x.shape(), 1.0 - p, Device::cpu(), &gm).to_vector<bool>();
  const auto xv = x.to_vector<float>();
  for (int threads : {1, 2, 3}) {
#ifdef _OPENMP
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
#endif
    Generator g(7);
    Tensor xg = x.detach().requires_grad_(true);
    Tensor y = dropout(xg, p, true, &g);
    EXPECT_EQ(g.offset(), gm.offset()) << "the fused path reserves what bernoulli reserves";
    const auto yv = y.to_vector<float>();
    for (size_t i = 0; i < yv.size(); ++i)
      ASSERT_EQ(yv[i], xv[i] * (keep[i] ? scale : 0.0f)) << "element " << i << " threads " << threads;
    Tensor up = randn(x.shape());
    y.backward(up);
    const auto gv = xg.grad().to_vector<float>(), uv = up.to_vector<float>();
    for (size_t i = 0; i < gv.size(); ++i) ASSERT_EQ(gv[i], uv[i] * (keep[i] ? scale : 0.0f)) << "element " << i;
#ifdef _OPENMP
    omp_set_num_threads(before);
#endif
  }
}
