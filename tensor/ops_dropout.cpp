// Dropout's raw forward and backward on the fused kernel (kernels/random/dropout.h): one pass
// draws the mask and applies it, instead of bernoulli -> cast -> scale -> multiply.
#include "kernels/random/dropout.h"
#include "tensor/factory.h"
#include "tensor/iter.h"
#include "tensor/ops.h"

namespace graft::ops {

bool dropout_fused_applies(const Tensor& x) {
  return x.device().is_cpu() && (x.dtype() == DType::f32 || x.dtype() == DType::f64);
}

std::pair<Tensor, Tensor> dropout_forward(const Tensor& x_in, double p, uint64_t seed, uint64_t counter) {
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
  check_cpu("dropout_backward", grad_in);
  if (grad_in.shape() != keep.shape())
    throw ShapeError("dropout_backward: gradient " + shape_str(grad_in.shape()) + " does not match the mask " +
                     shape_str(keep.shape()));
  const Tensor grad = contiguous(grad_in);
  Tensor out = empty_like_contiguous(grad, grad.dtype());
  GRAFT_DISPATCH_F32_F64("dropout_backward", grad.dtype(), [&] {
    kernels::dropout_backward_cpu<scalar_t>(grad.data_ptr<scalar_t>(), keep.data_ptr<bool>(), grad.numel(),
                                            static_cast<scalar_t>(1.0 / (1.0 - p)), out.data_ptr<scalar_t>());
  });
  return out;
}

}  // namespace graft::ops
