// GradScaler (torch.cuda.amp.GradScaler's semantics): scale, unscale_ giving the true gradients, a
// NaN/inf gradient skipping the step and backing the scale off, growth after growth_interval clean
// steps, the once-per-step rules, a disabled scaler passing through, and the state_dict round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "autograd/ops.h"
#include "tensor/error.h"
#include "tensor/factory.h"
#include "train/optim/grad_scaler.h"
#include "train/optim/sgd.h"

using namespace graft;
using namespace graft::optim;

namespace {

Tensor param(std::vector<float> values) {
  return from_vector<float>(values, {static_cast<int64_t>(values.size())}).requires_grad_();
}

void set_grad(const Tensor& p, std::vector<float> grad) { p.set_grad(from_vector<float>(grad, p.shape())); }

}  // namespace

TEST(GradScaler, DefaultsAreTorchs) {
  GradScaler scaler;
  EXPECT_EQ(scaler.get_scale(), 65536.0);
  EXPECT_EQ(scaler.options().growth_factor, 2.0);
  EXPECT_EQ(scaler.options().backoff_factor, 0.5);
  EXPECT_EQ(scaler.options().growth_interval, 2000);
  EXPECT_TRUE(scaler.is_enabled());
}

TEST(GradScaler, RejectsBadOptions) {
  EXPECT_THROW(GradScaler({.init_scale = 0.0}), ValueError);
  EXPECT_THROW(GradScaler({.growth_factor = 1.0}), ValueError);
  EXPECT_THROW(GradScaler({.backoff_factor = 1.0}), ValueError);
  EXPECT_THROW(GradScaler({.growth_interval = 0}), ValueError);
}

TEST(GradScaler, ScaledBackwardThenUnscaleGivesTheTrueGradients) {
  Tensor w = param({1.5f, -2.0f, 0.25f});
  const Tensor x = from_vector<float>({3.0f, 0.5f, -4.0f}, {3});
  SGD optimizer({w}, {.lr = 0.1});
  GradScaler scaler({.init_scale = 1024.0});
  const Tensor loss = sum(w * x);
  const Tensor scaled = scaler.scale(loss);
  EXPECT_FLOAT_EQ(static_cast<float>(scaled.item()), static_cast<float>(loss.item() * 1024.0));
  scaled.backward();
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{3072.0f, 512.0f, -4096.0f}));
  scaler.unscale_(optimizer);
  EXPECT_EQ(w.grad().to_vector<float>(), x.to_vector<float>());  // the true d loss / d w
  EXPECT_FALSE(scaler.found_inf(optimizer));
  EXPECT_THROW(scaler.unscale_(optimizer), ValueError);  // once per step
  EXPECT_TRUE(scaler.step(optimizer));                   // no second unscale
  EXPECT_THROW(scaler.step(optimizer), ValueError);
  const auto updated = w.to_vector<float>();
  EXPECT_FLOAT_EQ(updated[0], 1.5f - 0.1f * 3.0f);
  EXPECT_FLOAT_EQ(updated[2], 0.25f + 0.1f * 4.0f);
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 1024.0);  // one clean step of 2000: no growth yet
  EXPECT_EQ(scaler.growth_tracker(), 1);
}

TEST(GradScaler, NonFiniteGradientSkipsTheStepAndHalvesTheScale) {
  for (float bad : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                    std::numeric_limits<float>::quiet_NaN()}) {
    Tensor a = param({1.0f, 2.0f}), b = param({3.0f});
    SGD optimizer({a, b}, {.lr = 0.5});
    GradScaler scaler({.init_scale = 256.0});
    set_grad(a, {256.0f, 512.0f});
    set_grad(b, {bad});
    EXPECT_FALSE(scaler.step(optimizer));  // unscales, finds the bad value, does not step
    EXPECT_TRUE(scaler.found_inf(optimizer));
    EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1.0f, 2.0f}));  // parameters unchanged
    EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{3.0f}));
    EXPECT_EQ(optimizer.steps_taken(), 0);
    scaler.update();
    EXPECT_EQ(scaler.get_scale(), 128.0);
    EXPECT_EQ(scaler.growth_tracker(), 0);
    EXPECT_FALSE(scaler.found_inf(optimizer));  // update() starts a new step
  }
}

TEST(GradScaler, GrowsAfterGrowthIntervalCleanSteps) {
  Tensor w = param({1.0f});
  SGD optimizer({w}, {.lr = 0.01});
  GradScaler scaler({.init_scale = 8.0, .growth_interval = 3});
  auto clean_step = [&] {
    set_grad(w, {8.0f});
    EXPECT_TRUE(scaler.step(optimizer));
    scaler.update();
  };
  clean_step();
  clean_step();
  EXPECT_EQ(scaler.get_scale(), 8.0);
  EXPECT_EQ(scaler.growth_tracker(), 2);
  clean_step();
  EXPECT_EQ(scaler.get_scale(), 16.0);
  EXPECT_EQ(scaler.growth_tracker(), 0);
  // An overflow resets the count: three more clean steps are needed after it.
  clean_step();
  set_grad(w, {std::numeric_limits<float>::infinity()});
  EXPECT_FALSE(scaler.step(optimizer));
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 8.0);
  clean_step();
  clean_step();
  EXPECT_EQ(scaler.get_scale(), 8.0);
  clean_step();
  EXPECT_EQ(scaler.get_scale(), 16.0);
}

TEST(GradScaler, UpdateWithoutAnInfCheckIsAnError) {
  GradScaler scaler;
  EXPECT_THROW(scaler.update(), ValueError);
}

TEST(GradScaler, ParametersWithoutGradientsAreSkipped) {
  Tensor used = param({1.0f}), unused = param({2.0f});
  SGD optimizer({used, unused}, {.lr = 1.0});
  GradScaler scaler({.init_scale = 4.0});
  set_grad(used, {4.0f});
  EXPECT_TRUE(scaler.step(optimizer));
  EXPECT_FALSE(unused.grad().defined());
  EXPECT_EQ(used.to_vector<float>(), (std::vector<float>{0.0f}));  // 1 - 1.0 * (4 / 4)
}

TEST(GradScaler, DisabledPassesThrough) {
  Tensor w = param({1.0f});
  SGD optimizer({w}, {.lr = 1.0});
  GradScaler scaler({.enabled = false});
  EXPECT_FALSE(scaler.is_enabled());
  EXPECT_EQ(scaler.get_scale(), 1.0);
  const Tensor loss = sum(w * 3.0);
  EXPECT_EQ(scaler.scale(loss).item(), loss.item());
  set_grad(w, {std::numeric_limits<float>::infinity()});
  scaler.unscale_(optimizer);  // no-op
  EXPECT_TRUE(scaler.step(optimizer));  // steps even so: a disabled scaler checks nothing
  scaler.update();
}

TEST(GradScaler, StateDictRoundTrip) {
  Tensor w = param({1.0f});
  SGD optimizer({w}, {.lr = 0.01});
  GradScaler scaler({.init_scale = 32.0, .growth_factor = 4.0, .backoff_factor = 0.25, .growth_interval = 5});
  set_grad(w, {std::numeric_limits<float>::quiet_NaN()});
  scaler.step(optimizer);
  scaler.update();  // 32 * 0.25 = 8
  set_grad(w, {1.0f});
  scaler.step(optimizer);
  scaler.update();  // tracker 1
  const nlohmann::json state = scaler.state_dict();
  EXPECT_EQ(state.at("scale").get<double>(), 8.0);
  EXPECT_EQ(state.at("growth_tracker").get<int64_t>(), 1);

  GradScaler restored;
  restored.load_state_dict(nlohmann::json::parse(state.dump()));  // through text, as a checkpoint
  EXPECT_EQ(restored.get_scale(), 8.0);
  EXPECT_EQ(restored.growth_tracker(), 1);
  EXPECT_EQ(restored.options().growth_factor, 4.0);
  EXPECT_EQ(restored.options().backoff_factor, 0.25);
  EXPECT_EQ(restored.options().growth_interval, 5);
  EXPECT_EQ(restored.state_dict(), state);

  // Bad states are rejected and change nothing.
  nlohmann::json missing = state;
  missing.erase("scale");
  EXPECT_THROW(restored.load_state_dict(missing), FormatError);
  nlohmann::json negative = state;
  negative["scale"] = -1.0;
  EXPECT_THROW(restored.load_state_dict(negative), ValueError);
  nlohmann::json tracker = state;
  tracker["growth_tracker"] = 9;  // past growth_interval 5
  EXPECT_THROW(restored.load_state_dict(tracker), ValueError);
  EXPECT_THROW(restored.load_state_dict(nlohmann::json::array()), FormatError);
  EXPECT_EQ(restored.state_dict(), state);
}
