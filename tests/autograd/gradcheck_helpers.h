// Shared by the gradcheck suites: random f64 inputs and a gradcheck that reports its mismatch.
#pragma once

#include <gtest/gtest.h>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"

namespace graft::testing {

inline Tensor rnd(const Shape& shape) { return randn(shape, DType::f64); }
inline Tensor rnd(const Shape& shape, double low, double high) { return uniform(shape, low, high, DType::f64); }

inline void expect_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                             const std::vector<Tensor>& inputs) {
  GradcheckResult r = gradcheck(f, inputs);
  EXPECT_TRUE(r.ok) << r.message;
}

}  // namespace graft::testing
