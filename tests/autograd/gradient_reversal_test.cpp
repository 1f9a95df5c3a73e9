// Gradient reversal: the backward is -lambda times the finite-difference Jacobian of the forward.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/gradcheck_helpers.h"
#include "autograd/gradient_reversal.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"

using namespace graft;
using graft::testing::expect_gradcheck;
using graft::testing::rnd;

namespace {

// A non-linear map so the Jacobian is not the identity: f(x) = tanh(x) * sum(x) + x^2.
Tensor features(const Tensor& x) { return tanh(x) * sum(x) + square(x); }

// Checks, in f64, that backward through gradient_reversal(features(x), lambda) equals -lambda times
// the central-difference Jacobian of its forward (which is features' own).
void expect_reversed_jacobian(double lambda) {
  Tensor x = rnd({2, 3}).requires_grad_();
  Tensor out = gradient_reversal(features(x), lambda);
  const int64_t n = x.numel();
  const double eps = 1e-6;
  for (int64_t r = 0; r < out.numel(); ++r) {
    x.set_grad(Tensor());
    Tensor seed = zeros(out.shape(), DType::f64);
    static_cast<double*>(seed.data_ptr())[r] = 1.0;
    out.backward(seed, /*retain_graph=*/true);
    ASSERT_TRUE(x.grad().defined());  // lambda = 0 gives zeros, not a missing gradient
    const auto analytical = x.grad().to_vector<double>();
    NoGradGuard no_grad;
    double* p = static_cast<double*>(x.data_ptr());
    for (int64_t c = 0; c < n; ++c) {
      const double original = p[c];
      p[c] = original + eps;
      const double plus = gradient_reversal(features(x), lambda).to_vector<double>()[static_cast<size_t>(r)];
      p[c] = original - eps;
      const double minus = gradient_reversal(features(x), lambda).to_vector<double>()[static_cast<size_t>(r)];
      p[c] = original;
      const double numerical = (plus - minus) / (2 * eps);
      EXPECT_NEAR(analytical[static_cast<size_t>(c)], -lambda * numerical, 1e-5 + 1e-3 * std::abs(lambda * numerical))
          << "lambda " << lambda << ", output " << r << ", input " << c;
    }
  }
}

}  // namespace

TEST(GradientReversal, BackwardIsMinusLambdaTimesTheNumericalJacobian) {
  manual_seed(40);
  expect_reversed_jacobian(1.0);
  expect_reversed_jacobian(0.37);
  expect_reversed_jacobian(2.5);
}

TEST(GradientReversal, LambdaZeroBlocksTheGradientWithZeros) {
  manual_seed(41);
  expect_reversed_jacobian(0.0);
  Tensor x = rnd({4}).requires_grad_();
  gradient_reversal(x * 3.0, 0.0).sum().backward();
  EXPECT_EQ(abs(x.grad()).sum().item(), 0.0);
}

TEST(GradientReversal, TwoReversalsWithInverseLambdasAreTheIdentityForGradcheck) {
  manual_seed(42);
  expect_gradcheck([](auto& v) { return gradient_reversal(gradient_reversal(features(v[0]), 4.0), 0.25); },
                   {rnd({3, 2})});
}

TEST(GradientReversal, ForwardIsTheIdentityAndInputsAreChecked) {
  Tensor x = rnd({2, 2});
  EXPECT_TRUE(gradient_reversal(x, 1.0).is_same(x));  // nothing requires grad: x itself
  Tensor leaf = rnd({2, 2}).requires_grad_();
  Tensor y = gradient_reversal(leaf, 1.0);
  EXPECT_TRUE(allclose(y, leaf, 0, 0));
  ASSERT_TRUE(y.grad_fn());
  EXPECT_EQ(y.grad_fn()->name(), "gradient_reversal");
  EXPECT_THROW(gradient_reversal(x, NAN), ValueError);
  EXPECT_THROW(gradient_reversal(x, INFINITY), ValueError);
  EXPECT_THROW(gradient_reversal(from_vector<int64_t>({1, 2}), 1.0), DTypeError);
}
