// SGD with momentum, dampening, Nesterov momentum, L2 weight decay and an L1 penalty; the update
// is torch.optim.SGD's (foreach=False), with the L1 term added to the gradient first:
//   d = grad + l1 * sign(p) + weight_decay * p
//   buf = d (first update)  or  buf = momentum * buf + (1 - dampening) * d
//   d = d + momentum * buf (nesterov)  or  d = buf          (only when momentum != 0)
//   p = p - lr * d
// Buffer: "momentum_buffer" (created on a parameter's first update with momentum != 0).
#pragma once

#include "train/optim/optimizer.h"

namespace graft::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening == 0, as torch
  double weight_decay = 0.0;
  double l1 = 0.0;
};

class SGD : public Optimizer {
 public:
  explicit SGD(std::vector<ParamGroup> groups);
  explicit SGD(std::vector<Tensor> params, const SGDOptions& options = {});
  void step() override;
  std::string name() const override { return "SGD"; }

 protected:
  void validate_group(const ParamGroup& group) const override;
  std::vector<std::string> buffer_names() const override { return {"momentum_buffer"}; }
};

}  // namespace graft::optim
