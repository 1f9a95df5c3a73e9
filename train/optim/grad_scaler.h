// GradScaler: dynamic loss scaling for f16 mixed precision, as torch.cuda.amp.GradScaler. f16's
// range is narrow (max 65504, smallest normal 6e-5), so small gradients flushed to zero are saved
// by scaling the loss (and with it every gradient) up before backward, and dividing the gradients
// back down before the optimizer sees them. When a scaled gradient overflowed (inf/NaN), the step is
// skipped and the scale halved; after growth_interval clean steps in a row it doubles again.
//
//   Tensor loss = ...;                     // f32, computed under AutocastGuard(DType::f16)
//   scaler.scale(loss).backward();
//   scaler.unscale_(optimizer);            // optional: clipping must see the true gradients
//   clip_grad_norm(params, 1.0);
//   scaler.step(optimizer);                // skips optimizer.step() if a gradient was inf/NaN
//   scaler.update();                       // backs off or grows the scale
//
// A disabled scaler passes everything through (scale 1, step always steps), so one loop serves
// both. bf16 has f32's range and needs no scaler.
#pragma once

#include <cstdint>
#include <map>

#include <nlohmann/json.hpp>

#include "tensor/tensor.h"
#include "train/optim/optimizer.h"

namespace graft::optim {

struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;   // > 1
  double backoff_factor = 0.5;  // in (0, 1)
  int64_t growth_interval = 2000;  // clean steps in a row before the scale grows; >= 1
  bool enabled = true;
};

class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {});  // ValueError for an option out of range

  // loss * scale (differentiable); the loss itself when disabled.
  Tensor scale(const Tensor& loss) const;
  // Divides every gradient of the optimizer's parameters by the scale (once per step: a second
  // call before update() is a ValueError) and records whether any of them holds an inf or NaN.
  // The check reduces on the gradients' device; the host reads one value.
  void unscale_(Optimizer& optimizer);
  // unscale_ if not done yet this step; then optimizer.step() unless a gradient was inf/NaN.
  // Returns whether the optimizer stepped. A second call before update() is a ValueError.
  bool step(Optimizer& optimizer);
  // After the step: halves (backoff_factor) the scale if any gradient was inf/NaN, else grows it
  // (growth_factor) after growth_interval clean steps in a row. ValueError when nothing was
  // unscaled since the last update (no inf/NaN check to go by).
  void update();

  bool is_enabled() const { return options_.enabled; }
  double get_scale() const { return options_.enabled ? scale_ : 1.0; }  // 1 when disabled
  int64_t growth_tracker() const { return growth_tracker_; }           // clean steps in a row
  // Whether unscale_ found an inf/NaN gradient of this optimizer in the current step.
  bool found_inf(const Optimizer& optimizer) const;
  const GradScalerOptions& options() const { return options_; }

  // For checkpoints: {"scale", "growth_tracker", "growth_factor", "backoff_factor", "growth_interval"}.
  nlohmann::json state_dict() const;
  // Validates everything first (FormatError for a missing or mistyped field, ValueError for a
  // value out of range); on error nothing changes.
  void load_state_dict(const nlohmann::json& state);

 private:
  struct StepState {  // one optimizer's progress through the current step
    bool unscaled = false;
    bool found_inf = false;
    bool stepped = false;
  };

  GradScalerOptions options_;
  double scale_;
  int64_t growth_tracker_ = 0;
  std::map<const Optimizer*, StepState> steps_;  // cleared by update()
};

}  // namespace graft::optim
