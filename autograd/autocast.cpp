#include "autograd/autocast.h"

#include <string>

#include "tensor/error.h"

namespace graft {

namespace {
thread_local std::optional<DType> active_dtype;  // per thread, as grad mode
}  // namespace

AutocastGuard::AutocastGuard(DType dtype, bool enabled) : previous_(active_dtype) {
  if (dtype != DType::bf16 && dtype != DType::f16 && dtype != DType::f32)
    throw DTypeError(std::string("AutocastGuard: dtype must be bf16 or f16 (or f32 to turn autocast off), got ") +
                     dtype_name(dtype));
  if (enabled && dtype != DType::f32)
    active_dtype = dtype;
  else
    active_dtype.reset();
}

AutocastGuard::~AutocastGuard() { active_dtype = previous_; }

std::optional<DType> autocast_dtype() { return active_dtype; }

namespace autocast {

std::optional<DType> compute_dtype(std::initializer_list<Tensor> operands) {
  if (!active_dtype) return std::nullopt;
  const Tensor* first = nullptr;
  for (const Tensor& t : operands) {
    if (!t.defined()) continue;
    if (t.dtype() != DType::f32) return std::nullopt;
    if (first && t.device() != first->device()) return std::nullopt;
    if (!first) first = &t;
  }
  if (!first) return std::nullopt;
  return active_dtype;
}

// The one place that decides between the real low-precision op (CUDA) and its CPU emulation.
Tensor to_compute(const Tensor& x, DType dtype) {
  if (!x.defined()) return x;
  if (x.device().is_cpu()) return x.to(dtype).to(DType::f32);  // CPU GEMMs are f32: round only
  return x.to(dtype);
}

Tensor to_result(const Tensor& y, DType dtype) {
  if (y.device().is_cpu()) return y.to(dtype).to(DType::f32);  // as a low-precision output would be
  return y.to(DType::f32);
}

}  // namespace autocast

}  // namespace graft
