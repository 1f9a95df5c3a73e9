// Linear: y = x W^T + b, with W [out_features, in_features] as torch.nn.Linear stores it.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"

namespace graft::nn {

// A term a Linear adds to its output, e.g. LoRA's low-rank update (nn/lora.h). Its modules are
// registered as children of the Linear, so their parameters are named after it
// ("<linear>.lora_A.weight") and follow it through train(), to() and state_dict().
class LinearAdapter {
 public:
  virtual ~LinearAdapter() = default;
  // The Linear's output with the adapter applied, given the Linear's input and x W^T + b.
  virtual Tensor forward(const Tensor& input, const Tensor& base_output) = 0;
  // The modules to register under the Linear, in order.
  virtual std::vector<std::pair<std::string, std::shared_ptr<Module>>> modules() const = 0;
};

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
  // Attaches an adapter and registers its modules as children; ValueError when one is attached.
  void set_adapter(std::shared_ptr<LinearAdapter> adapter);
  const std::shared_ptr<LinearAdapter>& adapter() const { return adapter_; }

  Tensor weight;
  Tensor bias;  // undefined without bias

 private:
  LinearOptions options_;
  std::shared_ptr<LinearAdapter> adapter_;  // null for a plain Linear
};

}  // namespace graft::nn
