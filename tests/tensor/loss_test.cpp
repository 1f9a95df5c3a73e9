// Losses against hand computation with PyTorch's semantics: cross_entropy (class weights,
// ignore_index, label_smoothing, probability targets, [N, C, d] layout), nll, mse, l1,
// bce_with_logits (weight, pos_weight).
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/ops.h"
#include "reference.h"

using namespace graft;
using namespace graft::testing;

namespace {

// log_softmax of each row of a [N, C] row-major buffer.
std::vector<double> log_softmax_rows(const std::vector<double>& x, int64_t N, int64_t C) {
  std::vector<double> out(x.size());
  for (int64_t n = 0; n < N; ++n) {
    double m = -INFINITY, z = 0;
    for (int64_t c = 0; c < C; ++c) m = std::max(m, x[static_cast<size_t>(n * C + c)]);
    for (int64_t c = 0; c < C; ++c) z += std::exp(x[static_cast<size_t>(n * C + c)] - m);
    for (int64_t c = 0; c < C; ++c) out[static_cast<size_t>(n * C + c)] = x[static_cast<size_t>(n * C + c)] - m - std::log(z);
  }
  return out;
}

// PyTorch cross_entropy with class-index targets: returns the per-sample losses and the mean.
struct CeRef {
  std::vector<double> per_sample;
  double sum = 0, mean = 0;
};
CeRef cross_entropy_ref(const std::vector<double>& logits, const std::vector<int64_t>& target, int64_t N, int64_t C,
                        const std::vector<double>& weight, int64_t ignore, double eps) {
  const auto lp = log_softmax_rows(logits, N, C);
  CeRef r;
  double wsum = 0;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t t = target[static_cast<size_t>(n)];
    if (t == ignore) {
      r.per_sample.push_back(0);
      continue;
    }
    auto w = [&](int64_t c) { return weight.empty() ? 1.0 : weight[static_cast<size_t>(c)]; };
    const double nll = -w(t) * lp[static_cast<size_t>(n * C + t)];
    double smooth = 0;
    for (int64_t c = 0; c < C; ++c) smooth -= w(c) * lp[static_cast<size_t>(n * C + c)];
    smooth /= static_cast<double>(C);
    const double l = (1 - eps) * nll + eps * smooth;
    r.per_sample.push_back(l);
    r.sum += l;
    wsum += w(t);
  }
  r.mean = r.sum / wsum;
  return r;
}

}  // namespace

TEST(Loss, CrossEntropyAgainstHandComputation) {
  manual_seed(70);
  const int64_t N = 9, C = 5;
  for (DType dt : {DType::f32, DType::f64}) {
    const double tol = dt == DType::f64 ? 1e-12 : 2e-5;
    Tensor logits = randn({C, N}, dt).t() * 2.0;  // non-contiguous
    auto tv = randint(0, C, {N}).to_vector<int64_t>();
    tv[2] = -100;  // default ignore_index
    tv[6] = -100;
    Tensor target = from_vector(tv);
    const auto lv = values(logits);
    const std::vector<double> wv{0.2, 1.5, 1.0, 3.0, 0.7};
    Tensor weight = from_vector(wv).to(dt);
    for (double eps : {0.0, 0.1, 0.35}) {
      for (bool weighted : {false, true}) {
        CrossEntropyOptions o;
        o.label_smoothing = eps;
        if (weighted) o.weight = weight;
        const CeRef r = cross_entropy_ref(lv, tv, N, C, weighted ? wv : std::vector<double>{}, -100, eps);
        EXPECT_NEAR(cross_entropy(logits, target, o).item(), r.mean, tol) << eps << " " << weighted;
        o.reduction = Reduction::sum;
        EXPECT_NEAR(cross_entropy(logits, target, o).item(), r.sum, tol * 10) << eps << " " << weighted;
        o.reduction = Reduction::none;
        Tensor none = cross_entropy(logits, target, o);
        EXPECT_EQ(none.shape(), (Shape{N}));
        EXPECT_TRUE(all_close(values(none), r.per_sample, tol, tol)) << eps << " " << weighted;
      }
    }
    // A custom ignore_index and i32 targets.
    CrossEntropyOptions o;
    o.ignore_index = tv[0];
    std::vector<int64_t> t2 = tv;
    t2[2] = t2[6] = 1;
    const CeRef r = cross_entropy_ref(lv, t2, N, C, {}, tv[0], 0.0);
    EXPECT_NEAR(cross_entropy(logits, from_vector(t2).to(DType::i32), o).item(), r.mean, tol);
  }
}

TEST(Loss, CrossEntropySpatialAndProbabilityTargets) {
  manual_seed(71);
  // [N, C, d] logits with [N, d] targets equal the [N*d, C] flattening.
  Tensor x = randn({2, 4, 3}, DType::f64);
  Tensor t = randint(0, 4, {2, 3});
  Tensor flat = x.permute({0, 2, 1}).reshape({6, 4});
  EXPECT_NEAR(cross_entropy(x, t).item(), cross_entropy(flat, t.reshape({6})).item(), 1e-12);
  CrossEntropyOptions none;
  none.reduction = Reduction::none;
  EXPECT_EQ(cross_entropy(x, t, none).shape(), (Shape{2, 3}));
  // [C] logits with a 0-d target.
  Tensor one = from_vector<double>({1.0, 2.0, 0.5});
  const auto lp = log_softmax_rows({1.0, 2.0, 0.5}, 1, 3);
  EXPECT_NEAR(cross_entropy(one, scalar_tensor(1, DType::i64)).item(), -lp[1], 1e-12);
  // Probability targets: -sum_c p_c logp_c, averaged over samples; smoothing mixes in uniform.
  Tensor logits = randn({5, 4}, DType::f64);
  Tensor probs = softmax(randn({5, 4}, DType::f64), 1);
  const auto lv = log_softmax_rows(values(logits), 5, 4), pv = values(probs);
  for (double eps : {0.0, 0.2}) {
    double total = 0;
    for (int64_t i = 0; i < 20; ++i) total -= ((1 - eps) * pv[static_cast<size_t>(i)] + eps / 4) * lv[static_cast<size_t>(i)];
    CrossEntropyOptions o;
    o.label_smoothing = eps;
    EXPECT_NEAR(cross_entropy(logits, probs, o).item(), total / 5, 1e-12) << eps;
  }
}

TEST(Loss, CrossEntropyErrors) {
  Tensor x = zeros({3, 4});
  EXPECT_TRUE(throws_with<IndexError>([&] { cross_entropy(x, from_vector<int64_t>({0, 4, 1})); }, {"cross_entropy", "4"}));
  EXPECT_TRUE(throws_with<IndexError>([&] { cross_entropy(x, from_vector<int64_t>({0, -1, 1})); }, {"cross_entropy"}));
  EXPECT_TRUE(throws_with<ShapeError>([&] { cross_entropy(x, from_vector<int64_t>({0, 1})); }, {"cross_entropy", "[2]", "[3, 4]"}));
  CrossEntropyOptions o;
  o.weight = ones({3});
  EXPECT_THROW(cross_entropy(x, from_vector<int64_t>({0, 1, 2}), o), ShapeError);
  o.weight = ones({4}, DType::f64);
  EXPECT_THROW(cross_entropy(x, from_vector<int64_t>({0, 1, 2}), o), DTypeError);
  CrossEntropyOptions s;
  s.label_smoothing = 1.5;
  EXPECT_THROW(cross_entropy(x, from_vector<int64_t>({0, 1, 2}), s), ValueError);
  EXPECT_THROW(cross_entropy(zeros({3, 4}, DType::i64), from_vector<int64_t>({0, 1, 2})), DTypeError);
}

TEST(Loss, NllLoss) {
  manual_seed(72);
  Tensor logp = log_softmax(randn({6, 3}, DType::f64), 1);
  std::vector<int64_t> tv{0, 2, 1, 1, -100, 2};
  const std::vector<double> wv{1.0, 2.0, 0.5};
  const auto lv = values(logp);
  double num = 0, den = 0, plain = 0;
  int count = 0;
  for (size_t n = 0; n < 6; ++n) {
    if (tv[n] == -100) continue;
    num -= wv[static_cast<size_t>(tv[n])] * lv[n * 3 + static_cast<size_t>(tv[n])];
    den += wv[static_cast<size_t>(tv[n])];
    plain -= lv[n * 3 + static_cast<size_t>(tv[n])];
    ++count;
  }
  Tensor target = from_vector(tv);
  EXPECT_NEAR(nll_loss(logp, target).item(), plain / count, 1e-12);
  CrossEntropyOptions o;
  o.weight = from_vector(wv);
  EXPECT_NEAR(nll_loss(logp, target, o).item(), num / den, 1e-12);
  o.reduction = Reduction::sum;
  EXPECT_NEAR(nll_loss(logp, target, o).item(), num, 1e-12);
  EXPECT_NEAR(cross_entropy(logp, target).item(), plain / count, 1e-12);  // log_softmax is idempotent
  EXPECT_THROW(nll_loss(logp, from_vector<double>({0, 1, 2, 0, 1, 2})), DTypeError);
}

TEST(Loss, MseAndL1) {
  manual_seed(73);
  Tensor a = randn({7, 3}).t(), b = randn({3, 7});
  const auto av = values(a), bv = values(b);
  double se = 0, ae = 0;
  std::vector<double> sq, ab;
  for (size_t i = 0; i < av.size(); ++i) {
    sq.push_back((av[i] - bv[i]) * (av[i] - bv[i]));
    ab.push_back(std::abs(av[i] - bv[i]));
    se += sq.back();
    ae += ab.back();
  }
  EXPECT_NEAR(mse_loss(a, b).item(), se / 21, 1e-5);
  EXPECT_NEAR(mse_loss(a, b, Reduction::sum).item(), se, 1e-4);
  EXPECT_TRUE(all_close(values(mse_loss(a, b, Reduction::none)), sq));
  EXPECT_NEAR(l1_loss(a, b).item(), ae / 21, 1e-5);
  EXPECT_NEAR(l1_loss(a, b, Reduction::sum).item(), ae, 1e-4);
  EXPECT_TRUE(all_close(values(l1_loss(a, b, Reduction::none)), ab));
  EXPECT_TRUE(throws_with<ShapeError>([&] { mse_loss(a, randn({3})); }, {"mse_loss", "[3, 7]", "[3]"}));
  EXPECT_TRUE(throws_with<ShapeError>([&] { l1_loss(a, randn({7, 3})); }, {"l1_loss", "[3, 7]", "[7, 3]"}));
}

TEST(Loss, BceWithLogits) {
  manual_seed(74);
  Tensor x = randn({6, 4}, DType::f64) * 4.0;
  Tensor y = rand({6, 4}, DType::f64);  // soft targets
  Tensor pw = from_vector<double>({1.0, 2.0, 0.5, 3.0});
  Tensor w = rand({6, 1}, DType::f64);
  const auto xv = values(x), yv = values(y), pwv = values(pw), wv = values(w);
  auto ref = [&](bool use_pw, bool use_w) {
    std::vector<double> out;
    for (size_t i = 0; i < 24; ++i) {
      const double s = 1 / (1 + std::exp(-xv[i]));
      const double p = use_pw ? pwv[i % 4] : 1.0;
      double l = -(p * yv[i] * std::log(s) + (1 - yv[i]) * std::log(1 - s));
      if (use_w) l *= wv[i / 4];
      out.push_back(l);
    }
    return out;
  };
  auto mean_of = [](const std::vector<double>& v) {
    double s = 0;
    for (double e : v) s += e;
    return s / static_cast<double>(v.size());
  };
  BceWithLogitsOptions o;
  EXPECT_NEAR(binary_cross_entropy_with_logits(x, y, o).item(), mean_of(ref(false, false)), 1e-10);
  o.pos_weight = pw;
  EXPECT_NEAR(binary_cross_entropy_with_logits(x, y, o).item(), mean_of(ref(true, false)), 1e-10);
  o.weight = w;
  o.reduction = Reduction::none;
  EXPECT_TRUE(all_close(values(binary_cross_entropy_with_logits(x, y, o)), ref(true, true), 1e-10, 1e-10));
  // Stable for huge logits: no inf/nan where the loss is finite.
  Tensor big = from_vector<float>({100.f, -100.f, 100.f, -100.f});
  Tensor t = from_vector<float>({1.f, 0.f, 0.f, 1.f});
  auto bl = values(binary_cross_entropy_with_logits(big, t, BceWithLogitsOptions{Tensor(), Tensor(), Reduction::none}));
  EXPECT_NEAR(bl[0], 0.0, 1e-6);
  EXPECT_NEAR(bl[1], 0.0, 1e-6);
  EXPECT_NEAR(bl[2], 100.0, 1e-4);
  EXPECT_NEAR(bl[3], 100.0, 1e-4);
  EXPECT_THROW(binary_cross_entropy_with_logits(x, rand({6, 3}, DType::f64)), ShapeError);
}
