// Activation modules: stateless wrappers over the differentiable ops, for Sequential.
#pragma once

#include "autograd/ops.h"
#include "nn/module.h"

namespace graft::nn {

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& input) override { return relu(input); }
};

class GELU : public Module {
 public:
  explicit GELU(GeluApproximation approximate = GeluApproximation::none) : Module("GELU"), approximate_(approximate) {}
  Tensor forward(const Tensor& input) override { return gelu(input, approximate_); }
  std::string extra_repr() const override {
    return approximate_ == GeluApproximation::tanh ? "approximate='tanh'" : "approximate='none'";
  }

 private:
  GeluApproximation approximate_;
};

class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}
  Tensor forward(const Tensor& input) override { return tanh(input); }
};

class Sigmoid : public Module {
 public:
  Sigmoid() : Module("Sigmoid") {}
  Tensor forward(const Tensor& input) override { return sigmoid(input); }
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : Module("LeakyReLU"), slope_(negative_slope) {}
  Tensor forward(const Tensor& input) override { return maximum(input, input * slope_) ; }
  std::string extra_repr() const override { return "negative_slope=" + std::to_string(slope_); }

 private:
  double slope_;
};

class Softmax : public Module {
 public:
  explicit Softmax(int64_t dim = -1) : Module("Softmax"), dim_(dim) {}
  Tensor forward(const Tensor& input) override { return softmax(input, dim_); }
  std::string extra_repr() const override { return "dim=" + std::to_string(dim_); }

 private:
  int64_t dim_;
};

class Identity : public Module {
 public:
  Identity() : Module("Identity") {}
  Tensor forward(const Tensor& input) override { return input; }
};

}  // namespace graft::nn
