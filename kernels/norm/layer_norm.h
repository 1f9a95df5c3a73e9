// LayerNorm over the last `cols` elements of each of `rows` contiguous rows:
//   y = (x - mean) * rstd * weight + bias,   rstd = 1 / sqrt(var_biased + eps)
// weight and bias (length cols) may be null. Forward writes mean[rows] and rstd[rows], which
// backward reads. Backward overwrites grad_x, grad_weight, grad_bias (any may be null); the
// parameter gradients sum rows in order, so they do not depend on the thread count.
#pragma once

#include <cstdint>

namespace graft::kernels {

template <class T>
void layer_norm_forward_cpu(const T* x, const T* weight, const T* bias, int64_t rows, int64_t cols,
                            double eps, T* y, T* mean, T* rstd);
template <class T>
void layer_norm_backward_cpu(const T* grad_y, const T* x, const T* mean, const T* rstd, const T* weight,
                             int64_t rows, int64_t cols, T* grad_x, T* grad_weight, T* grad_bias);

}  // namespace graft::kernels
