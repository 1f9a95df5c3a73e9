// Mixed-precision autocast, as torch.autocast: inside an AutocastGuard(DType::bf16 or f16),
// graft::matmul, graft::linear and scaled_dot_product_attention cast their f32 operands to that
// dtype (with the differentiable Tensor::to), compute, and cast the result back to f32. Everything
// else (activations, losses, norms, softmax, reductions) stays f32, and so do parameters and their
// gradients (f32 master weights); gradients flow back through the casts in f32.
//
// On CUDA the op runs on bf16/f16 tensors (tensor cores). On the CPU, whose GEMMs are f32 only,
// autocast is EMULATED: the operands are rounded to the dtype and back to f32, the op runs in f32,
// and its result is rounded the same way: the numerics of a low-precision GEMM with f32
// accumulation, so the feature and its tests run on any machine.
//
// The switch is thread-local (like grad mode); guards nest and restore the previous state on exit.
// It applies to f32 operands only: f64 (gradient checks) and integer tensors are never cast.
#pragma once

#include <initializer_list>
#include <optional>

#include "tensor/tensor.h"

namespace graft {

class AutocastGuard {
 public:
  // bf16 or f16 turns autocast on inside the guard; f32, or enabled = false, turns it off inside
  // (a region that must stay f32). Any other dtype is a DTypeError.
  explicit AutocastGuard(DType dtype, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  std::optional<DType> previous_;
};

// The active autocast dtype (bf16 or f16), or std::nullopt when autocast is off.
std::optional<DType> autocast_dtype();

// For the op fronts that autocast (matmul, linear, attention), so that the device choice lives in
// one place (autocast.cpp) and not in each op.
namespace autocast {

// The dtype to compute in when autocast is on and every defined operand is f32 and on one device;
// std::nullopt otherwise (the op then runs as given and reports its own dtype/device errors).
std::optional<DType> compute_dtype(std::initializer_list<Tensor> operands);
// An operand as the op consumes it: x.to(dtype) on CUDA; on the CPU x rounded to dtype and back to
// f32. Undefined stays undefined. Differentiable.
Tensor to_compute(const Tensor& x, DType dtype);
// The op's result back in f32: y.to(f32) on CUDA; on the CPU y rounded to dtype and back to f32.
Tensor to_result(const Tensor& y, DType dtype);

}  // namespace autocast

}  // namespace graft
