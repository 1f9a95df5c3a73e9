#include "nn/pooling.h"

#include "autograd/ops.h"

namespace graft::nn {

Tensor mean_pool(const Tensor& hidden, const Tensor& attention_mask) {
  if (!hidden.defined() || hidden.dim() != 3 || !is_floating(hidden.dtype())) {
    throw ShapeError(
        "mean_pool: hidden must be a floating tensor [N, S, E], got " +
        (hidden.defined() ? shape_str(hidden.shape()) + " " + dtype_name(hidden.dtype()) : std::string("undefined")));
  }
  const Shape mask_shape{hidden.size(0), hidden.size(1)};
  if (!attention_mask.defined() || attention_mask.shape() != mask_shape) {
    throw ShapeError("mean_pool: attention_mask must be " + shape_str(mask_shape) + " for hidden " +
                     shape_str(hidden.shape()) + ", got " +
                     (attention_mask.defined() ? shape_str(attention_mask.shape()) : std::string("undefined")));
  }
  const Tensor weights = attention_mask.detach().to(hidden.dtype()).unsqueeze(-1);  // [N, S, 1]
  return sum(hidden * weights, {1}) / clamp_min(sum(weights, {1}), 1e-9);
}

Tensor l2_normalize(const Tensor& x, int64_t dim, double eps) {
  if (!x.defined() || !is_floating(x.dtype()))
    throw DTypeError("l2_normalize: x must be a floating tensor, got " +
                     (x.defined() ? std::string(dtype_name(x.dtype())) : std::string("undefined")));
  // max(||x||, eps) = sqrt(max(||x||^2, eps^2)); clamping the square keeps a zero vector's gradient
  // zero instead of 0 * inf.
  return x * rsqrt(clamp_min(sum(square(x), {dim}, /*keepdim=*/true), eps * eps));
}

}  // namespace graft::nn
