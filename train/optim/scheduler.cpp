#include "train/optim/scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <sstream>

#include "train/optim/adam.h"
#include "train/optim/sgd.h"

namespace graft::optim {

namespace {

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

void check_finite_lr(const std::string& scheduler, std::size_t group, int64_t step, double lr) {
  if (!std::isfinite(lr) || lr < 0.0)
    throw ValueError(scheduler + ": step " + std::to_string(step) + " gives group " + std::to_string(group) +
                     " the lr " + num(lr) + "; expected a finite lr >= 0");
}

// Broadcasts a scalar-or-per-group list; ValueError on a count mismatch.
std::vector<double> per_group(const std::string& what, const std::vector<double>& values, std::size_t groups) {
  if (values.size() == 1) return std::vector<double>(groups, values[0]);
  if (values.size() != groups)
    throw ValueError(what + ": expected 1 or " + std::to_string(groups) + " values (one per group), got " +
                     std::to_string(values.size()));
  return values;
}

double rounded_product(double a, double b) {
  volatile double product = a * b;  // volatile: forces the rounding, so no contraction into an fma
  return product;
}

void check_warmup_total(const std::string& name, int64_t warmup, int64_t total) {
  if (total <= 0) throw ValueError(name + ": total_steps must be > 0, got " + std::to_string(total));
  if (warmup < 0 || warmup > total)
    throw ValueError(name + ": warmup_steps must be in [0, total_steps = " + std::to_string(total) + "], got " +
                     std::to_string(warmup));
}

}  // namespace

// --- LRScheduler ---

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(&optimizer) {}
LRScheduler::~LRScheduler() = default;

double LRScheduler::initial_lr(std::size_t group) const {
  const ParamGroup& g = optimizer_->param_groups().at(group);
  return g.initial_lr >= 0 ? g.initial_lr : g.lr;
}

void LRScheduler::apply(int64_t step) {
  auto& groups = optimizer_->param_groups();
  std::vector<double> lrs(groups.size());
  for (std::size_t g = 0; g < groups.size(); ++g) {
    lrs[g] = lr_at(step, g);
    check_finite_lr(name(), g, step, lrs[g]);
  }
  for (std::size_t g = 0; g < groups.size(); ++g) groups[g].lr = lrs[g];
  last_lr_ = std::move(lrs);
  last_step_ = step;
}

void LRScheduler::step() { apply(last_step_ + 1); }

void LRScheduler::step(double) {
  throw ValueError(name() + ".step(metric): this scheduler follows the step count; call step() without a metric");
}

nlohmann::json LRScheduler::state_dict() const {
  return {{"scheduler", name()}, {"last_step", last_step_}, {"last_lr", last_lr_}};
}

void LRScheduler::load_state_dict(const nlohmann::json& state) {
  const std::string where = name() + ".load_state_dict: ";
  int64_t step = 0;
  try {
    const auto kind = state.at("scheduler").get<std::string>();
    if (kind != name()) throw ValueError(where + "the state is of a " + kind + " scheduler, this is " + name());
    step = state.at("last_step").get<int64_t>();
    const auto saved_groups = state.at("last_lr").size();
    if (saved_groups != optimizer_->param_groups().size())
      throw ValueError(where + "the state has " + std::to_string(saved_groups) + " groups, the optimizer has " +
                       std::to_string(optimizer_->param_groups().size()));
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(where + "malformed state: " + e.what());
  }
  if (step < 0) throw ValueError(where + "last_step is negative");
  apply(step);
}

// --- closed-form schedules ---

LambdaLR::LambdaLR(Optimizer& optimizer, std::function<double(int64_t)> factor)
    : MultiplicativeScheduler(optimizer), factor_(std::move(factor)) {
  if (!factor_) throw ValueError("LambdaLR: the factor function is empty");
  apply(0);
}
double LambdaLR::factor(int64_t step) const { return factor_(step); }

ConstantLR::ConstantLR(Optimizer& optimizer, int64_t warmup_steps)
    : MultiplicativeScheduler(optimizer), warmup_steps_(warmup_steps) {
  if (warmup_steps < 0) throw ValueError("ConstantLR: warmup_steps must be >= 0, got " + std::to_string(warmup_steps));
  apply(0);
}
double ConstantLR::factor(int64_t step) const {
  if (step < warmup_steps_) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps_));
  return 1.0;
}

LinearWithWarmupLR::LinearWithWarmupLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps)
    : MultiplicativeScheduler(optimizer), warmup_steps_(warmup_steps), total_steps_(total_steps) {
  check_warmup_total("LinearWithWarmupLR", warmup_steps, total_steps);
  apply(0);
}
double LinearWithWarmupLR::factor(int64_t step) const {
  if (step < warmup_steps_) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps_));
  return std::max(0.0, static_cast<double>(total_steps_ - step) /
                           static_cast<double>(std::max<int64_t>(1, total_steps_ - warmup_steps_)));
}

CosineWithWarmupLR::CosineWithWarmupLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps,
                                       double num_cycles)
    : MultiplicativeScheduler(optimizer), warmup_steps_(warmup_steps), total_steps_(total_steps), num_cycles_(num_cycles) {
  check_warmup_total("CosineWithWarmupLR", warmup_steps, total_steps);
  if (!std::isfinite(num_cycles) || num_cycles <= 0.0)
    throw ValueError("CosineWithWarmupLR: num_cycles must be finite and > 0, got " + num(num_cycles));
  apply(0);
}
double CosineWithWarmupLR::factor(int64_t step) const {
  if (step < warmup_steps_) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps_));
  const double progress = static_cast<double>(step - warmup_steps_) /
                          static_cast<double>(std::max<int64_t>(1, total_steps_ - warmup_steps_));
  return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * num_cycles_ * 2.0 * progress)));
}

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : MultiplicativeScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  if (step_size <= 0) throw ValueError("StepLR: step_size must be > 0, got " + std::to_string(step_size));
  if (!std::isfinite(gamma) || gamma < 0.0) throw ValueError("StepLR: gamma must be finite and >= 0, got " + num(gamma));
  apply(0);
}
double StepLR::factor(int64_t step) const { return std::pow(gamma_, static_cast<double>(step / step_size_)); }

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : MultiplicativeScheduler(optimizer), gamma_(gamma) {
  if (!std::isfinite(gamma) || gamma < 0.0)
    throw ValueError("ExponentialLR: gamma must be finite and >= 0, got " + num(gamma));
  apply(0);
}
double ExponentialLR::factor(int64_t step) const { return std::pow(gamma_, static_cast<double>(step)); }

SlantedTriangularLR::SlantedTriangularLR(Optimizer& optimizer, int64_t total_steps, double cut_frac, double ratio)
    : MultiplicativeScheduler(optimizer), total_steps_(total_steps), cut_(0), cut_frac_(cut_frac), ratio_(ratio) {
  if (total_steps <= 0) throw ValueError("SlantedTriangularLR: total_steps must be > 0, got " + std::to_string(total_steps));
  if (!(cut_frac > 0.0 && cut_frac < 1.0))
    throw ValueError("SlantedTriangularLR: cut_frac must be in (0, 1), got " + num(cut_frac));
  if (!std::isfinite(ratio) || ratio < 1.0) throw ValueError("SlantedTriangularLR: ratio must be >= 1, got " + num(ratio));
  cut_ = static_cast<int64_t>(std::floor(static_cast<double>(total_steps) * cut_frac));
  if (cut_ < 1)
    throw ValueError("SlantedTriangularLR: total_steps * cut_frac = " + num(static_cast<double>(total_steps) * cut_frac) +
                     " leaves no warmup step; raise total_steps or cut_frac");
  apply(0);
}
double SlantedTriangularLR::factor(int64_t step) const {
  const double t = static_cast<double>(step), cut = static_cast<double>(cut_);
  double p = step < cut_ ? t / cut : 1.0 - (t - cut) / (cut * (1.0 / cut_frac_ - 1.0));
  p = std::max(p, 0.0);
  return (1.0 + p * (ratio_ - 1.0)) / ratio_;
}

// --- OneCycleLR ---

OneCycleLR::OneCycleLR(Optimizer& optimizer, OneCycleOptions options) : LRScheduler(optimizer), options_(std::move(options)) {
  const auto& o = options_;
  const std::size_t groups = optimizer.param_groups().size();
  if (o.total_steps <= 0) throw ValueError("OneCycleLR: total_steps must be > 0, got " + std::to_string(o.total_steps));
  if (!(o.pct_start >= 0.0 && o.pct_start <= 1.0))
    throw ValueError("OneCycleLR: pct_start must be in [0, 1], got " + num(o.pct_start));
  if (!std::isfinite(o.div_factor) || o.div_factor <= 0.0 || !std::isfinite(o.final_div_factor) ||
      o.final_div_factor <= 0.0)
    throw ValueError("OneCycleLR: div_factor and final_div_factor must be finite and > 0");
  if (o.max_lr.empty()) {
    for (std::size_t g = 0; g < groups; ++g) max_lr_.push_back(initial_lr(g));
  } else {
    max_lr_ = per_group("OneCycleLR max_lr", o.max_lr, groups);
  }
  for (double lr : max_lr_)
    if (!std::isfinite(lr) || lr < 0.0) throw ValueError("OneCycleLR: max_lr must be finite and >= 0, got " + num(lr));
  if (o.cycle_momentum) {
    if (dynamic_cast<SGD*>(&optimizer)) {
      use_beta1_ = false;
    } else if (dynamic_cast<detail::AdamCore*>(&optimizer)) {
      use_beta1_ = true;
    } else {
      throw ValueError("OneCycleLR: cycle_momentum needs an SGD or Adam/AdamW optimizer, got " + optimizer.name());
    }
    for (double m : {o.base_momentum, o.max_momentum})
      if (!(m >= 0.0 && m < 1.0)) throw ValueError("OneCycleLR: momenta must be in [0, 1), got " + num(m));
  }
  const double total = static_cast<double>(o.total_steps);
  // The phase ends as Python computes them: the product rounded before the subtraction (a fused
  // multiply-add would move a boundary such as 0.1 * 10 - 1 off 0 and change which phase a step is in).
  const double pct_total = rounded_product(o.pct_start, total);
  // Values: 0 = initial lr / max momentum, 1 = max lr / base momentum, 2 = min lr.
  if (o.three_phase) {
    phases_ = {{pct_total - 1, 0, 1, 0, 1}, {rounded_product(2 * o.pct_start, total) - 2, 1, 0, 1, 0}, {total - 1, 0, 2, 0, 0}};
  } else {
    phases_ = {{pct_total - 1, 0, 1, 0, 1}, {total - 1, 1, 2, 1, 0}};
  }
  // torch divides by each phase's length; an empty phase that a step can land in is 0/0 there.
  double start = 0;
  for (const auto& phase : phases_) {
    if (phase.end_step == start)
      throw ValueError("OneCycleLR: pct_start = " + num(o.pct_start) + " with total_steps = " +
                       std::to_string(o.total_steps) + " makes an empty phase");
    start = phase.end_step;
  }
  apply(0);
}

double OneCycleLR::anneal(double start, double end, double pct) const {
  if (options_.anneal == AnnealStrategy::cos) return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1);
  return (end - start) * pct + start;
}

std::pair<const OneCycleLR::Phase*, double> OneCycleLR::locate(int64_t step) const {
  double start = 0;
  const auto t = static_cast<double>(step);
  for (std::size_t i = 0; i < phases_.size(); ++i) {
    const Phase& phase = phases_[i];
    if (t <= phase.end_step) return {&phase, (t - start) / (phase.end_step - start)};
    // Step total_steps (allowed, as torch, so that step() may follow the last optimizer step)
    // holds the final values where torch would extrapolate past them (even to a negative lr).
    if (i + 1 == phases_.size()) return {&phase, std::min(1.0, (t - start) / (phase.end_step - start))};
    start = phase.end_step;
  }
  return {&phases_.back(), 1.0};  // unreachable: the last phase always matches
}

void OneCycleLR::check_groups() const {
  if (optimizer_->param_groups().size() != max_lr_.size())
    throw ValueError("OneCycleLR: the optimizer now has " + std::to_string(optimizer_->param_groups().size()) +
                     " groups, the schedule was made for " + std::to_string(max_lr_.size()));
}

double OneCycleLR::lr_at(int64_t step, std::size_t group) const {
  const double max_lr = max_lr_.at(group);
  const double initial = max_lr / options_.div_factor;
  const double values[3] = {initial, max_lr, initial / options_.final_div_factor};
  const auto [phase, pct] = locate(step);
  return anneal(values[phase->start_lr], values[phase->end_lr], pct);
}

void OneCycleLR::apply(int64_t step) {
  if (step > options_.total_steps)
    throw ValueError("OneCycleLR: tried to step " + std::to_string(step + 1) + " times; total_steps is " +
                     std::to_string(options_.total_steps));
  check_groups();
  std::vector<double> momenta;
  if (options_.cycle_momentum) {
    const double values[2] = {options_.max_momentum, options_.base_momentum};
    const auto [phase, pct] = locate(step);
    const double m = anneal(values[phase->start_momentum], values[phase->end_momentum], pct);
    momenta.assign(max_lr_.size(), m);
  }
  LRScheduler::apply(step);  // validates and sets the lrs; momenta below cannot fail
  auto& groups = optimizer_->param_groups();
  for (std::size_t g = 0; g < momenta.size(); ++g) (use_beta1_ ? groups[g].beta1 : groups[g].momentum) = momenta[g];
  last_momentum_ = std::move(momenta);
}

// --- ReduceLROnPlateau ---

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, PlateauOptions options)
    : LRScheduler(optimizer), options_(std::move(options)) {
  const auto& o = options_;
  if (!(o.factor >= 0.0 && o.factor < 1.0)) throw ValueError("ReduceLROnPlateau: factor must be in [0, 1), got " + num(o.factor));
  if (o.patience < 0 || o.cooldown < 0) throw ValueError("ReduceLROnPlateau: patience and cooldown must be >= 0");
  if (!std::isfinite(o.threshold) || o.threshold < 0.0)
    throw ValueError("ReduceLROnPlateau: threshold must be finite and >= 0, got " + num(o.threshold));
  if (!std::isfinite(o.eps) || o.eps < 0.0) throw ValueError("ReduceLROnPlateau: eps must be finite and >= 0");
  options_.min_lr = per_group("ReduceLROnPlateau min_lr", o.min_lr, optimizer.param_groups().size());
  for (double m : options_.min_lr)
    if (!std::isfinite(m) || m < 0.0) throw ValueError("ReduceLROnPlateau: min_lr must be finite and >= 0, got " + num(m));
  best_ = worst();
  for (const auto& g : optimizer.param_groups()) last_lr_.push_back(g.lr);
}

double ReduceLROnPlateau::worst() const {
  return options_.mode == PlateauMode::min ? std::numeric_limits<double>::infinity()
                                           : -std::numeric_limits<double>::infinity();
}

bool ReduceLROnPlateau::is_better(double a) const {
  const double t = options_.threshold;
  if (options_.mode == PlateauMode::min)
    return options_.threshold_mode == ThresholdMode::rel ? a < best_ * (1.0 - t) : a < best_ - t;
  return options_.threshold_mode == ThresholdMode::rel ? a > best_ * (t + 1.0) : a > best_ + t;
}

void ReduceLROnPlateau::step() {
  throw ValueError("ReduceLROnPlateau.step: this scheduler needs the monitored metric; call step(metric)");
}

void ReduceLROnPlateau::step(double metric) {
  auto& groups = optimizer_->param_groups();
  if (groups.size() != options_.min_lr.size())
    throw ValueError("ReduceLROnPlateau: the optimizer now has " + std::to_string(groups.size()) +
                     " groups, min_lr was given for " + std::to_string(options_.min_lr.size()));
  ++last_step_;
  if (is_better(metric)) {
    best_ = metric;
    num_bad_steps_ = 0;
  } else {
    ++num_bad_steps_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_steps_ = 0;  // bad steps in cooldown do not count
  }
  if (num_bad_steps_ > options_.patience) {
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const double old_lr = groups[g].lr;
      const double new_lr = std::max(old_lr * options_.factor, options_.min_lr[g]);
      if (old_lr - new_lr > options_.eps) groups[g].lr = new_lr;
    }
    cooldown_counter_ = options_.cooldown;
    num_bad_steps_ = 0;
  }
  last_lr_.clear();
  for (const auto& g : groups) last_lr_.push_back(g.lr);
}

void ReduceLROnPlateau::apply(int64_t) {
  throw ValueError("ReduceLROnPlateau: the lr follows the metric, not the step number");
}

double ReduceLROnPlateau::lr_at(int64_t, std::size_t group) const { return optimizer_->param_groups().at(group).lr; }

nlohmann::json ReduceLROnPlateau::state_dict() const {
  nlohmann::json j = LRScheduler::state_dict();
  // JSON has no infinity: an unset best (no metric seen yet) is null.
  j["best"] = std::isfinite(best_) ? nlohmann::json(best_) : nlohmann::json(nullptr);
  j["num_bad_steps"] = num_bad_steps_;
  j["cooldown_counter"] = cooldown_counter_;
  return j;
}

void ReduceLROnPlateau::load_state_dict(const nlohmann::json& state) {
  const std::string where = "ReduceLROnPlateau.load_state_dict: ";
  int64_t step = 0, bad = 0, cooldown = 0;
  double best = worst();
  std::vector<double> lrs;
  try {
    const auto kind = state.at("scheduler").get<std::string>();
    if (kind != name()) throw ValueError(where + "the state is of a " + kind + " scheduler, this is " + name());
    step = state.at("last_step").get<int64_t>();
    lrs = state.at("last_lr").get<std::vector<double>>();
    if (!state.at("best").is_null()) best = state.at("best").get<double>();
    bad = state.at("num_bad_steps").get<int64_t>();
    cooldown = state.at("cooldown_counter").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(where + "malformed state: " + e.what());
  }
  auto& groups = optimizer_->param_groups();
  if (lrs.size() != groups.size())
    throw ValueError(where + "the state has " + std::to_string(lrs.size()) + " groups, the optimizer has " +
                     std::to_string(groups.size()));
  if (step < 0 || bad < 0 || cooldown < 0) throw ValueError(where + "negative counters");
  for (std::size_t g = 0; g < lrs.size(); ++g) check_finite_lr(name(), g, step, lrs[g]);
  for (std::size_t g = 0; g < groups.size(); ++g) groups[g].lr = lrs[g];
  last_lr_ = std::move(lrs);
  last_step_ = step;
  best_ = best;
  num_bad_steps_ = bad;
  cooldown_counter_ = cooldown;
}

}  // namespace graft::optim
