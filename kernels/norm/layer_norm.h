// LayerNorm over the last `cols` elements of each of `rows` contiguous rows:
//   y = (x - mean) * rstd * weight + bias,   rstd = 1 / sqrt(var_biased + eps)
// weight and bias (length cols) may be null. Forward writes mean[rows] and rstd[rows], which
// backward reads. Backward overwrites grad_x, grad_weight, grad_bias (any may be null); the
// parameter gradients sum rows in order, so they do not depend on the thread count.
#pragma once

#include <cstdint>

#include "kernels/common/half.h"

namespace graft::kernels {

template <class T>
void layer_norm_forward_cpu(const T* x, const T* weight, const T* bias, int64_t rows, int64_t cols,
                            double eps, T* y, T* mean, T* rstd);
template <class T>
void layer_norm_backward_cpu(const T* grad_y, const T* x, const T* mean, const T* rstd, const T* weight,
                             int64_t rows, int64_t cols, T* grad_x, T* grad_weight, T* grad_bias);

// --- CUDA (kernels/norm/cuda.cu; declared in every build, defined only with CUDA) ---
// The same contract on device pointers of `device`, queued on the calling thread's stream
// (kernels/common/cuda.h). T is float, double, bf16 or f16. mean/rstd are LayerNormStat<T>: T for
// f32/f64 (as the CPU keeps them), float for bf16/f16. Row statistics and grad_x are computed in
// double for f32/f64 inputs (as the CPU does) and in float for bf16/f16. The parameter gradients
// sum fixed chunks of rows in order, then the chunks in order: the same bits on every run.
template <class T> struct LayerNormStat { using type = T; };
template <> struct LayerNormStat<bf16> { using type = float; };
template <> struct LayerNormStat<f16> { using type = float; };
template <class T> using layer_norm_stat_t = typename LayerNormStat<T>::type;

template <class T>
void layer_norm_forward_cuda(const T* x, const T* weight, const T* bias, int64_t rows, int64_t cols, double eps, T* y,
                             layer_norm_stat_t<T>* mean, layer_norm_stat_t<T>* rstd, int device);
template <class T>
void layer_norm_backward_cuda(const T* grad_y, const T* x, const layer_norm_stat_t<T>* mean,
                              const layer_norm_stat_t<T>* rstd, const T* weight, int64_t rows, int64_t cols,
                              T* grad_x, T* grad_weight, T* grad_bias, int device);

}  // namespace graft::kernels
