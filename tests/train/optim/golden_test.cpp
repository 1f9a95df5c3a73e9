// Optimizers and schedulers against PyTorch goldens (tests/golden/make_optim_golden.py, f64).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "train/optim/adam.h"
#include "train/optim/scheduler.h"
#include "train/optim/sgd.h"

using namespace graft;
using namespace graft::optim;
using nlohmann::json;

namespace {

json load_golden(const std::string& name) {
  const std::string path = std::string(GRAFT_TEST_DATA_DIR) + "/golden/optim/" + name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing golden " + path + ": run /usr/bin/python3 tests/golden/make_optim_golden.py");
  return json::parse(in);
}

// |a - b| <= rtol * |b| + atol, elementwise, with the index in the message.
void expect_close(const std::vector<double>& actual, const std::vector<double>& expected, double rtol, double atol,
                  const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (std::size_t k = 0; k < actual.size(); ++k)
    EXPECT_LE(std::abs(actual[k] - expected[k]), rtol * std::abs(expected[k]) + atol)
        << what << " [" << k << "]: " << actual[k] << " vs torch " << expected[k];
}

std::vector<ParamGroup> groups_from_json(const json& groups, const std::vector<Tensor>& params) {
  std::vector<ParamGroup> out;
  for (const auto& j : groups) {
    ParamGroup g;
    for (int index : j.at("params")) g.params.push_back(params.at(index));
    g.lr = j.at("lr");
    g.weight_decay = j.value("weight_decay", 0.0);
    g.l1 = j.value("l1", 0.0);
    g.momentum = j.value("momentum", 0.0);
    g.dampening = j.value("dampening", 0.0);
    g.nesterov = j.value("nesterov", false);
    g.beta1 = j.value("beta1", 0.9);
    g.beta2 = j.value("beta2", 0.999);
    g.eps = j.value("eps", 1e-8);
    g.amsgrad = j.value("amsgrad", false);
    out.push_back(std::move(g));
  }
  return out;
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& kind, std::vector<ParamGroup> groups) {
  if (kind == "SGD") return std::make_unique<SGD>(std::move(groups));
  if (kind == "Adam") return std::make_unique<Adam>(std::move(groups));
  if (kind == "AdamW") return std::make_unique<AdamW>(std::move(groups));
  throw std::runtime_error("unknown optimizer " + kind);
}

// Runs every optimizer config of the golden in `dtype` and compares each step's parameters.
void check_optimizer_goldens(DType dtype, double rtol, double atol) {
  const json golden = load_golden("optimizers.json");
  const json& problem = golden.at("problem");
  auto tensor = [&](const char* values, const Shape& shape) {
    return from_vector<double>(problem.at(values).get<std::vector<double>>(), shape).to(dtype);
  };
  const Tensor x = tensor("x", {6, 3}), y = tensor("y", {6, 4});
  for (const auto& [name, config] : golden.at("configs").items()) {
    SCOPED_TRACE(name);
    Tensor w = tensor("W", {4, 3}).requires_grad_();
    Tensor b = tensor("b", {4}).requires_grad_();
    const void* w_storage = w.data_ptr();
    auto optimizer = make_optimizer(config.at("optimizer"), groups_from_json(config.at("groups"), {w, b}));
    int step = 0;
    for (const auto& expected : config.at("trajectory")) {
      optimizer->zero_grad();
      Tensor loss = mse_loss(linear(x, w, b), y);
      loss.backward();
      optimizer->step();
      const std::string at = name + " step " + std::to_string(++step);
      expect_close({loss.item()}, {expected.at("loss").get<double>()}, rtol, atol, at + " loss");
      expect_close(w.to_vector<double>(), expected.at("W").get<std::vector<double>>(), rtol, atol, at + " W");
      expect_close(b.to_vector<double>(), expected.at("b").get<std::vector<double>>(), rtol, atol, at + " b");
    }
    EXPECT_EQ(w.data_ptr(), w_storage) << "the update must be in place";
    EXPECT_EQ(optimizer->steps_taken(), step);
  }
}

// Two groups of different base lr, as the golden's torch optimizer.
std::vector<ParamGroup> scheduler_groups(const json& golden) {
  const auto base = golden.at("base_lrs").get<std::vector<double>>();
  std::vector<ParamGroup> groups(2);
  groups[0].params = {zeros({2}, DType::f64).requires_grad_()};
  groups[1].params = {zeros({3}, DType::f64).requires_grad_()};
  groups[0].lr = base[0];
  groups[1].lr = base[1];
  groups[0].momentum = groups[1].momentum = 0.9;
  return groups;
}

std::unique_ptr<LRScheduler> make_scheduler(const std::string& name, const json& args, Optimizer& optimizer) {
  if (name == "constant" || name == "constant_warmup")
    return std::make_unique<ConstantLR>(optimizer, args.at("warmup_steps"));
  if (name == "linear_warmup")
    return std::make_unique<LinearWithWarmupLR>(optimizer, args.at("warmup_steps"), args.at("total_steps"));
  if (name.rfind("cosine", 0) == 0)
    return std::make_unique<CosineWithWarmupLR>(optimizer, args.at("warmup_steps"), args.at("total_steps"),
                                                args.at("num_cycles"));
  if (name.rfind("stlr", 0) == 0)
    return std::make_unique<SlantedTriangularLR>(optimizer, args.at("total_steps"), args.at("cut_frac"),
                                                 args.at("ratio"));
  if (name == "step_lr") return std::make_unique<StepLR>(optimizer, args.at("step_size"), args.at("gamma"));
  if (name == "exponential") return std::make_unique<ExponentialLR>(optimizer, args.at("gamma"));
  if (name.rfind("one_cycle", 0) == 0) {
    OneCycleOptions o;
    o.max_lr = args.at("max_lr").get<std::vector<double>>();
    o.total_steps = args.at("total_steps");
    o.pct_start = args.at("pct_start");
    o.anneal = args.at("anneal") == "cos" ? AnnealStrategy::cos : AnnealStrategy::linear;
    o.cycle_momentum = args.at("cycle_momentum");
    o.base_momentum = args.at("base_momentum");
    o.max_momentum = args.at("max_momentum");
    o.div_factor = args.at("div_factor");
    o.final_div_factor = args.at("final_div_factor");
    o.three_phase = args.at("three_phase");
    return std::make_unique<OneCycleLR>(optimizer, o);
  }
  if (name.rfind("plateau", 0) == 0) {
    PlateauOptions o;
    o.mode = args.at("mode") == "min" ? PlateauMode::min : PlateauMode::max;
    o.factor = args.at("factor");
    o.patience = args.at("patience");
    o.threshold = args.at("threshold");
    o.threshold_mode = args.at("threshold_mode") == "rel" ? ThresholdMode::rel : ThresholdMode::abs;
    o.cooldown = args.at("cooldown");
    o.min_lr = args.at("min_lr").get<std::vector<double>>();
    o.eps = args.at("eps");
    return std::make_unique<ReduceLROnPlateau>(optimizer, o);
  }
  throw std::runtime_error("no scheduler for golden curve " + name);
}

}  // namespace

TEST(OptimizerGolden, MatchesTorchInF64) { check_optimizer_goldens(DType::f64, 1e-10, 1e-13); }

TEST(OptimizerGolden, MatchesTorchInF32) { check_optimizer_goldens(DType::f32, 1e-5, 1e-6); }

TEST(SchedulerGolden, LrCurvesMatchTorch) {
  const json golden = load_golden("schedulers.json");
  int curves = 0;
  for (const auto& [name, curve] : golden.at("curves").items()) {
    SCOPED_TRACE(name);
    const json& args = curve.at("args");
    const bool adam = args.value("optimizer", "SGD") == "Adam";
    std::unique_ptr<Optimizer> optimizer;
    if (adam)
      optimizer = std::make_unique<Adam>(scheduler_groups(golden));
    else
      optimizer = std::make_unique<SGD>(scheduler_groups(golden));
    auto scheduler = make_scheduler(name, args, *optimizer);
    const auto& lrs = curve.at("lr");
    const bool one_cycle = name.rfind("one_cycle", 0) == 0;
    for (std::size_t step = 0; step < lrs.size(); ++step) {
      if (step > 0) {
        if (scheduler->needs_metric())
          scheduler->step(curve.at("metrics").at(step - 1).get<double>());
        else
          scheduler->step();
      }
      EXPECT_EQ(scheduler->last_step(), static_cast<int64_t>(step));
      std::vector<double> actual;
      for (const auto& g : optimizer->param_groups()) actual.push_back(g.lr);
      EXPECT_EQ(actual, scheduler->last_lr());
      auto expected = lrs[step].get<std::vector<double>>();
      // At step total_steps torch extrapolates past the schedule; graft holds the final lr.
      const bool past_end = one_cycle && step + 1 == lrs.size();
      if (past_end) {
        for (std::size_t g = 0; g < expected.size(); ++g)
          expected[g] = args.at("max_lr")[g].get<double>() / args.at("div_factor").get<double>() /
                        args.at("final_div_factor").get<double>();
      }
      expect_close(actual, expected, 1e-10, 1e-15, name + " lr at step " + std::to_string(step));
      if (curve.contains("momentum") && !past_end) {
        std::vector<double> momenta;
        for (const auto& g : optimizer->param_groups()) momenta.push_back(adam ? g.beta1 : g.momentum);
        expect_close(momenta, curve.at("momentum")[step].get<std::vector<double>>(), 1e-10, 1e-15,
                     name + " momentum at step " + std::to_string(step));
      }
    }
    if (one_cycle) EXPECT_THROW(scheduler->step(), ValueError) << "past total_steps";
    ++curves;
  }
  EXPECT_EQ(curves, 14);
}
