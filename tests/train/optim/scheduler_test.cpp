// Scheduler contract beyond the golden curves: argument checks, state round trips, metric use.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tensor/factory.h"
#include "train/optim/adam.h"
#include "train/optim/scheduler.h"
#include "train/optim/sgd.h"

using namespace graft;
using namespace graft::optim;

namespace {

std::vector<ParamGroup> two_groups(double lr0 = 0.1, double lr1 = 0.02) {
  std::vector<ParamGroup> groups(2);
  groups[0].params = {zeros({2}).requires_grad_()};
  groups[1].params = {zeros({3}).requires_grad_()};
  groups[0].lr = lr0;
  groups[1].lr = lr1;
  return groups;
}

std::vector<double> lrs(const Optimizer& optimizer) {
  std::vector<double> out;
  for (const auto& g : optimizer.param_groups()) out.push_back(g.lr);
  return out;
}

}  // namespace

TEST(Scheduler, InvalidArgumentsThrow) {
  SGD sgd(two_groups());
  EXPECT_THROW(LinearWithWarmupLR(sgd, 10, 5), ValueError);  // warmup > total
  EXPECT_THROW(LinearWithWarmupLR(sgd, 0, 0), ValueError);   // total <= 0
  EXPECT_THROW(CosineWithWarmupLR(sgd, -1, 5), ValueError);
  EXPECT_THROW(CosineWithWarmupLR(sgd, 1, 5, 0.0), ValueError);
  EXPECT_THROW(ConstantLR(sgd, -2), ValueError);
  EXPECT_THROW(StepLR(sgd, 0), ValueError);
  EXPECT_THROW(ExponentialLR(sgd, std::nan("")), ValueError);
  EXPECT_THROW(SlantedTriangularLR(sgd, 5, 0.1), ValueError);  // floor(0.5) = 0 warmup steps
  EXPECT_THROW(SlantedTriangularLR(sgd, 100, 1.5), ValueError);
  EXPECT_THROW(SlantedTriangularLR(sgd, 100, 0.1, 0.5), ValueError);
  EXPECT_THROW(OneCycleLR(sgd, {.max_lr = {1.0, 2.0, 3.0}, .total_steps = 10}), ValueError);  // 3 values, 2 groups
  EXPECT_THROW(OneCycleLR(sgd, {.total_steps = 0}), ValueError);
  EXPECT_THROW(OneCycleLR(sgd, {.total_steps = 10, .pct_start = 1.5}), ValueError);
  EXPECT_THROW(OneCycleLR(sgd, {.total_steps = 10, .pct_start = 0.1}), ValueError);  // empty first phase
  EXPECT_THROW(ReduceLROnPlateau(sgd, {.factor = 1.0}), ValueError);
  EXPECT_THROW(ReduceLROnPlateau(sgd, {.min_lr = {0.0, 0.0, 0.0}}), ValueError);
  EXPECT_THROW(LambdaLR(sgd, [](int64_t) { return -1.0; }), ValueError);  // negative lr
  EXPECT_EQ(lrs(sgd), (std::vector<double>{0.1, 0.02})) << "failed constructions leave the lrs alone";
}

TEST(Scheduler, ScalesEachGroupFromItsInitialLr) {
  SGD sgd(two_groups());
  LinearWithWarmupLR sched(sgd, 2, 10);
  EXPECT_EQ(sched.last_step(), 0);
  EXPECT_EQ(lrs(sgd), (std::vector<double>{0.0, 0.0}));
  sched.step();
  EXPECT_EQ(lrs(sgd), (std::vector<double>{0.05, 0.01}));
  sgd.param_groups()[0].lr = 123.0;  // the schedule does not compound on a changed lr
  sched.step();
  EXPECT_EQ(lrs(sgd), (std::vector<double>{0.1, 0.02}));
  EXPECT_EQ(sched.last_lr(), lrs(sgd));
  EXPECT_THROW(sched.step(0.5), ValueError);  // a metric would be silently ignored
  EXPECT_FALSE(sched.needs_metric());
}

TEST(Scheduler, StateDictRoundTrip) {
  SGD a(two_groups());
  CosineWithWarmupLR first(a, 3, 20);
  for (int k = 0; k < 7; ++k) first.step();
  const auto state = nlohmann::json::parse(first.state_dict().dump());

  SGD b(two_groups());
  CosineWithWarmupLR second(b, 3, 20);
  second.load_state_dict(state);
  EXPECT_EQ(second.last_step(), 7);
  EXPECT_EQ(lrs(b), lrs(a));
  first.step();
  second.step();
  EXPECT_EQ(lrs(b), lrs(a));

  StepLR other(b, 3);
  EXPECT_THROW(other.load_state_dict(state), ValueError);  // another kind
  SGD c(two_groups());
  c.add_param_group([] { ParamGroup g; g.params = {zeros({1}).requires_grad_()}; return g; }());
  CosineWithWarmupLR three(c, 3, 20);
  const auto before = lrs(c);
  EXPECT_THROW(three.load_state_dict(state), ValueError);  // 2 groups saved, 3 here
  EXPECT_EQ(lrs(c), before);
}

TEST(Scheduler, OneCycleCyclesAdamBeta1AndRoundTrips) {
  Adam adam(two_groups());
  OneCycleLR sched(adam, {.max_lr = {0.5}, .total_steps = 10, .base_momentum = 0.8, .max_momentum = 0.9});
  EXPECT_EQ(adam.param_groups()[0].beta1, 0.9);
  EXPECT_NEAR(adam.param_groups()[1].lr, 0.5 / 25.0, 1e-15);  // one max_lr for both groups
  for (int k = 0; k < 3; ++k) sched.step();
  EXPECT_LT(adam.param_groups()[0].beta1, 0.9);
  EXPECT_EQ(sched.last_momentum()[0], adam.param_groups()[0].beta1);

  Adam other(two_groups());
  OneCycleLR resumed(other, {.max_lr = {0.5}, .total_steps = 10, .base_momentum = 0.8, .max_momentum = 0.9});
  resumed.load_state_dict(sched.state_dict());
  EXPECT_EQ(lrs(other), lrs(adam));
  EXPECT_EQ(other.param_groups()[1].beta1, adam.param_groups()[1].beta1);
  for (int k = 3; k < 9; ++k) sched.step();
  sched.step();  // step total_steps: allowed, holds the final lr
  EXPECT_NEAR(adam.param_groups()[0].lr, 0.5 / 25.0 / 1e4, 1e-18);
  EXPECT_THROW(sched.step(), ValueError);
}

TEST(Scheduler, PlateauNeedsMetricAndRoundTrips) {
  SGD sgd(two_groups());
  ReduceLROnPlateau plateau(sgd, {.factor = 0.5, .patience = 1});
  EXPECT_TRUE(plateau.needs_metric());
  EXPECT_THROW(plateau.step(), ValueError);
  const auto fresh = nlohmann::json::parse(plateau.state_dict().dump());  // best = +inf saved as null
  EXPECT_TRUE(fresh.at("best").is_null());
  plateau.step(1.0);
  plateau.step(2.0);
  EXPECT_EQ(lrs(sgd), (std::vector<double>{0.1, 0.02}));
  plateau.step(std::nan(""));  // NaN counts as no improvement: the second bad step reduces
  EXPECT_EQ(lrs(sgd), (std::vector<double>{0.05, 0.01}));
  EXPECT_EQ(plateau.best(), 1.0);

  SGD other(two_groups());
  ReduceLROnPlateau resumed(other, {.factor = 0.5, .patience = 1});
  resumed.load_state_dict(nlohmann::json::parse(plateau.state_dict().dump()));
  EXPECT_EQ(lrs(other), lrs(sgd));
  EXPECT_EQ(resumed.best(), 1.0);
  EXPECT_EQ(resumed.last_step(), 3);
  resumed.load_state_dict(fresh);
  EXPECT_TRUE(std::isinf(resumed.best()));
  EXPECT_THROW(resumed.load_state_dict(nlohmann::json{{"scheduler", "StepLR"}}), ValueError);
}

TEST(Scheduler, OneCycleNeedsMomentumOptimizerOnlyWhenCycling) {
  SGD sgd(two_groups());
  OneCycleLR plain(sgd, {.total_steps = 20, .cycle_momentum = false});
  EXPECT_TRUE(plain.last_momentum().empty());
  EXPECT_EQ(sgd.param_groups()[0].momentum, 0.0);
  EXPECT_NEAR(sgd.param_groups()[0].lr, 0.1 / 25.0, 1e-15);  // empty max_lr: each group's initial_lr
  EXPECT_NEAR(sgd.param_groups()[1].lr, 0.02 / 25.0, 1e-15);
}
