// Differentiable gradient reversal: the forward passes x through, the backward scales by -lambda.
#include "autograd/gradient_reversal.h"

#include <cmath>
#include <string>

#include "autograd/functions/common.h"

namespace graft {

using namespace autograd;

Tensor gradient_reversal(const Tensor& x, double lambda) {
  if (!std::isfinite(lambda)) throw ValueError("gradient_reversal: lambda must be finite, got " + std::to_string(lambda));
  ops::check_floating("gradient_reversal", x);
  return record("gradient_reversal", x, {x}, [lambda](const Tensor& g) { return std::vector<Tensor>{g * -lambda}; });
}

}  // namespace graft
