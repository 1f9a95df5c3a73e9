// The optimisation switches of a run config do what they say: parameter groups (depth, decay /
// no decay, L1), learning-rate schedules over a run's steps, and class weights.
#include "train/cli/optimization.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "nn/container.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "tensor/error.h"

namespace graft::cli {
namespace {

// "0" (Linear 4->4) is depth 1, "1" (LayerNorm) depth 1, "2" (Linear 4->2) the head, depth 0.
struct TinyModel {
  std::shared_ptr<nn::Sequential> module = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(4, 4), std::make_shared<nn::LayerNorm>(4), std::make_shared<nn::Linear>(4, 2)});
  std::set<const TensorImpl*> all() const {
    std::set<const TensorImpl*> s;
    for (const auto& [name, p] : module->named_parameters()) s.insert(p.impl());
    return s;
  }
  static int64_t depth(const std::string& name) { return name.rfind("2.", 0) == 0 ? 0 : 1; }
};

const optim::ParamGroup& group(const optim::Optimizer& o, const std::string& name) {
  for (const auto& g : o.param_groups())
    if (g.name == name) return g;
  throw ValueError("no group " + name);
}

TEST(Optimization, GroupsByDepthWithANoDecayGroupAndL1OnTheDecayedOnes) {
  RunConfig c;
  c.optim.lr = 1e-3;
  c.optim.weight_decay = 0.05;
  c.optim.l1 = 1e-4;
  c.strategy.layer_lr_decay = 0.5;
  c.strategy.head_lr = 1e-2;
  TinyModel m;
  const auto o = make_optimizer(c, *m.module, TinyModel::depth, m.all());
  ASSERT_EQ(o->param_groups().size(), 4u);
  const auto& decay1 = group(*o, "depth1.decay");
  EXPECT_EQ(decay1.param_names, (std::vector<std::string>{"0.weight"}));
  EXPECT_DOUBLE_EQ(decay1.lr, 5e-4);  // 1e-3 * 0.5^1
  EXPECT_DOUBLE_EQ(decay1.weight_decay, 0.05);
  EXPECT_DOUBLE_EQ(decay1.l1, 1e-4);
  const auto& no_decay1 = group(*o, "depth1.no_decay");  // biases and the LayerNorm's weight
  EXPECT_EQ(no_decay1.param_names, (std::vector<std::string>{"0.bias", "1.weight", "1.bias"}));
  EXPECT_DOUBLE_EQ(no_decay1.weight_decay, 0.0);
  EXPECT_DOUBLE_EQ(no_decay1.l1, 0.0);
  EXPECT_DOUBLE_EQ(group(*o, "depth0.decay").lr, 1e-2);  // head_lr, no decay factor at depth 0
  // Frozen parameters are left out; nothing trainable is an error.
  std::set<const TensorImpl*> head_only;
  for (const auto& [name, p] : m.module->named_parameters())
    if (name.rfind("2.", 0) == 0) head_only.insert(p.impl());
  EXPECT_EQ(make_optimizer(c, *m.module, TinyModel::depth, head_only)->param_groups().size(), 2u);
  EXPECT_THROW(make_optimizer(c, *m.module, TinyModel::depth, {}), ValueError);
}

// The head group's lr at every step of a 20-step run.
std::vector<double> lrs(const std::string& type, double warmup_ratio) {
  RunConfig c;
  c.optim.lr = 1.0;
  c.schedule.type = type;
  c.schedule.warmup_ratio = warmup_ratio;
  TinyModel m;
  const auto o = make_optimizer(c, *m.module, TinyModel::depth, m.all());
  const auto s = make_scheduler(c.schedule, *o, 20);
  std::vector<double> out;
  for (int step = 0; step < 20; ++step) {
    out.push_back(o->param_groups().back().lr);
    s->step();
  }
  return out;
}

TEST(Optimization, SchedulesWarmUpThenDecayAsNamed) {
  const auto peak = [](const std::vector<double>& v) { return std::max_element(v.begin(), v.end()) - v.begin(); };
  const auto linear = lrs("linear", 0.2);  // 4 warmup steps: 0, .25, .5, .75, then 1 -> 0 linearly
  EXPECT_DOUBLE_EQ(linear[0], 0.0);
  EXPECT_DOUBLE_EQ(linear[2], 0.5);
  EXPECT_EQ(peak(linear), 4);
  EXPECT_NEAR(linear[12], 0.5, 1e-12);
  const auto cosine = lrs("cosine", 0.2);
  EXPECT_EQ(peak(cosine), 4);
  EXPECT_NEAR(cosine[12], 0.5, 1e-12);  // half-way through the decay: cos(pi/2)
  EXPECT_GT(cosine[8], linear[8]);      // a cosine stays high longer
  const auto constant = lrs("constant", 0.2);
  EXPECT_DOUBLE_EQ(constant[1], 0.25);
  EXPECT_DOUBLE_EQ(constant[19], 1.0);
  const auto stlr = lrs("slanted_triangular", 0.1);  // short rise (cut at 10%), long fall, floor 1/32
  EXPECT_EQ(peak(stlr), 2);
  EXPECT_LT(stlr[0], 0.1);
  EXPECT_LT(stlr[19], 0.15);
  const auto one_cycle = lrs("one_cycle", 0.3);  // rise over 30%, anneal to far below the start
  EXPECT_NEAR(static_cast<double>(peak(one_cycle)), 6.0, 1.0);
  EXPECT_LT(one_cycle[19], one_cycle[0]);
}

TEST(Optimization, ClassWeightsBalancedGivenOrNone) {
  TrainConfig t;
  EXPECT_FALSE(class_weights(t, {0, 0, 0, 1}, 2).defined());
  t.class_weights = "balanced";  // n / (C n_c): 4 / (2 * 3), 4 / (2 * 1)
  EXPECT_EQ(class_weights(t, {0, 0, 0, 1}, 2).to_vector<float>(), (std::vector<float>{4.0f / 6, 2.0f}));
  EXPECT_THROW(class_weights(t, {0, 0, 0}, 2), ValueError);  // label 1 has no example
  t.class_weights = "values";
  t.class_weight_values = {1.0, 3.0};
  EXPECT_EQ(class_weights(t, {0, 1}, 2).to_vector<float>(), (std::vector<float>{1.0f, 3.0f}));
  EXPECT_THROW(class_weights(t, {0, 1}, 3), ValueError);
}

}  // namespace
}  // namespace graft::cli
