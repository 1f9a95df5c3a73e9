// LayerNorm over the trailing normalized_shape dims, as torch.nn.LayerNorm (weight 1, bias 0).
#pragma once

#include "nn/module.h"

namespace graft::nn {

struct LayerNormOptions {
  Shape normalized_shape;
  double eps = 1e-5;  // BERT checkpoints use 1e-12: take it from the model's config
  bool elementwise_affine = true;
  bool bias = true;
  DType dtype = DType::f32;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(LayerNormOptions options);
  explicit LayerNorm(int64_t size, double eps = 1e-5) : LayerNorm(LayerNormOptions{{size}, eps}) {}
  Tensor forward(const Tensor& input) override;
  void reset_parameters() override;
  std::string extra_repr() const override;
  const LayerNormOptions& options() const { return options_; }

  Tensor weight;  // undefined without elementwise_affine
  Tensor bias;    // undefined without elementwise_affine or bias

 private:
  LayerNormOptions options_;
};

}  // namespace graft::nn
