// GradientReversal: the module form of graft::gradient_reversal (autograd/gradient_reversal.h), for
// DANN's domain branch: features -> GradientReversal -> domain classifier. It has no parameters;
// lambda is usually ramped up during training with set_lambda(dann_lambda(progress)).
#pragma once

#include <cmath>
#include <sstream>
#include <string>

#include "autograd/gradient_reversal.h"
#include "nn/module.h"
#include "tensor/error.h"

namespace graft::nn {

struct GradientReversalOptions {
  double lambda = 1.0;  // the backward multiplies the gradient by -lambda
};

class GradientReversal : public Module {
 public:
  explicit GradientReversal(GradientReversalOptions options = {}) : Module("GradientReversal") {
    set_lambda(options.lambda);
  }
  Tensor forward(const Tensor& input) override { return gradient_reversal(input, lambda_); }
  double lambda() const { return lambda_; }
  // ValueError for a non-finite lambda.
  void set_lambda(double lambda) {
    if (!std::isfinite(lambda))
      throw ValueError("GradientReversal: lambda must be finite, got " + std::to_string(lambda));
    lambda_ = lambda;
  }
  std::string extra_repr() const override {
    std::ostringstream out;
    out << "lambda=" << lambda_;
    return out.str();
  }

 private:
  double lambda_ = 1.0;
};

// DANN's schedule: 2 / (1 + exp(-gamma * progress)) - 1, rising from 0 at progress 0 towards 1,
// which keeps the domain classifier's noisy early gradients out of the features. progress is the
// fraction of training done, in [0, 1]; ValueError outside it.
inline double dann_lambda(double progress, double gamma = 10.0) {
  if (!(progress >= 0.0 && progress <= 1.0))
    throw ValueError("dann_lambda: progress must be in [0, 1], got " + std::to_string(progress));
  return 2.0 / (1.0 + std::exp(-gamma * progress)) - 1.0;
}

}  // namespace graft::nn
