// Elementwise ops against std:: references on random inputs: odd sizes, broadcasting in both
// directions, non-contiguous (transposed, sliced, expanded) operands.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "autograd/ops.h"
#include "reference.h"

using namespace graft;
using namespace graft::testing;

namespace {

struct Operand {
  Tensor t;
  std::vector<double> v;  // row-major values of t
};

// A random [rows, cols] f32 tensor laid out as a transposed view of a [cols, rows] tensor.
Operand transposed(int64_t rows, int64_t cols, double lo = -2, double hi = 2) {
  Tensor t = uniform({cols, rows}, lo, hi).t();
  return {t, values(t)};
}

}  // namespace

TEST(Elementwise, BinaryArithmeticBroadcastNonContiguous) {
  manual_seed(1);
  const std::vector<std::pair<Shape, Shape>> shapes{
      {{7, 5}, {5}}, {{7, 1}, {1, 5}}, {{1}, {3, 1, 9}}, {{2, 3, 1}, {1, 13}}, {{97}, {97}}, {{}, {4, 3}}};
  for (const auto& [as, bs] : shapes) {
    // a: non-contiguous where it has >= 2 dims; b: contiguous.
    Tensor a = as.size() >= 2 ? uniform({as.rbegin(), as.rend()}, -2, 2).permute([&] {
      std::vector<int64_t> o;
      for (int64_t d = static_cast<int64_t>(as.size()) - 1; d >= 0; --d) o.push_back(d);
      return o;
    }())
                              : uniform(as, -2, 2);
    ASSERT_EQ(a.shape(), as);
    Tensor b = uniform(bs, 0.5, 2);  // away from 0 for div
    const auto av = values(a), bv = values(b);
    const Shape os = broadcast(as, bs);
    auto check = [&](const Tensor& got, std::function<double(double, double)> f, const char* name) {
      EXPECT_EQ(got.shape(), os) << name;
      EXPECT_TRUE(all_close(values(got), broadcast_binary(av, as, bv, bs, f), 1e-6, 1e-6))
          << name << " " << shape_str(as) << " " << shape_str(bs);
    };
    check(add(a, b), std::plus<double>(), "add");
    check(sub(a, b), std::minus<double>(), "sub");
    check(mul(a, b), std::multiplies<double>(), "mul");
    check(div(a, b), std::divides<double>(), "div");
    check(sub(b, a), [](double x, double y) { return y - x; }, "sub reversed");
    check(maximum(a, b), [](double x, double y) { return std::max(x, y); }, "maximum");
    check(minimum(a, b), [](double x, double y) { return std::min(x, y); }, "minimum");
    check(pow(abs(a) + 0.1, b), [](double x, double y) { return std::pow(std::abs(x) + 0.1, y); }, "pow");
  }
}

TEST(Elementwise, ScalarOverloadsAndOperators) {
  manual_seed(2);
  Operand a = transposed(5, 9);
  auto each = [&](std::function<double(double)> f) {
    std::vector<double> out;
    for (double x : a.v) out.push_back(f(x));
    return out;
  };
  EXPECT_TRUE(all_close(values(a.t + 1.5), each([](double x) { return x + 1.5; })));
  EXPECT_TRUE(all_close(values(a.t - 1.5), each([](double x) { return x - 1.5; })));
  EXPECT_TRUE(all_close(values(a.t * 3.0), each([](double x) { return x * 3; })));
  EXPECT_TRUE(all_close(values(a.t / 4.0), each([](double x) { return x / 4; })));
  EXPECT_TRUE(all_close(values(2.0 - a.t), each([](double x) { return 2 - x; })));
  EXPECT_TRUE(all_close(values(2.0 / (a.t + 5.0)), each([](double x) { return 2 / (x + 5); })));
  EXPECT_TRUE(all_close(values(-a.t), each([](double x) { return -x; })));
  EXPECT_TRUE(all_close(values(neg(a.t)), each([](double x) { return -x; })));
  EXPECT_EQ((a.t * 2.0).dtype(), DType::f32);  // scalars adopt the tensor's dtype
  Tensor d = from_vector<double>({1, 2});
  EXPECT_EQ((d + 1.0).dtype(), DType::f64);
}

TEST(Elementwise, UnaryAgainstStd) {
  manual_seed(3);
  Operand a = transposed(13, 11, -3, 3);
  Tensor pos = abs(a.t) + 0.01;  // for log, sqrt, rsqrt
  const auto pv = values(pos);
  auto check = [](const Tensor& got, const std::vector<double>& in, std::function<double(double)> f, const char* name,
                  double tol = 2e-6) {
    std::vector<double> want;
    for (double x : in) want.push_back(f(x));
    EXPECT_TRUE(all_close(values(got), want, tol, tol)) << name;
    EXPECT_EQ(got.shape(), (Shape{13, 11})) << name;
  };
  check(exp(a.t), a.v, [](double x) { return std::exp(x); }, "exp");
  check(log(pos), pv, [](double x) { return std::log(x); }, "log");
  check(log1p(pos), pv, [](double x) { return std::log1p(x); }, "log1p");
  check(sqrt(pos), pv, [](double x) { return std::sqrt(x); }, "sqrt");
  check(rsqrt(pos), pv, [](double x) { return 1 / std::sqrt(x); }, "rsqrt");
  check(abs(a.t), a.v, [](double x) { return std::abs(x); }, "abs");
  check(square(a.t), a.v, [](double x) { return x * x; }, "square");
  check(sign(a.t), a.v, [](double x) { return double((x > 0) - (x < 0)); }, "sign");
  check(pow(a.t, 3.0), a.v, [](double x) { return x * x * x; }, "pow 3");
  check(pow(a.t, 2.0), a.v, [](double x) { return x * x; }, "pow 2");
  check(pow(pos, 0.5), pv, [](double x) { return std::sqrt(x); }, "pow 0.5");
  check(pow(pos, -1.5), pv, [](double x) { return std::pow(x, -1.5); }, "pow -1.5", 1e-5);
  check(clamp(a.t, -1.0, 0.5), a.v, [](double x) { return std::min(std::max(x, -1.0), 0.5); }, "clamp");
  check(clamp(a.t, std::nullopt, 0.5), a.v, [](double x) { return std::min(x, 0.5); }, "clamp max only");
  check(clamp_min(a.t, -0.25), a.v, [](double x) { return std::max(x, -0.25); }, "clamp_min");
  check(clamp_max(a.t, 0.25), a.v, [](double x) { return std::min(x, 0.25); }, "clamp_max");
  check(tanh(a.t), a.v, [](double x) { return std::tanh(x); }, "tanh");
  check(sigmoid(a.t), a.v, [](double x) { return 1 / (1 + std::exp(-x)); }, "sigmoid");
  check(relu(a.t), a.v, [](double x) { return x > 0 ? x : 0; }, "relu");
  check(gelu(a.t), a.v, [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, "gelu erf");
  check(gelu(a.t, GeluApproximation::tanh), a.v,
        [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); },
        "gelu tanh");
  check(erf(a.t), a.v, [](double x) { return std::erf(x); }, "erf");
  check(sin(a.t), a.v, [](double x) { return std::sin(x); }, "sin");
  check(cos(a.t), a.v, [](double x) { return std::cos(x); }, "cos");
}

TEST(Elementwise, UnaryF64IsExactToDoublePrecision) {
  Tensor x = linspace(-4, 4, 37, DType::f64).slice(0, 0, 37, 2);  // strided
  const auto xv = values(x);
  std::vector<double> g, s;
  for (double v : xv) {
    g.push_back(0.5 * v * (1 + std::erf(v / std::sqrt(2.0))));
    s.push_back(1 / (1 + std::exp(-v)));
  }
  EXPECT_TRUE(all_close(values(gelu(x)), g, 1e-14, 1e-15));
  EXPECT_TRUE(all_close(values(sigmoid(x)), s, 1e-14, 1e-15));
}

TEST(Elementwise, SpecialValues) {
  Tensor x = from_vector<float>({0.f, -1.f, INFINITY, -INFINITY, NAN});
  auto l = values(log(x));
  EXPECT_EQ(l[0], -INFINITY);
  EXPECT_TRUE(std::isnan(l[1]));
  EXPECT_EQ(l[2], INFINITY);
  EXPECT_TRUE(std::isnan(l[4]));
  auto sg = values(sigmoid(x));
  EXPECT_EQ(sg[2], 1.0);
  EXPECT_EQ(sg[3], 0.0);
  auto r = values(relu(x));
  EXPECT_EQ(r[2], INFINITY);
  EXPECT_EQ(r[3], 0.0);
  EXPECT_TRUE(std::isnan(values(clamp(x, -1.0, 1.0))[4]));  // NaN passes through clamp
  EXPECT_EQ(x.to_vector<bool>().size(), 5u);
  EXPECT_EQ(isnan(x).to_vector<bool>(), (std::vector<bool>{false, false, false, false, true}));
  EXPECT_EQ(isinf(x).to_vector<bool>(), (std::vector<bool>{false, false, true, true, false}));
  EXPECT_EQ(isnan(x).dtype(), DType::boolean);
  // maximum/minimum propagate NaN from either side.
  Tensor n = from_vector<float>({NAN, 1.f}), m = from_vector<float>({0.f, NAN});
  for (double v : values(maximum(n, m))) EXPECT_TRUE(std::isnan(v));
  for (double v : values(minimum(n, m))) EXPECT_TRUE(std::isnan(v));
  // Large inputs stay finite where the math says so.
  Tensor big = from_vector<float>({-100.f, 100.f});
  EXPECT_EQ(values(sigmoid(big)), (std::vector<double>{values(sigmoid(big))[0], 1.0}));
  EXPECT_GE(values(sigmoid(big))[0], 0.0);
  EXPECT_EQ(values(tanh(big)), (std::vector<double>{-1.0, 1.0}));
  EXPECT_EQ(values(gelu(big)), (std::vector<double>{-0.0, 100.0}));
}

TEST(Elementwise, ComparisonsAndLogic) {
  manual_seed(4);
  Tensor a = randint(0, 4, {6, 5}, DType::f32).t();  // ties are common
  Tensor b = randint(0, 4, {5, 1}, DType::f32);
  const auto av = values(a), bv = values(b);
  struct Cmp {
    Tensor (*op)(const Tensor&, const Tensor&);
    std::function<bool(double, double)> f;
    const char* name;
  };
  const std::vector<Cmp> cmps{{eq, std::equal_to<double>(), "eq"},     {ne, std::not_equal_to<double>(), "ne"},
                              {lt, std::less<double>(), "lt"},         {le, std::less_equal<double>(), "le"},
                              {gt, std::greater<double>(), "gt"},      {ge, std::greater_equal<double>(), "ge"}};
  for (const auto& c : cmps) {
    Tensor got = c.op(a, b);
    EXPECT_EQ(got.dtype(), DType::boolean) << c.name;
    EXPECT_EQ(got.shape(), (Shape{5, 6})) << c.name;
    auto want = broadcast_binary(av, a.shape(), bv, b.shape(), [&](double x, double y) { return c.f(x, y) ? 1.0 : 0.0; });
    EXPECT_EQ(values(got), want) << c.name;
  }
  auto scalar_want = [&](std::function<bool(double)> f) {
    std::vector<double> w;
    for (double x : av) w.push_back(f(x) ? 1 : 0);
    return w;
  };
  EXPECT_EQ(values(gt(a, 1.5)), scalar_want([](double x) { return x > 1.5; }));
  EXPECT_EQ(values(le(a, 2.0)), scalar_want([](double x) { return x <= 2; }));
  EXPECT_EQ(values(eq(a, 3.0)), scalar_want([](double x) { return x == 3; }));
  EXPECT_EQ(values(ne(a, 0.0)), scalar_want([](double x) { return x != 0; }));
  EXPECT_EQ(values(lt(a, 1.0)), scalar_want([](double x) { return x < 1; }));
  EXPECT_EQ(values(ge(a, 1.0)), scalar_want([](double x) { return x >= 1; }));

  Tensor p = gt(a, 1.0), q = lt(a, 3.0);
  const auto pv = values(p), qv = values(q);
  std::vector<double> and_w, or_w, not_w;
  for (size_t i = 0; i < pv.size(); ++i) {
    and_w.push_back(pv[i] && qv[i]);
    or_w.push_back(pv[i] || qv[i]);
    not_w.push_back(!pv[i]);
  }
  EXPECT_EQ(values(logical_and(p, q)), and_w);
  EXPECT_EQ(values(logical_or(p, q)), or_w);
  EXPECT_EQ(values(logical_not(p)), not_w);
  EXPECT_THROW(logical_and(a, a), DTypeError);
  EXPECT_THROW(logical_not(a), DTypeError);
  EXPECT_THROW(add(p, q), DTypeError);  // bool arithmetic is refused
}

TEST(Elementwise, WhereAndMaskedFill) {
  manual_seed(5);
  Tensor cond = bernoulli({4, 1, 6}, 0.5);
  Tensor a = randn({6, 3}).t().unsqueeze(0);  // [1, 3, 6], non-contiguous
  Tensor b = randn({4, 3, 1});
  Tensor w = where(cond, a, b);
  ASSERT_EQ(w.shape(), (Shape{4, 3, 6}));
  const auto cv = values(cond), av = values(a), bv = values(b), wv = values(w);
  for (int64_t i = 0; i < w.numel(); ++i) {
    auto idx = unravel(i, w.shape());
    const double want = cv[static_cast<size_t>(broadcast_index(idx, cond.shape()))]
                            ? av[static_cast<size_t>(broadcast_index(idx, a.shape()))]
                            : bv[static_cast<size_t>(broadcast_index(idx, b.shape()))];
    ASSERT_EQ(wv[static_cast<size_t>(i)], want) << i;
  }
  Tensor ws = where(cond, a, -7.0);
  EXPECT_EQ(ws.shape(), (Shape{4, 3, 6}));

  Tensor x = randn({3, 5});
  Tensor mask = from_vector<bool>({true, false, false, true, false}, {1, 5});
  Tensor mf = masked_fill(x, mask, -INFINITY);
  const auto xv = values(x), mv = values(mf);
  for (int64_t i = 0; i < 15; ++i) {
    const bool m = (i % 5 == 0) || (i % 5 == 3);
    EXPECT_EQ(mv[static_cast<size_t>(i)], m ? -INFINITY : xv[static_cast<size_t>(i)]);
  }
  EXPECT_THROW(masked_fill(x, ones({3, 5, 2}, DType::boolean), 0.0), ShapeError);  // mask must broadcast to x
  EXPECT_THROW(where(ones({3}), ones({3}), ones({3})), DTypeError);  // condition must be bool
}

TEST(Elementwise, LargeTensorsTakeTheParallelPath) {
  manual_seed(6);
  Tensor a = randn({1003, 517}), b = randn({517});
  Tensor c = a * b + 1.0;
  const auto av = values(a), bv = values(b), cv = values(c);
  for (size_t i = 0; i < av.size(); i += 97) ASSERT_NEAR(cv[i], av[i] * bv[i % 517] + 1, 1e-5) << i;
  Tensor t = a.t() * 2.0;  // strided input, big
  const auto tv = values(t);
  for (int64_t i = 0; i < t.numel(); i += 101) {
    auto idx = unravel(i, t.shape());
    ASSERT_FLOAT_EQ(static_cast<float>(tv[static_cast<size_t>(i)]), static_cast<float>(2 * av[static_cast<size_t>(idx[1] * 517 + idx[0])]));
  }
}

TEST(Elementwise, EmptyTensors) {
  Tensor e = zeros({0, 3});
  EXPECT_EQ((e + ones({3})).shape(), (Shape{0, 3}));
  EXPECT_EQ(exp(e).numel(), 0);
}

namespace {

// Distance in f32 ulps between two finite floats of any sign (adjacent floats are 1 apart).
int64_t ulp_distance(float a, float b) {
  auto ordered = [](float v) {
    int32_t i;
    std::memcpy(&i, &v, sizeof i);
    return i < 0 ? -static_cast<int64_t>(i & 0x7fffffff) : static_cast<int64_t>(i);
  };
  return std::llabs(ordered(a) - ordered(b));
}

// Φ(x) in double without cancellation: erfc for both signs.
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }
double normal_pdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI); }

// f32 inputs over GELU's whole range: a dense sweep, both tails, tiny and subnormal values.
std::vector<float> gelu_inputs() {
  std::vector<float> xs;
  for (int i = -20000; i <= 20000; ++i) xs.push_back(static_cast<float>(i) * 1e-3f);  // [-20, 20]
  for (double m = 1e-40; m < 1e30; m *= 1.37) {
    xs.push_back(static_cast<float>(m));
    xs.push_back(-static_cast<float>(m));
  }
  for (float v : {0.0f, -0.0f, 1e-45f, -1e-45f, 6.0f, -6.0f, 13.5f, -13.5f, 14.5f, -14.5f, 3.4e38f, -3.4e38f})
    xs.push_back(v);
  Generator g(5);
  for (float v : uniform({30001}, -9, 9, DType::f32, &g).to_vector<float>()) xs.push_back(v);
  return xs;
}

}  // namespace

TEST(Elementwise, GeluErfF32WithinOneUlpOfDouble) {
  const std::vector<float> xs = gelu_inputs();
  const Tensor x = from_vector(xs);
  const auto got = gelu(x).to_vector<float>();
  const auto strided = gelu(stack({x, x}, 1).select(1, 1)).to_vector<float>();  // the gather path
  int64_t worst = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double xd = xs[i];
    const float want = static_cast<float>(xd * normal_cdf(xd));
    const int64_t d = ulp_distance(got[i], want);
    worst = std::max(worst, d);
    ASSERT_LE(d, 1) << "gelu(" << xs[i] << ") = " << got[i] << ", double says " << want;
    ASSERT_EQ(std::signbit(got[i]), std::signbit(want)) << "gelu(" << xs[i] << ")";
    ASSERT_EQ(got[i], strided[i]) << "strided gelu(" << xs[i] << ")";
  }
  EXPECT_LE(worst, 1);
}

TEST(Elementwise, GeluErfGradientF32AgainstDouble) {
  const std::vector<float> xs = gelu_inputs();
  Tensor x = from_vector(xs).requires_grad_(true);
  Generator g(6);
  const Tensor up = uniform({static_cast<int64_t>(xs.size())}, -2, 2, DType::f32, &g);
  gelu(x).backward(up);
  const auto got = x.grad().to_vector<float>(), upv = up.to_vector<float>();
  for (size_t i = 0; i < xs.size(); ++i) {
    const double xd = xs[i], cdf = normal_cdf(xd), slope = xd * normal_pdf(xd);
    const double want = cdf + slope;
    // The f32 derivative is within 1 ulp of want, plus a hair near gelu's minimum (x ~ -0.75),
    // where Φ and x φ cancel; the product with the upstream gradient adds one rounding.
    const double deriv_tol = 0.6e-7 * std::abs(want) + 1e-12 * (cdf + std::abs(slope));
    // Below f32's normal range both roundings are to the subnormal spacing instead.
    const double subnormal = std::numeric_limits<float>::denorm_min() * (1.0 + std::abs(upv[i]));
    const double tol = std::abs(upv[i]) * deriv_tol + 0.6e-7 * std::abs(upv[i] * want) + subnormal;
    ASSERT_NEAR(got[i], upv[i] * want, tol) << "gelu'(" << xs[i] << ")";
  }
}

TEST(Elementwise, GeluErfSpecialValues) {
  const auto y = gelu(from_vector<float>({NAN, INFINITY, -INFINITY, -0.0f, 1e-3f})).to_vector<float>();
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], INFINITY);
  EXPECT_TRUE(std::isnan(y[2]));  // -inf * Φ(-inf) = -inf * 0, as the formula and PyTorch
  EXPECT_EQ(y[3], 0.0f);
  EXPECT_TRUE(std::signbit(y[3]));
  EXPECT_GT(y[4], 0.0f);
  Tensor x = from_vector<float>({NAN, 100.0f, -100.0f, 0.0f}).requires_grad_(true);
  gelu(x).backward(ones({4}));
  const auto d = x.grad().to_vector<float>();
  EXPECT_TRUE(std::isnan(d[0]));
  EXPECT_EQ(d[1], 1.0f);
  EXPECT_EQ(d[2], 0.0f);
  EXPECT_EQ(d[3], 0.5f);
}
