// Small models the distributed suites share: a weight used twice per forward (two gradient parts
// per backward) and a parameter that may take no part in a step.
#pragma once

#include <memory>

#include "autograd/ops.h"
#include "nn/linear.h"
#include "nn/module.h"

namespace graft::test {

// A square Linear applied twice (its weight gets two gradient parts per backward), then a head.
class Tied : public nn::Module {
 public:
  Tied() : Module("Tied") {
    inner = register_module("inner", std::make_shared<nn::Linear>(4, 4));
    head = register_module("head", std::make_shared<nn::Linear>(4, 3));
  }
  Tensor forward(const Tensor& x) override { return head->forward(relu(inner->forward(relu(inner->forward(x))))); }
  std::shared_ptr<nn::Linear> inner, head;
};

// Two heads; `use_second` decides whether the second one takes part (an unused parameter).
class TwoHeads : public nn::Module {
 public:
  TwoHeads() : Module("TwoHeads") {
    first = register_module("first", std::make_shared<nn::Linear>(2, 3));
    second = register_module("second", std::make_shared<nn::Linear>(2, 3));
  }
  Tensor forward_with(const Tensor& x, bool use_second) {
    Tensor y = first->forward(x);
    return use_second ? y + second->forward(x) : y;
  }
  std::shared_ptr<nn::Linear> first, second;
};

}  // namespace graft::test
