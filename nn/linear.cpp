#include "nn/linear.h"

#include <cmath>

#include "autograd/ops.h"
#include "nn/init.h"

namespace graft::nn {

Linear::Linear(LinearOptions options) : Module("Linear"), options_(options) {
  if (options.in_features < 0 || options.out_features < 0) {
    throw ValueError("Linear: sizes must be >= 0, got in_features=" + std::to_string(options.in_features) +
                     " out_features=" + std::to_string(options.out_features));
  }
  weight = register_parameter("weight", empty({options.out_features, options.in_features}, options.dtype));
  if (options.bias) bias = register_parameter("bias", empty({options.out_features}, options.dtype));
  reset_parameters();
}

void Linear::reset_parameters() {
  if (weight.numel() > 0) init::kaiming_uniform_(weight, std::sqrt(5.0));  // empty: nothing to draw
  if (bias.defined()) {  // in_features == 0 gives bound 0: zeros, as torch
    const double bound = options_.in_features > 0 ? 1.0 / std::sqrt(static_cast<double>(options_.in_features)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& input) {
  if (input.dim() < 1 || input.size(-1) != options_.in_features) {
    throw ShapeError("Linear(in_features=" + std::to_string(options_.in_features) + "): input's last dim must be " +
                     std::to_string(options_.in_features) + ", got shape " + shape_str(input.shape()));
  }
  Tensor output = linear(input, weight, bias);
  return adapter_ ? adapter_->forward(input, output) : output;
}

void Linear::set_adapter(std::shared_ptr<LinearAdapter> adapter) {
  if (!adapter) throw ValueError("Linear::set_adapter: the adapter is null");
  if (adapter_) throw ValueError("Linear(" + extra_repr() + ") already has an adapter");
  for (auto& [name, module] : adapter->modules()) register_child(name, module);
  adapter_ = std::move(adapter);
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(options_.in_features) +
         ", out_features=" + std::to_string(options_.out_features) + ", bias=" + (options_.bias ? "true" : "false");
}

}  // namespace graft::nn
