#include "train/optim/grad_scaler.h"

#include <cmath>
#include <string>

#include "autograd/ops.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace graft::optim {

namespace {

void validate(const GradScalerOptions& o, const std::string& where) {
  if (!(std::isfinite(o.init_scale) && o.init_scale > 0))
    throw ValueError(where + ": init_scale must be finite and > 0, got " + std::to_string(o.init_scale));
  if (!(std::isfinite(o.growth_factor) && o.growth_factor > 1))
    throw ValueError(where + ": growth_factor must be finite and > 1, got " + std::to_string(o.growth_factor));
  if (!(o.backoff_factor > 0 && o.backoff_factor < 1))
    throw ValueError(where + ": backoff_factor must be in (0, 1), got " + std::to_string(o.backoff_factor));
  if (o.growth_interval < 1)
    throw ValueError(where + ": growth_interval must be >= 1, got " + std::to_string(o.growth_interval));
}

}  // namespace

GradScaler::GradScaler(GradScalerOptions options) : options_(options), scale_(options.init_scale) {
  validate(options_, "GradScaler");
}

Tensor GradScaler::scale(const Tensor& loss) const {
  if (!loss.defined()) throw ValueError("GradScaler::scale: the loss is undefined");
  if (!options_.enabled) return loss;
  if (!is_floating(loss.dtype()))
    throw DTypeError(std::string("GradScaler::scale: the loss must be floating point, got ") +
                     dtype_name(loss.dtype()));
  return loss * scale_;
}

void GradScaler::unscale_(Optimizer& optimizer) {
  if (!options_.enabled) return;
  StepState& step = steps_[&optimizer];
  if (step.unscaled)
    throw ValueError("GradScaler::unscale_: already called for this " + optimizer.name() +
                     " optimizer since the last update()");
  const double inv_scale = 1.0 / scale_;
  // A running sum of (grad * 0) over all gradients: 0 while every element is finite, NaN as soon
  // as one is inf or NaN (inf * 0 = NaN). Exact in any order, so deterministic; read once.
  Tensor flags;
  for (const ParamGroup& group : optimizer.param_groups()) {
    for (const Tensor& param : group.params) {
      const Tensor grad = param.grad();
      if (!grad.defined()) continue;
      if (!is_floating(grad.dtype()))
        throw DTypeError(std::string("GradScaler::unscale_: a gradient of group '") + group.name + "' is " +
                         dtype_name(grad.dtype()) + "; expected floating point");
      const Tensor unscaled = ops::binary(ops::BinaryOp::mul, grad, ops::scalar_like(inv_scale, grad));
      Tensor flag = ops::reduce(ops::ReduceOp::sum,
                                ops::binary(ops::BinaryOp::mul, unscaled, ops::scalar_like(0.0, unscaled)), {}, false);
      if (flag.dtype() != DType::f32) flag = ops::cast(flag, DType::f32);
      if (flags.defined() && flag.device() != flags.device()) flag = ops::to_device(flag, flags.device());
      flags = flags.defined() ? ops::binary(ops::BinaryOp::add, flags, flag) : flag;
      param.set_grad(unscaled);
    }
  }
  step.unscaled = true;
  step.found_inf = flags.defined() && !std::isfinite(flags.item());
}

bool GradScaler::step(Optimizer& optimizer) {
  if (!options_.enabled) {
    optimizer.step();
    return true;
  }
  if (steps_[&optimizer].stepped)
    throw ValueError("GradScaler::step: already called for this " + optimizer.name() +
                     " optimizer since the last update()");
  if (!steps_[&optimizer].unscaled) unscale_(optimizer);
  StepState& step = steps_[&optimizer];
  step.stepped = true;
  if (step.found_inf) return false;
  optimizer.step();
  return true;
}

void GradScaler::update() {
  if (!options_.enabled) return;
  bool found = false, checked = false;
  for (const auto& [optimizer, step] : steps_) {
    found = found || step.found_inf;
    checked = checked || step.unscaled;
  }
  if (!checked)
    throw ValueError("GradScaler::update: no unscale_() or step() since the last update(), so nothing says whether "
                     "the gradients were finite");
  steps_.clear();
  if (found) {
    scale_ *= options_.backoff_factor;
    growth_tracker_ = 0;
    return;
  }
  if (++growth_tracker_ == options_.growth_interval) {
    const double grown = scale_ * options_.growth_factor;
    if (std::isfinite(grown)) scale_ = grown;
    growth_tracker_ = 0;
  }
}

bool GradScaler::found_inf(const Optimizer& optimizer) const {
  auto it = steps_.find(&optimizer);
  return it != steps_.end() && it->second.found_inf;
}

nlohmann::json GradScaler::state_dict() const {
  return nlohmann::json{{"scale", scale_},
                        {"growth_tracker", growth_tracker_},
                        {"growth_factor", options_.growth_factor},
                        {"backoff_factor", options_.backoff_factor},
                        {"growth_interval", options_.growth_interval}};
}

void GradScaler::load_state_dict(const nlohmann::json& state) {
  if (!state.is_object()) throw FormatError("GradScaler::load_state_dict: expected a JSON object, got " + state.dump());
  auto number = [&](const char* key) {
    if (!state.contains(key) || !state[key].is_number())
      throw FormatError(std::string("GradScaler::load_state_dict: '") + key + "' is missing or not a number");
    return state[key].get<double>();
  };
  auto integer = [&](const char* key) {
    if (!state.contains(key) || !state[key].is_number_integer())
      throw FormatError(std::string("GradScaler::load_state_dict: '") + key + "' is missing or not an integer");
    return state[key].get<int64_t>();
  };
  GradScalerOptions options = options_;
  options.init_scale = number("scale");
  options.growth_factor = number("growth_factor");
  options.backoff_factor = number("backoff_factor");
  options.growth_interval = integer("growth_interval");
  const int64_t tracker = integer("growth_tracker");
  validate(options, "GradScaler::load_state_dict");
  if (tracker < 0 || tracker >= options.growth_interval)
    throw ValueError("GradScaler::load_state_dict: growth_tracker must be in [0, growth_interval = " +
                     std::to_string(options.growth_interval) + "), got " + std::to_string(tracker));
  scale_ = options.init_scale;
  options.init_scale = options_.init_scale;  // the constructor's, as given
  options_ = options;
  growth_tracker_ = tracker;
}

}  // namespace graft::optim
