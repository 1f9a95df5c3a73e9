// Scaled dot-product attention as one differentiable op:
//   out = softmax(scale * q k^T + mask) v
// q [B, h, Sq, d], k [B, h, Sk, d], v [B, h, Sk, dv] -> out [B, h, Sq, dv].
// Masks: key_padding_mask [B, Sk] bool, true = that key is padding and gets no attention
// (PyTorch nn.MultiheadAttention's convention); causal: query i sees keys j <= i (top-left
// aligned, as torch's is_causal). A query row whose keys are all masked gives zeros (and zero
// gradient), never NaN. dropout_p drops attention probabilities while training (scaled by
// 1/(1-p)); the mask comes from Philox on (seed, element index), so backward regenerates it.
// Both implementations draw it as graft::dropout does on the [B, h, Sq, Sk] probabilities, so
// the same generator state gives the same mask in either.
// Bad input (ranks, B/h/d/Sk mismatches, mask dtype or shape, dropout_p outside [0, 1), mixed
// dtypes or devices) throws ShapeError / DTypeError / DeviceError / ValueError naming the shapes.
//
// Two implementations compute the same function: `reference`, a composite of autograd ops (the
// truth, and what gradcheck runs on), and `fused`, one autograd node on the flash-style CPU
// kernel (kernels/attention): tiled over query and key blocks with an online softmax; forward
// saves the row log-sum-exp, backward recomputes probabilities tile by tile and never builds the
// S x S matrix (f64 runs the kernels' plain reference loops in the same node). `automatic`
// takes the fused one where it applies (f32/f64 on the CPU; f32/bf16/f16 on CUDA with head dims up to
// 128), the reference otherwise.
#pragma once

#include <optional>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace graft {

struct AttentionOptions {
  Tensor key_padding_mask;       // undefined, or bool [B, Sk]: true = masked out
  bool causal = false;
  double dropout_p = 0.0;        // applied only when > 0 (callers pass 0 in eval mode)
  std::optional<double> scale;   // default 1 / sqrt(d)
  Generator* generator = nullptr;  // dropout seed source; the default generator when null
};

enum class AttentionImplementation { automatic, reference, fused };

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options = {},
                                    AttentionImplementation implementation = AttentionImplementation::automatic);

}  // namespace graft
