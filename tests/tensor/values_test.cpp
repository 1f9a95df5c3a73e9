// Values of the ops against plain loops on random inputs: odd sizes, broadcasting,
// non-contiguous views.
#include <gtest/gtest.h>

#include <cmath>
#include <omp.h>

#include "autograd/ops.h"
#include "tensor/ops.h"

using namespace graft;

namespace {
void expect_near(const std::vector<double>& a, const std::vector<double>& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tol * (1 + std::abs(b[i]))) << "element " << i;
}
}  // namespace

TEST(Values, BroadcastBinaryOnNonContiguousViews) {
  manual_seed(100);
  Tensor a = randn({7, 5}).t();  // [5, 7], non-contiguous
  Tensor b = randn({7});
  ASSERT_FALSE(a.is_contiguous());
  auto av = a.contiguous().to_vector<double>(), bv = b.to_vector<double>();
  std::vector<double> sum(35), prod(35), quot(35), mx(35);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 7; ++j) {
      const double x = av[i * 7 + j], y = bv[j];
      sum[i * 7 + j] = x + y;
      prod[i * 7 + j] = x * y;
      quot[i * 7 + j] = x / y;
      mx[i * 7 + j] = std::max(x, y);
    }
  expect_near((a + b).to_vector<double>(), sum, 1e-6);
  expect_near((a * b).to_vector<double>(), prod, 1e-6);
  expect_near((a / b).to_vector<double>(), quot, 1e-5);
  expect_near(maximum(a, b).to_vector<double>(), mx, 0);
}

TEST(Values, UnaryAgainstLibm) {
  Tensor x = linspace(-3, 3, 101);
  auto xv = x.to_vector<double>();
  auto check = [&](const Tensor& got, double (*f)(double)) {
    std::vector<double> want;
    for (double v : xv) want.push_back(f(v));
    expect_near(got.to_vector<double>(), want, 1e-6);
  };
  check(exp(x), [](double v) { return std::exp(v); });
  check(tanh(x), [](double v) { return std::tanh(v); });
  check(sigmoid(x), [](double v) { return 1 / (1 + std::exp(-v)); });
  check(relu(x), [](double v) { return v > 0 ? v : 0.0; });
  check(gelu(x), [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); });
  check(gelu(x, GeluApproximation::tanh),
        [](double v) { return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))); });
  check(clamp(x, -1.0, 0.5), [](double v) { return std::min(std::max(v, -1.0), 0.5); });
  check(abs(x), [](double v) { return std::abs(v); });
  check(pow(x, 3.0), [](double v) { return v * v * v; });
}

TEST(Values, ReductionsOverAnyDims) {
  manual_seed(101);
  Tensor x = randn({3, 4, 5}, DType::f64);
  auto v = x.to_vector<double>();
  std::vector<double> s(4, 0), m(4, -INFINITY);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 5; ++k) {
        s[j] += v[(i * 4 + j) * 5 + k];
        m[j] = std::max(m[j], v[(i * 4 + j) * 5 + k]);
      }
  expect_near(sum(x, {0, -1}).to_vector<double>(), s, 1e-12);
  EXPECT_EQ(sum(x, {0, 2}, true).shape(), (Shape{1, 4, 1}));
  expect_near(max(x.permute({1, 0, 2}).reshape({4, 15}), 1).first.to_vector<double>(), m, 0);
  double total = 0;
  for (double e : v) total += e;
  const double mu = total / 60;
  double ss = 0;
  for (double e : v) ss += (e - mu) * (e - mu);
  EXPECT_NEAR(var(x).item(), ss / 59, 1e-12);
  EXPECT_NEAR(mean(x).item(), mu, 1e-12);
  auto am = argmax(from_vector<float>({1, 5, 5, 2}), 0);
  EXPECT_EQ(am.item<int64_t>(), 1);  // first of ties
}

TEST(Values, SoftmaxIsStableAndNormalised) {
  Tensor x = from_vector<float>({1000, 1001, 1002, -5, 0, 5}, {2, 3});
  Tensor p = softmax(x, 1);
  auto pv = p.to_vector<double>();
  EXPECT_NEAR(pv[0] + pv[1] + pv[2], 1.0, 1e-6);
  EXPECT_NEAR(pv[2], std::exp(2.0) / (1 + std::exp(1.0) + std::exp(2.0)), 1e-6);
  EXPECT_NEAR(log_softmax(x, 1).to_vector<double>()[0], -std::log(1 + std::exp(1.0) + std::exp(2.0)), 1e-4);  // f32 ulp at 1000 is 6e-5
}

TEST(Values, MatmulAgainstLoops) {
  manual_seed(102);
  Tensor a = randn({2, 1, 5, 7}), b = randn({3, 7, 4}).transpose(1, 2).transpose(1, 2);
  Tensor c = matmul(a, b);
  EXPECT_EQ(c.shape(), (Shape{2, 3, 5, 4}));
  auto av = a.to_vector<double>(), bv = b.contiguous().to_vector<double>(), cv = c.to_vector<double>();
  for (int p = 0; p < 2; ++p)
    for (int q = 0; q < 3; ++q)
      for (int i = 0; i < 5; ++i)
        for (int j = 0; j < 4; ++j) {
          double s = 0;
          for (int k = 0; k < 7; ++k) s += av[(p * 5 + i) * 7 + k] * bv[(q * 7 + k) * 4 + j];
          ASSERT_NEAR(cv[((p * 3 + q) * 5 + i) * 4 + j], s, 1e-4);
        }
  EXPECT_EQ(matmul(randn({7}), randn({7})).dim(), 0);
  EXPECT_EQ(matmul(randn({7}), randn({7, 3})).shape(), (Shape{3}));
}

TEST(Values, LayerNormAndCrossEntropy) {
  Tensor x = from_vector<double>({1, 2, 3, 4, -1, 0, 1, 6}, {2, 4});
  auto y = layer_norm(x, {4}).to_vector<double>();
  const double mu = 2.5, sd = std::sqrt(1.25 + 1e-5);
  EXPECT_NEAR(y[0], (1 - mu) / sd, 1e-9);
  Tensor logits = from_vector<double>({2, 1, 0, 0, 0, 3}, {2, 3});
  Tensor target = from_vector<int64_t>({0, 2});
  auto lse = [](double a, double b, double c) { return std::log(std::exp(a) + std::exp(b) + std::exp(c)); };
  const double l0 = lse(2, 1, 0) - 2, l1 = lse(0, 0, 3) - 3;
  EXPECT_NEAR(cross_entropy(logits, target).item(), (l0 + l1) / 2, 1e-12);
  CrossEntropyOptions o;
  o.weight = from_vector<double>({2.0, 1.0, 0.5});
  EXPECT_NEAR(cross_entropy(logits, target, o).item(), (2 * l0 + 0.5 * l1) / 2.5, 1e-12);
  o.ignore_index = 2;
  EXPECT_NEAR(cross_entropy(logits, target, o).item(), l0, 1e-12);
}

TEST(Values, RandomNumbersIgnoreThreadCount) {
  auto draw = [](int threads) {
    omp_set_num_threads(threads);
    Generator g(1234);
    return randn({1 << 20}, {}, &g).to_vector<float>();
  };
  const int saved = omp_get_max_threads();
  auto one = draw(1), two = draw(2);
  omp_set_num_threads(saved);
  EXPECT_EQ(one, two);
  double s = 0, ss = 0;
  for (float v : one) {
    s += v;
    ss += double(v) * v;
  }
  EXPECT_NEAR(s / one.size(), 0.0, 0.01);
  EXPECT_NEAR(ss / one.size(), 1.0, 0.01);
}

TEST(Values, ViewsShareStorage) {
  Tensor x = arange(0, 24, 1, DType::f32).reshape({2, 3, 4});
  Tensor v = x.permute({2, 0, 1}).narrow(0, 1, 2);
  EXPECT_EQ(v.impl()->storage, x.impl()->storage);
  EXPECT_EQ(v.select(0, 0).select(0, 1).to_vector<float>(), (std::vector<float>{13, 17, 21}));
  EXPECT_THROW(x.transpose(0, 1).view({6, 4}), ShapeError);
  EXPECT_EQ(x.transpose(0, 1).reshape({6, 4}).shape(), (Shape{6, 4}));
  EXPECT_EQ(x.expand({5, 2, 3, 4}).strides()[0], 0);
}
