// Fused cross-entropy over class indices on CUDA (kernels/loss/cuda.cu): one pass per row for the
// loss, one kernel for the input gradient.
//
// Layout: logits x are contiguous [N, C, D] (D = 1 for [N, C]): class c of row m = n * D + d sits
// at x[(n * C + c) * D + d], so [N, C, d1, ...] inputs need no permuted copy. The M = N * D
// targets are i64. With logp = x - logsumexp(x) per row, class weights w (all 1 when weight is
// null) and eps the label smoothing, a row whose target t is not ignore_index has
//   loss_m = (1 - eps) * -w[t] * logp[t] + eps * -(sum_c w[c] * logp[c]) / C,  row weight w[t]
// (PyTorch's smoothing, with weights); an ignored row has loss and weight 0. mean = sum of losses
// / sum of row weights. Sums run in a fixed order: results are bit-identical run to run.
// T is float, double, bf16 or f16; device pointers on `device`; work queued on cuda::stream().
#pragma once

#include <cstdint>

namespace graft::kernels {

// The compute (and saved log-sum-exp) type: double for double, float otherwise.
template <class T>
struct CrossEntropyAcc { using type = float; };
template <>
struct CrossEntropyAcc<double> { using type = double; };
template <class T>
using cross_entropy_acc_t = typename CrossEntropyAcc<T>::type;

enum class LossReduction { none, sum, mean };

struct CrossEntropyShape {
  int64_t N = 0, C = 0, D = 1;
  int64_t rows() const { return N * D; }
};

struct CrossEntropyParams {
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  LossReduction reduction = LossReduction::mean;
};

// out: [M] row losses (none) or one value (sum / mean). lse: [M], saved for backward.
// total_weight: one value, the sum of row weights (mean's divisor; written for sum and mean).
// Waits for the device to check the targets: returns false when a target other than ignore_index
// lies outside [0, C), with *bad_target the first such target (lowest row); out is then garbage.
template <class T>
bool cross_entropy_forward_cuda(int device, const T* x, CrossEntropyShape shape, const int64_t* target, const T* weight,
                                CrossEntropyParams params, T* out, cross_entropy_acc_t<T>* lse,
                                cross_entropy_acc_t<T>* total_weight, int64_t* bad_target);

// grad_x = d(out)/dx * grad_out, with grad_out [M] (none) or one value (sum / mean), and
// total_weight as the forward wrote it (read for mean only). Per valid row, with p = softmax(x):
//   grad_x[c] = g_m * ((1 - eps) * w[t] * (p[c] - [c == t]) + eps * (p[c] * sum(w) - w[c]) / C)
// and g_m * 0 on ignored rows (NaN when a mean had no weight, as on the CPU); g_m is grad_out[m],
// grad_out[0], or grad_out[0] / total_weight.
template <class T>
void cross_entropy_backward_cuda(int device, const T* x, CrossEntropyShape shape, const int64_t* target,
                                 const T* weight, CrossEntropyParams params, const cross_entropy_acc_t<T>* lse,
                                 const cross_entropy_acc_t<T>* total_weight, const T* grad_out, T* grad_x);

}  // namespace graft::kernels
