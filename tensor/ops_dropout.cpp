// Dropout's raw forward and backward on the fused kernel (kernels/random/dropout.h): one pass
// draws the mask and applies it, instead of bernoulli -> cast -> scale -> multiply.
#include <type_traits>

#include "kernels/random/dropout.h"
#include "tensor/factory.h"
#include "tensor/iter.h"
#include "tensor/ops.h"

namespace graft::ops {

namespace {

#if GRAFT_WITH_CUDA
// Calls f with a null pointer of the storage type of a CUDA dropout dtype (f32, f64, bf16, f16).
template <class F>
void dispatch_cuda(const char* op, DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: return f(static_cast<float*>(nullptr));
    case DType::f64: return f(static_cast<double*>(nullptr));
    case DType::bf16: return f(static_cast<bf16*>(nullptr));
    case DType::f16: return f(static_cast<f16*>(nullptr));
    default: detail::throw_dtype(op, dtype, "f32, f64, bf16, f16");
  }
}

std::pair<Tensor, Tensor> dropout_forward_cuda(const Tensor& x_in, double p, uint64_t seed, uint64_t counter) {
  if (!dropout_fused_applies(x_in)) detail::throw_dtype("dropout", x_in.dtype(), "f32, f64, bf16, f16");
  if (!(p >= 0.0 && p < 1.0)) throw ValueError("dropout: p must be in [0, 1), got " + std::to_string(p));
  const Tensor x = contiguous(x_in);
  Tensor out = empty_like_contiguous(x, x.dtype());
  Tensor keep = empty(x.shape(), TensorOptions(DType::boolean).with_device(x.device()));
  dispatch_cuda("dropout", x.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    kernels::dropout_forward_cuda<T>(x.device().index, static_cast<const T*>(x.data_ptr()), x.numel(), 1.0 - p,
                                     1.0 / (1.0 - p), seed, counter, static_cast<T*>(out.data_ptr()),
                                     static_cast<bool*>(keep.data_ptr()));  // data_ptr<T>() is CPU-only
  });
  return {out, keep};
}

Tensor dropout_backward_cuda(const Tensor& grad_in, const Tensor& keep_in, double p) {
  check_same_device("dropout_backward", grad_in, keep_in);
  if (keep_in.dtype() != DType::boolean)
    throw DTypeError(std::string("dropout_backward: the mask must be bool, got ") + dtype_name(keep_in.dtype()));
  const Tensor grad = contiguous(grad_in);
  const Tensor keep = contiguous(keep_in);
  Tensor out = empty_like_contiguous(grad, grad.dtype());
  dispatch_cuda("dropout_backward", grad.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    kernels::dropout_backward_cuda<T>(grad.device().index, static_cast<const T*>(grad.data_ptr()),
                                      static_cast<const bool*>(keep.data_ptr()), grad.numel(), 1.0 / (1.0 - p),
                                      static_cast<T*>(out.data_ptr()));
  });
  return out;
}
#endif

}  // namespace

bool dropout_fused_applies(const Tensor& x) {
#if GRAFT_WITH_CUDA
  if (x.device().is_cuda())
    return x.dtype() == DType::f32 || x.dtype() == DType::f64 || x.dtype() == DType::bf16 || x.dtype() == DType::f16;
#endif
  return x.device().is_cpu() && (x.dtype() == DType::f32 || x.dtype() == DType::f64);
}

std::pair<Tensor, Tensor> dropout_forward(const Tensor& x_in, double p, uint64_t seed, uint64_t counter) {
#if GRAFT_WITH_CUDA
  if (x_in.device().is_cuda()) return dropout_forward_cuda(x_in, p, seed, counter);
#endif
  check_cpu("dropout", x_in);
  if (!dropout_fused_applies(x_in)) detail::throw_dtype("dropout", x_in.dtype(), "f32, f64");
  if (!(p >= 0.0 && p < 1.0)) throw ValueError("dropout: p must be in [0, 1), got " + std::to_string(p));
  const Tensor x = contiguous(x_in);
  Tensor out = empty_like_contiguous(x, x.dtype());
  Tensor keep = empty(x.shape(), DType::boolean);
  GRAFT_DISPATCH_F32_F64("dropout", x.dtype(), [&] {
    kernels::dropout_forward_cpu<scalar_t>(x.data_ptr<scalar_t>(), x.numel(), 1.0 - p,
                                           static_cast<scalar_t>(1.0 / (1.0 - p)), seed, counter,
                                           out.data_ptr<scalar_t>(), keep.data_ptr<bool>());
  });
  return {out, keep};
}

Tensor dropout_backward(const Tensor& grad_in, const Tensor& keep, double p) {
  if (grad_in.shape() != keep.shape())
    throw ShapeError("dropout_backward: gradient " + shape_str(grad_in.shape()) + " does not match the mask " +
                     shape_str(keep.shape()));
#if GRAFT_WITH_CUDA
  if (grad_in.device().is_cuda() || keep.device().is_cuda()) return dropout_backward_cuda(grad_in, keep, p);
#endif
  check_cpu("dropout_backward", grad_in);
  const Tensor grad = contiguous(grad_in);
  Tensor out = empty_like_contiguous(grad, grad.dtype());
  GRAFT_DISPATCH_F32_F64("dropout_backward", grad.dtype(), [&] {
    kernels::dropout_backward_cpu<scalar_t>(grad.data_ptr<scalar_t>(), keep.data_ptr<bool>(), grad.numel(),
                                            static_cast<scalar_t>(1.0 / (1.0 - p)), out.data_ptr<scalar_t>());
  });
  return out;
}

}  // namespace graft::ops
