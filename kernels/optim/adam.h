// Multi-tensor optimizer kernels on CUDA: the Adam/AdamW and SGD updates and the pieces of
// gradient clipping (norm, scale, clamp), each over a list of tensors in as few launches as
// possible (kernels/optim/cuda.cu: batches of up to kTensorsPerLaunch tensors passed as kernel
// parameters, like apex's / PyTorch's multi_tensor_apply).
//
// Every tensor is a contiguous buffer of `numel` elements of T (float or double) on `device`.
// The updates follow train/optim/adam.cpp and sgd.cpp operation by operation: scalars are rounded
// to T on the host first, and each add/mul/div/sqrt is rounded on its own (no fused multiply-add),
// so f32 results agree with the CPU to rounding. Work goes on the device's per-thread stream.
// Defined only in CUDA builds: callers guard their calls with GRAFT_WITH_CUDA.
#pragma once

#include <cstdint>

namespace graft::kernels::optim {

// --- Adam / AdamW ---

// One parameter of a multi-tensor Adam update. max_exp_avg_sq is null without amsgrad.
template <class T>
struct AdamTensor {
  T* param;
  const T* grad;
  T* exp_avg;
  T* exp_avg_sq;
  T* max_exp_avg_sq;
  int64_t numel;
  // Per parameter, since each has its own update count t:
  double step_size;              // lr / (1 - beta1^t)
  double bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

// One parameter group's hyper-parameters, as train/optim/adam.cpp's AdamCoefficients.
struct AdamHyper {
  double decay_factor;  // AdamW: 1 - lr * weight_decay; 1 otherwise
  double weight_decay;  // Adam's coupled L2; 0 for AdamW
  double l1, beta1, beta2, eps;
  bool amsgrad;  // then every tensor's max_exp_avg_sq is set
};

template <class T>
void adam_multi_tensor_cuda(const AdamTensor<T>* tensors, int64_t count, const AdamHyper& hyper, int device);

// --- SGD ---

// One parameter of a multi-tensor SGD update. momentum_buffer is null when the group's momentum is 0.
template <class T>
struct SgdTensor {
  T* param;
  const T* grad;
  T* momentum_buffer;
  int64_t numel;
  bool fresh_buffer;  // the buffer (all zeros) takes d as it is: torch's first update
};

struct SgdHyper {
  double lr, weight_decay, l1, momentum, dampening;
  bool nesterov;
};

template <class T>
void sgd_multi_tensor_cuda(const SgdTensor<T>* tensors, int64_t count, const SgdHyper& hyper, int device);

// --- gradient clipping ---

// A gradient buffer; is_f64 picks double, else float.
struct GradBuffer {
  void* data;
  int64_t numel;
  bool is_f64;
};

// For p finite: the sum over all buffers of |x|^p; for p infinite: max |x| (NaN when any element
// is NaN). Accumulated in double in a fixed order (each buffer by a fixed tree, the buffers in
// list order), so the result is the same run to run. One device-to-host read; the host waits.
double grad_norm_accumulate_cuda(const GradBuffer* grads, int64_t count, double norm_type, int device);
// x = x * coef (coef rounded to each buffer's type first, as the CPU does).
void grad_scale_cuda(const GradBuffer* grads, int64_t count, double coef, int device);
// x = clamp(x, -clip_value, clip_value); NaN stays NaN, as std::clamp.
void grad_clamp_cuda(const GradBuffer* grads, int64_t count, double clip_value, int device);

}  // namespace graft::kernels::optim
