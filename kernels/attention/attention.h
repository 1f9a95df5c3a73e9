// Raw scaled dot-product attention kernels, no autograd:
//   out = softmax(scale * q k^T, masked) v,   with dropout on the probabilities when p > 0.
// Shape letters: B batch, H heads, Sq queries, Sk keys, D head dim of q and k, Dv head dim of v.
//
// Layouts (all row-major, contiguous):
//   q [B, H, Sq, D], k [B, H, Sk, D], v [B, H, Sk, Dv], out / dout [B, H, Sq, Dv],
//   lse [B, H, Sq] (natural log-sum-exp of each row's scaled, masked scores; +inf for a row whose
//   keys are all masked), key_padding_mask [B, Sk] or null (nonzero = that key is masked out).
// Masks: causal means query i sees keys j <= i (top-left aligned). A row with every key masked
// gives out = 0, lse = +inf, and zero gradients: never NaN.
// Dropout: element (b, h, i, j) of the probabilities is kept when
//   philox_uniform(seed, counter, ((b*H + h)*Sq + i)*Sk + j) < 1 - p
// (graft::bernoulli's draw over [B, H, Sq, Sk]) and kept values are scaled by 1/(1-p); lse is of
// the probabilities before dropout. Backward regenerates the same mask from (seed, counter).
//
// Forward OVERWRITES out and lse. Backward reads q, k, v, out, lse (as forward wrote them) and
// dout, and OVERWRITES dq, dk, dv.
//
// Two backends: the reference (plain loops one query row at a time, accumulating in double, f32
// and f64: the truth) and the CPU one (f32, AVX2/FMA, flash-style: tiles of queries x keys with an
// online softmax; backward recomputes the probabilities tile by tile; never the full Sq x Sk
// matrix; OpenMP over batch x heads, and over key chunks when there are few heads). CUDA builds
// add a third, the same flash-style scheme on the GPU (declared at the end).
#pragma once

#include <cstdint>

#include "kernels/common/half.h"

namespace graft::kernels {

struct AttentionShape {
  int64_t B = 0, H = 0, Sq = 0, Sk = 0, D = 0, Dv = 0;
};

struct AttentionParams {
  double scale = 1.0;
  bool causal = false;
  const bool* key_padding_mask = nullptr;  // [B, Sk] or null
  double dropout_p = 0.0;                  // in [0, 1); 0 = no dropout
  uint64_t dropout_seed = 0, dropout_counter = 0;
};

// --- reference: plain loops ---
template <class S>
void attention_reference_forward(const AttentionShape& shape, const AttentionParams& params, const S* q, const S* k,
                                 const S* v, S* out, S* lse);
template <class S>
void attention_reference_backward(const AttentionShape& shape, const AttentionParams& params, const S* q, const S* k,
                                  const S* v, const S* out, const S* lse, const S* dout, S* dq, S* dk, S* dv);

// Element strides of a q, k, v or out [B, H, S, Dh] whose last dim is contiguous. The CPU forward
// reads its operands and writes out through these, so views with the heads split off the feature
// dim ([B, S, H, Dh] underneath, as attention layers make and merge back) need no copies.
struct AttentionOperandStrides {
  int64_t batch = 0, head = 0, row = 0;
};
struct AttentionLayout {
  AttentionOperandStrides q, k, v, out;
};
AttentionLayout attention_contiguous_layout(const AttentionShape& shape);  // the layouts above

// --- CPU: the flash-style AVX2/FMA kernel, f32 ---
void attention_cpu_forward(const AttentionShape& shape, const AttentionLayout& layout, const AttentionParams& params,
                           const float* q, const float* k, const float* v, float* out, float* lse);
void attention_cpu_forward(const AttentionShape& shape, const AttentionParams& params, const float* q, const float* k,
                           const float* v, float* out, float* lse);
void attention_cpu_backward(const AttentionShape& shape, const AttentionParams& params, const float* q,
                            const float* k, const float* v, const float* out, const float* lse, const float* dout,
                            float* dq, float* dk, float* dv);

// --- CUDA (kernels/attention/cuda.cu; defined in CUDA builds only): flash-style tiles, f32
// accumulation. S is the storage type of q, k, v, out, dout and the gradients: float, bf16 or f16;
// lse is always f32. Pointers are device pointers on `device`, key_padding_mask included; work
// goes on that device's cuda::stream(). D and Dv at most kAttentionCudaMaxHeadDim (a larger one
// throws NotImplementedError). Forward reads q, k, v and writes out through `layout` (last dims
// contiguous); backward takes every operand contiguous. Results are bit-identical run to run
// (no atomics: dK, dV and dQ each come from their own kernel, summed in a fixed order).
constexpr int64_t kAttentionCudaMaxHeadDim = 128;

template <class S>
void attention_cuda_forward(const AttentionShape& shape, const AttentionLayout& layout, const AttentionParams& params,
                            const S* q, const S* k, const S* v, S* out, float* lse, int device);
template <class S>
void attention_cuda_backward(const AttentionShape& shape, const AttentionParams& params, const S* q, const S* k,
                             const S* v, const S* out, const float* lse, const S* dout, S* dq, S* dk, S* dv,
                             int device);

}  // namespace graft::kernels
