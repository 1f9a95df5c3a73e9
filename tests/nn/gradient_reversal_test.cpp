// GradientReversal module and DANN's lambda schedule.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/ops.h"
#include "nn/container.h"
#include "nn/gradient_reversal.h"
#include "nn/linear.h"

using namespace graft;
using namespace graft::nn;

TEST(GradientReversalModule, FlipsAndScalesTheGradientReachingTheFeatures) {
  manual_seed(21);
  auto features = std::make_shared<Linear>(4, 3);
  auto reversal = std::make_shared<GradientReversal>(GradientReversalOptions{0.5});
  auto domain_head = std::make_shared<Linear>(3, 2);
  Sequential dann{features, reversal, domain_head};
  Tensor x = randn({5, 4});

  Tensor plain = domain_head->forward(features->forward(x));
  EXPECT_TRUE(allclose(dann.forward(x), plain, 0, 0));  // the identity forward
  square(plain).sum().backward();
  Tensor features_grad = clone(features->weight.grad()), head_grad = clone(domain_head->weight.grad());
  features->weight.set_grad(Tensor());
  domain_head->weight.set_grad(Tensor());

  square(dann.forward(x)).sum().backward();
  EXPECT_TRUE(allclose(features->weight.grad(), features_grad * -0.5, 1e-6, 1e-7));  // reversed below the layer
  EXPECT_TRUE(allclose(domain_head->weight.grad(), head_grad, 0, 0));              // untouched above it
  EXPECT_TRUE(reversal->named_parameters().empty());
  EXPECT_EQ(reversal->repr(), "GradientReversal(lambda=0.5)");
}

TEST(GradientReversalModule, SetLambdaFollowsASchedule) {
  GradientReversal reversal;
  EXPECT_EQ(reversal.lambda(), 1.0);
  Tensor x = randn({3}).requires_grad_();
  for (double progress : {0.0, 0.25, 1.0}) {
    reversal.set_lambda(dann_lambda(progress));
    x.set_grad(Tensor());
    reversal.forward(x).sum().backward();
    EXPECT_TRUE(allclose(x.grad(), full({3}, -dann_lambda(progress)), 0, 1e-7)) << progress;
  }
  EXPECT_THROW(reversal.set_lambda(INFINITY), ValueError);
  EXPECT_THROW(GradientReversal(GradientReversalOptions{NAN}), ValueError);
}

TEST(GradientReversalModule, DannScheduleRisesFromZeroTowardsOne) {
  EXPECT_EQ(dann_lambda(0.0), 0.0);
  EXPECT_NEAR(dann_lambda(1.0), 2.0 / (1.0 + std::exp(-10.0)) - 1.0, 1e-15);
  EXPECT_GT(dann_lambda(1.0), 0.999);
  double previous = -1.0;
  for (int i = 0; i <= 10; ++i) {
    const double lambda = dann_lambda(i / 10.0);
    EXPECT_GT(lambda, previous);
    previous = lambda;
  }
  EXPECT_NEAR(dann_lambda(0.5, 2.0), 2.0 / (1.0 + std::exp(-1.0)) - 1.0, 1e-15);
  EXPECT_THROW(dann_lambda(-0.1), ValueError);
  EXPECT_THROW(dann_lambda(1.5), ValueError);
  EXPECT_THROW(dann_lambda(NAN), ValueError);
}
