// Learning-rate schedulers bound to an Optimizer.
//
// Step convention (torch's): constructing a scheduler sets every group's lr for step 0; each
// step() (called after optimizer.step()) advances to the next step and sets the lrs for it. The
// per-step schedulers are closed forms of the step number and each group's own initial_lr, so
// two groups with different base lrs follow the same curve scaled, and load_state_dict only needs
// the step number. ReduceLROnPlateau is the exception: it reacts to a metric and scales the
// current lr (torch's semantics), and needs step(metric).
//
// Scheduler   | lr at step t (per group, b = initial_lr, W = warmup_steps, T = total_steps)
// ConstantLR  | b * t / W while t < W, then b
// LinearWithWarmupLR | HF get_linear_schedule_with_warmup: warmup, then b * max(0, (T - t) / max(1, T - W))
// CosineWithWarmupLR | HF get_cosine_schedule_with_warmup: warmup, then b * max(0, (1 + cos(2 pi c p)) / 2),
//             |   p = (t - W) / max(1, T - W), c = num_cycles (0.5: one half cosine down to 0)
// StepLR      | b * gamma^floor(t / step_size)
// ExponentialLR | b * gamma^t
// OneCycleLR  | torch.optim.lr_scheduler.OneCycleLR (its own max_lr per group, not initial_lr)
// SlantedTriangularLR | ULMFiT: cut = floor(T cut_frac); p = t / cut for t < cut, else
//             |   1 - (t - cut) / (cut (1 / cut_frac - 1)); lr = b (1 + p (ratio - 1)) / ratio;
//             |   p is held at >= 0 so the lr never drops below b / ratio past T
// LambdaLR    | b * factor(t) for a user function
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/optim/optimizer.h"

namespace graft::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler();
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances one step and sets every group's lr. ReduceLROnPlateau throws ValueError here.
  virtual void step();
  // ReduceLROnPlateau's step; the per-step schedulers throw ValueError (a metric would be ignored).
  virtual void step(double metric);
  virtual bool needs_metric() const { return false; }

  const std::vector<double>& last_lr() const { return last_lr_; }  // one per group
  int64_t last_step() const { return last_step_; }
  virtual std::string name() const = 0;
  Optimizer& optimizer() const { return *optimizer_; }

  // {"scheduler": name, "last_step": t, "last_lr": [...]} (+ subclass fields).
  virtual nlohmann::json state_dict() const;
  // Checks the kind and group count, then sets the lrs for the saved step (ValueError on
  // mismatch; nothing changes then).
  virtual void load_state_dict(const nlohmann::json& state);

 protected:
  explicit LRScheduler(Optimizer& optimizer);
  // Sets the lrs (and anything else the schedule drives) for `step`; computes everything before
  // changing anything, so a throw leaves the optimizer as it was. Derived constructors call
  // apply(0) once their fields are set.
  virtual void apply(int64_t step);
  virtual double lr_at(int64_t step, std::size_t group) const = 0;
  double initial_lr(std::size_t group) const;  // the group's initial_lr, or its lr when unset

  Optimizer* optimizer_;
  int64_t last_step_ = 0;
  std::vector<double> last_lr_;
};

// Schedules of the form initial_lr * factor(step).
class MultiplicativeScheduler : public LRScheduler {
 protected:
  using LRScheduler::LRScheduler;
  virtual double factor(int64_t step) const = 0;
  double lr_at(int64_t step, std::size_t group) const override { return initial_lr(group) * factor(step); }
};

class LambdaLR : public MultiplicativeScheduler {
 public:
  LambdaLR(Optimizer& optimizer, std::function<double(int64_t)> factor);
  std::string name() const override { return "LambdaLR"; }

 protected:
  double factor(int64_t step) const override;

 private:
  std::function<double(int64_t)> factor_;
};

// Constant lr after an optional linear warmup from 0 (HF get_constant_schedule[_with_warmup]).
class ConstantLR : public MultiplicativeScheduler {
 public:
  explicit ConstantLR(Optimizer& optimizer, int64_t warmup_steps = 0);
  std::string name() const override { return "ConstantLR"; }

 protected:
  double factor(int64_t step) const override;

 private:
  int64_t warmup_steps_;
};

// Linear warmup from 0 to initial_lr, then linear decay to 0 at total_steps (HF).
class LinearWithWarmupLR : public MultiplicativeScheduler {
 public:
  LinearWithWarmupLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps);
  std::string name() const override { return "LinearWithWarmupLR"; }

 protected:
  double factor(int64_t step) const override;

 private:
  int64_t warmup_steps_, total_steps_;
};

// Linear warmup, then cosine decay (HF; with num_cycles = 0.5 it reaches 0 at total_steps and,
// as HF's, rises again after it).
class CosineWithWarmupLR : public MultiplicativeScheduler {
 public:
  CosineWithWarmupLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps, double num_cycles = 0.5);
  std::string name() const override { return "CosineWithWarmupLR"; }

 protected:
  double factor(int64_t step) const override;

 private:
  int64_t warmup_steps_, total_steps_;
  double num_cycles_;
};

class StepLR : public MultiplicativeScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  std::string name() const override { return "StepLR"; }

 protected:
  double factor(int64_t step) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

class ExponentialLR : public MultiplicativeScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);
  std::string name() const override { return "ExponentialLR"; }

 protected:
  double factor(int64_t step) const override;

 private:
  double gamma_;
};

// ULMFiT's slanted triangular learning rates (Howard & Ruder 2018, eq. 3).
class SlantedTriangularLR : public MultiplicativeScheduler {
 public:
  SlantedTriangularLR(Optimizer& optimizer, int64_t total_steps, double cut_frac = 0.1, double ratio = 32.0);
  std::string name() const override { return "SlantedTriangularLR"; }

 protected:
  double factor(int64_t step) const override;

 private:
  int64_t total_steps_, cut_;
  double cut_frac_, ratio_;
};

enum class AnnealStrategy { cos, linear };

struct OneCycleOptions {
  std::vector<double> max_lr;  // one value for all groups, one per group, or empty: each group's initial_lr
  int64_t total_steps = 0;     // > 0
  double pct_start = 0.3;      // in [0, 1]
  AnnealStrategy anneal = AnnealStrategy::cos;
  bool cycle_momentum = true;  // SGD: momentum; Adam/AdamW: beta1
  double base_momentum = 0.85, max_momentum = 0.95;
  double div_factor = 25.0;          // initial lr = max_lr / div_factor
  double final_div_factor = 1e4;     // min lr = initial lr / final_div_factor
  bool three_phase = false;
};

// torch's OneCycleLR: lr from max_lr/div_factor up to max_lr over pct_start of the steps, then down
// to the min lr (three_phase: back to the initial lr first), with momentum moving the other way.
// Stepping past total_steps throws ValueError, as torch; at step total_steps itself (reached by a
// step() after the last optimizer step) the lr is the final min lr, where torch extrapolates the
// last phase (a tiny rise for cos, a negative lr for linear). The groups' initial_lr is left alone.
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, OneCycleOptions options);
  std::string name() const override { return "OneCycleLR"; }
  // The momentum (or beta1) set for each group at the last step; empty without cycle_momentum.
  const std::vector<double>& last_momentum() const { return last_momentum_; }

 protected:
  void apply(int64_t step) override;
  double lr_at(int64_t step, std::size_t group) const override;

 private:
  struct Phase {
    double end_step;
    int start_lr, end_lr, start_momentum, end_momentum;  // 0 initial/max_m, 1 max/base_m, 2 min
  };
  double anneal(double start, double end, double pct) const;
  // The phase holding `step` and the fraction of it done.
  std::pair<const Phase*, double> locate(int64_t step) const;
  void check_groups() const;

  OneCycleOptions options_;
  bool use_beta1_ = false;
  std::vector<double> max_lr_;  // per group
  std::vector<Phase> phases_;
  std::vector<double> last_momentum_;
};

enum class PlateauMode { min, max };
enum class ThresholdMode { rel, abs };

struct PlateauOptions {
  PlateauMode mode = PlateauMode::min;
  double factor = 0.1;  // new lr = lr * factor; in [0, 1)
  int64_t patience = 10;
  double threshold = 1e-4;
  ThresholdMode threshold_mode = ThresholdMode::rel;
  int64_t cooldown = 0;
  std::vector<double> min_lr = {0.0};  // one value for all groups or one per group
  double eps = 1e-8;                   // changes smaller than this are skipped
};

// torch's ReduceLROnPlateau: after more than `patience` steps without improvement (beyond the
// threshold) every group's lr is multiplied by factor (not below its min_lr), then `cooldown`
// steps are ignored. A NaN metric counts as no improvement.
class ReduceLROnPlateau : public LRScheduler {
 public:
  ReduceLROnPlateau(Optimizer& optimizer, PlateauOptions options = {});
  std::string name() const override { return "ReduceLROnPlateau"; }
  void step() override;
  void step(double metric) override;
  bool needs_metric() const override { return true; }
  double best() const { return best_; }
  int64_t num_bad_steps() const { return num_bad_steps_; }
  nlohmann::json state_dict() const override;
  void load_state_dict(const nlohmann::json& state) override;

 protected:
  void apply(int64_t step) override;
  double lr_at(int64_t step, std::size_t group) const override;

 private:
  bool is_better(double value) const;
  double worst() const;

  PlateauOptions options_;
  double best_;
  int64_t num_bad_steps_ = 0, cooldown_counter_ = 0;
};

}  // namespace graft::optim
