// Dropout: zeroes elements with probability p while training and rescales the rest by 1/(1-p);
// the identity in eval mode. Draws from the given generator, else the default one, so a seeded
// run drops the same elements every time.
#pragma once

#include "nn/module.h"
#include "tensor/random.h"

namespace graft::nn {

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* generator = nullptr);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  double p() const { return p_; }
  void set_p(double p);  // e.g. a config's dropout override

 private:
  double p_;
  Generator* generator_;
};

}  // namespace graft::nn
