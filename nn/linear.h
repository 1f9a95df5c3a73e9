// Linear: y = x W^T + b, with W [out_features, in_features] as torch.nn.Linear stores it.
#pragma once

#include "nn/module.h"

namespace graft::nn {

struct LinearOptions {
  int64_t in_features = 0;
  int64_t out_features = 0;
  bool bias = true;
  DType dtype = DType::f32;
};

class Linear : public Module {
 public:
  explicit Linear(LinearOptions options);
  Linear(int64_t in_features, int64_t out_features, bool bias = true)
      : Linear(LinearOptions{in_features, out_features, bias}) {}
  Tensor forward(const Tensor& input) override;
  // torch's default: W ~ kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)); b the same.
  void reset_parameters() override;
  std::string extra_repr() const override;
  const LinearOptions& options() const { return options_; }

  Tensor weight;
  Tensor bias;  // undefined without bias

 private:
  LinearOptions options_;
};

}  // namespace graft::nn
