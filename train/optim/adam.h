// Adam (torch.optim.Adam: L2 weight decay added to the gradient) and AdamW (torch.optim.AdamW:
// decoupled weight decay), both with amsgrad and an L1 penalty added to the gradient. Per
// parameter, with t its own update count (foreach=False formulas of torch 1.13/2.x):
//   AdamW only: p = p * (1 - lr * weight_decay)
//   d = grad + l1 * sign(p) [+ weight_decay * p, Adam only]
//   m = beta1 * m + (1 - beta1) * d           v = beta2 * v + (1 - beta2) * d * d
//   v_hat = max(v_max, v) if amsgrad (kept in v_max) else v
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)
// beta1 is read from the group at every step (OneCycleLR cycles it).
// Buffers: "exp_avg", "exp_avg_sq", and "max_exp_avg_sq" with amsgrad.
#pragma once

#include "train/optim/optimizer.h"

namespace graft::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;  // Adam: coupled L2; AdamW: decoupled
  double l1 = 0.0;
  bool amsgrad = false;
};

// AdamW's defaults differ from Adam's only in weight_decay (0.01, as torch).
struct AdamWOptions : AdamOptions {
  AdamWOptions() { weight_decay = 0.01; }
};

namespace detail {

// The shared update of Adam and AdamW; `decoupled` picks the weight-decay form.
class AdamCore : public Optimizer {
 public:
  void step() override;

 protected:
  explicit AdamCore(bool decoupled) : decoupled_(decoupled) {}
  void add_single_group(std::vector<Tensor> params, const AdamOptions& options);
  void validate_group(const ParamGroup& group) const override;
  std::vector<std::string> buffer_names() const override { return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}; }
  std::vector<std::string> required_buffers(const ParamGroup& group, int64_t step) const override;

 private:
  bool decoupled_;
};

}  // namespace detail

class Adam : public detail::AdamCore {
 public:
  explicit Adam(std::vector<ParamGroup> groups);
  explicit Adam(std::vector<Tensor> params, const AdamOptions& options = {});
  std::string name() const override { return "Adam"; }
};

class AdamW : public detail::AdamCore {
 public:
  explicit AdamW(std::vector<ParamGroup> groups);
  explicit AdamW(std::vector<Tensor> params, const AdamWOptions& options = {});
  std::string name() const override { return "AdamW"; }
};

}  // namespace graft::optim
