#include "nn/layer_norm.h"

#include <sstream>

#include "autograd/ops.h"
#include "nn/init.h"

namespace graft::nn {

LayerNorm::LayerNorm(LayerNormOptions options) : Module("LayerNorm"), options_(std::move(options)) {
  if (options_.normalized_shape.empty()) throw ValueError("LayerNorm: normalized_shape must not be empty");
  if (!(options_.eps > 0)) throw ValueError("LayerNorm: eps must be > 0, got " + std::to_string(options_.eps));
  if (options_.elementwise_affine) {
    weight = register_parameter("weight", empty(options_.normalized_shape, options_.dtype));
    if (options_.bias) bias = register_parameter("bias", empty(options_.normalized_shape, options_.dtype));
  }
  reset_parameters();
}

void LayerNorm::reset_parameters() {
  if (weight.defined()) init::ones_(weight);
  if (bias.defined()) init::zeros_(bias);
}

Tensor LayerNorm::forward(const Tensor& input) {
  return layer_norm(input, options_.normalized_shape, weight, bias, options_.eps);
}

std::string LayerNorm::extra_repr() const {
  std::ostringstream out;
  out << shape_str(options_.normalized_shape) << ", eps=" << options_.eps
      << ", elementwise_affine=" << (options_.elementwise_affine ? "true" : "false");
  return out.str();
}

}  // namespace graft::nn
