// Finite-difference gradient checking, public so users can test their own ops.
//
// gradcheck(f, inputs) evaluates f at f64 copies of the inputs, builds the analytical Jacobian
// row by row with backward() and the numerical one by central differences, and compares them
// element by element: |analytical - numerical| <= atol + rtol * |numerical|.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace graft {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  // Inputs (by position) to differentiate; empty = every floating-point input.
  std::vector<size_t> wrt;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // on failure: which input, which element, both values
  explicit operator bool() const { return ok; }
};

// f maps the inputs to one output tensor (any shape). Floating inputs are converted to f64 and
// made leaves that require grad; integer inputs (indices) pass through unchanged.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace graft
