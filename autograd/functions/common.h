// Shared by the autograd op files: short names for raw ops and the scalar helper.
#pragma once

#include "autograd/node.h"
#include "autograd/ops.h"
#include "tensor/ops.h"

namespace graft::autograd {

using ops::BinaryOp;
using ops::ReduceOp;
using ops::UnaryOp;

inline Tensor scalar(double v, const Tensor& like) { return ops::scalar_like(v, like); }

// Gradient for an operand that was broadcast to the output: sum it back to the operand's shape.
inline Tensor unbroadcast(const Tensor& grad, const Tensor& operand) { return ops::sum_to(grad, operand.shape()); }

}  // namespace graft::autograd
