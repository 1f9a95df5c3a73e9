// f64 finite-difference checks of every differentiable elementwise op, with broadcasting and
// non-contiguous inputs.
#include <gtest/gtest.h>

#include "autograd/gradcheck_helpers.h"

using namespace graft;
using graft::testing::expect_gradcheck;
using graft::testing::rnd;

TEST(GradcheckElementwise, BinaryWithBroadcasting) {
  manual_seed(1);
  auto a = rnd({3, 1, 4}), b = rnd({5, 1}, 0.5, 1.5);
  expect_gradcheck([](auto& x) { return x[0] + x[1]; }, {a, b});
  expect_gradcheck([](auto& x) { return x[0] - x[1]; }, {a, b});
  expect_gradcheck([](auto& x) { return x[0] * x[1]; }, {a, b});
  expect_gradcheck([](auto& x) { return x[0] / x[1]; }, {a, b});
  expect_gradcheck([](auto& x) { return pow(x[1], x[0]); }, {a, b});
  expect_gradcheck([](auto& x) { return maximum(x[0], x[1]); }, {a, b});
  expect_gradcheck([](auto& x) { return minimum(x[0], x[1]); }, {a, b});
  expect_gradcheck([](auto& x) { return 2.0 - x[0] * 3.0 + 1.0 / x[1]; }, {a, b});
}

TEST(GradcheckElementwise, NonContiguousInputs) {
  manual_seed(2);
  auto a = rnd({4, 3}), b = rnd({3, 4});
  expect_gradcheck([](auto& x) { return x[0].t() * x[1] + x[1].t().t(); }, {a, b});
  expect_gradcheck([](auto& x) { return exp(x[0].slice(0, 0, 4, 2)) * x[1].narrow(1, 1, 2).t(); }, {a, b});
}

TEST(GradcheckElementwise, Unary) {
  manual_seed(3);
  auto x = rnd({2, 5});
  auto pos = rnd({2, 5}, 0.2, 2.0);
  expect_gradcheck([](auto& v) { return neg(v[0]); }, {x});
  expect_gradcheck([](auto& v) { return exp(v[0]); }, {x});
  expect_gradcheck([](auto& v) { return log(v[0]); }, {pos});
  expect_gradcheck([](auto& v) { return log1p(v[0]); }, {pos});
  expect_gradcheck([](auto& v) { return sqrt(v[0]); }, {pos});
  expect_gradcheck([](auto& v) { return rsqrt(v[0]); }, {pos});
  expect_gradcheck([](auto& v) { return abs(v[0]); }, {x});
  expect_gradcheck([](auto& v) { return square(v[0]); }, {x});
  expect_gradcheck([](auto& v) { return pow(v[0], 3.0); }, {x});
  expect_gradcheck([](auto& v) { return pow(v[0], 0.5); }, {pos});
  expect_gradcheck([](auto& v) { return clamp(v[0], -0.5, 0.5); }, {x});
  expect_gradcheck([](auto& v) { return clamp_min(v[0], 0.1); }, {x});
  expect_gradcheck([](auto& v) { return tanh(v[0]); }, {x});
  expect_gradcheck([](auto& v) { return sigmoid(v[0]); }, {x});
  expect_gradcheck([](auto& v) { return relu(v[0]); }, {x});
  expect_gradcheck([](auto& v) { return gelu(v[0]); }, {x});
  expect_gradcheck([](auto& v) { return gelu(v[0], GeluApproximation::tanh); }, {x});
  expect_gradcheck([](auto& v) { return erf(v[0]); }, {x});
  expect_gradcheck([](auto& v) { return sin(v[0]) + cos(v[0]); }, {x});
}

TEST(GradcheckElementwise, WhereAndMaskedFill) {
  manual_seed(4);
  auto a = rnd({3, 4}), b = rnd({4});
  auto mask = gt(rnd({3, 4}), 0.0);
  expect_gradcheck([mask](auto& x) { return where(mask, x[0], x[1]); }, {a, b});
  expect_gradcheck([mask](auto& x) { return masked_fill(x[0], mask, -2.0); }, {a});
}
