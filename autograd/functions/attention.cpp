// graft::scaled_dot_product_attention: validate every argument, then pick an implementation. The
// `reference` composite of autograd ops lives here too (it is short); the fused node is in
// attention_fused.cpp. Both may assume what validate() checked.
//
// Shape letters: B batch, h heads, Sq queries, Sk keys, d head dim of q and k, dv head dim of v.
#include <cmath>
#include <limits>
#include <string>

#include "autograd/attention.h"
#include "autograd/autocast.h"
#include "autograd/ops.h"
#include "tensor/error.h"

namespace graft {

namespace detail {
// Defined in attention_fused.cpp (arguments already validated).
bool attention_fused_applies(const Tensor& q, const Tensor& v);
Tensor attention_fused(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options,
                       double scale);
}  // namespace detail

namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

std::string shapes(const Tensor& q, const Tensor& k, const Tensor& v) {
  return "q " + shape_str(q.shape()) + ", k " + shape_str(k.shape()) + ", v " + shape_str(v.shape());
}

// Throws a typed error naming the op, what it was given and what it expected; returns the scale.
double validate(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  const std::string op = kOp;
  if (!q.defined() || !k.defined() || !v.defined()) throw ValueError(op + ": q, k and v must all be defined");
  for (const auto& [name, t] : {std::pair{"q", &q}, std::pair{"k", &k}, std::pair{"v", &v}})
    if (t->dim() != 4)
      throw ShapeError(op + ": " + name + " must be 4-D [B, h, S, d], got " + shape_str(t->shape()) + " (" +
                       shapes(q, k, v) + ")");
  if (!is_floating(q.dtype()))
    throw DTypeError(op + ": q must be floating point, got " + dtype_name(q.dtype()) + " " + shape_str(q.shape()));
  for (const auto& [name, t] : {std::pair{"k", &k}, std::pair{"v", &v}}) {
    if (t->dtype() != q.dtype())
      throw DTypeError(op + ": " + name + " is " + dtype_name(t->dtype()) + " " + shape_str(t->shape()) +
                       ", expected q's dtype " + dtype_name(q.dtype()));
    if (t->device() != q.device())
      throw DeviceError(op + ": " + name + " is on " + t->device().str() + ", q on " + q.device().str());
  }
  const int64_t B = q.size(0), h = q.size(1), Sk = k.size(2);
  if (k.size(0) != B || k.size(1) != h || k.size(3) != q.size(3))
    throw ShapeError(op + ": k must be [B, h, Sk, d] with q's B = " + std::to_string(B) + ", h = " +
                     std::to_string(h) + ", d = " + std::to_string(q.size(3)) + "; got " + shapes(q, k, v));
  if (v.size(0) != B || v.size(1) != h || v.size(2) != Sk)
    throw ShapeError(op + ": v must be [B, h, Sk, dv] with B = " + std::to_string(B) + ", h = " + std::to_string(h) +
                     ", Sk = " + std::to_string(Sk) + " (from q and k); got " + shapes(q, k, v));
  if (q.size(3) < 1) throw ShapeError(op + ": head dim d must be >= 1; got " + shapes(q, k, v));
  if (const Tensor& mask = options.key_padding_mask; mask.defined()) {
    if (mask.dtype() != DType::boolean)
      throw DTypeError(op + ": key_padding_mask must be bool (true = masked), got " + dtype_name(mask.dtype()) + " " +
                       shape_str(mask.shape()));
    if (mask.shape() != Shape{B, Sk})
      throw ShapeError(op + ": key_padding_mask must be [B, Sk] = " + shape_str({B, Sk}) + ", got " +
                       shape_str(mask.shape()) + " (" + shapes(q, k, v) + ")");
    if (mask.device() != q.device())
      throw DeviceError(op + ": key_padding_mask is on " + mask.device().str() + ", q on " + q.device().str());
  }
  if (!(options.dropout_p >= 0.0 && options.dropout_p < 1.0))
    throw ValueError(op + ": dropout_p must be in [0, 1), got " + std::to_string(options.dropout_p));
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(q.size(3))));
  if (!std::isfinite(scale)) throw ValueError(op + ": scale must be finite, got " + std::to_string(scale));
  return scale;
}

// The composite: softmax(scale q k^T + mask) v from matmul, masked_fill, softmax, where, dropout.
// A fully masked row is given finite scores (its mask is lifted) and its probabilities are then
// replaced by zeros, so its output and gradients are 0 rather than NaN.
Tensor attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options,
                           double scale) {
  const int64_t B = q.size(0), Sq = q.size(2), Sk = k.size(2);
  Tensor scores = matmul(q, transpose(k, -2, -1)) * scale;  // [B, h, Sq, Sk]
  Tensor mask;                                              // true = masked, broadcasts to scores
  if (options.key_padding_mask.defined()) mask = reshape(options.key_padding_mask, {B, 1, 1, Sk});
  if (options.causal) {
    const TensorOptions index = TensorOptions(DType::i64).with_device(q.device());
    const Tensor after = gt(reshape(arange(Sk, index), {1, Sk}), reshape(arange(Sq, index), {Sq, 1}));  // j > i
    mask = mask.defined() ? logical_or(mask, after) : after;
  }
  Tensor probs;
  if (mask.defined()) {
    const Tensor masked_count = sum(mask.to(q.dtype()), {-1}, true);
    const Tensor some_visible = lt(masked_count, static_cast<double>(Sk));
    probs = softmax(masked_fill(scores, logical_and(mask, some_visible), -std::numeric_limits<double>::infinity()), -1);
    probs = where(some_visible, probs, 0.0);
  } else {
    probs = softmax(scores, -1);
  }
  if (options.dropout_p > 0) probs = dropout(probs, options.dropout_p, true, options.generator);
  return matmul(probs, v);
}

std::string why_not_fused(const Tensor& q, const Tensor& v) {
  if (q.device().is_cuda())
    return std::string("q is ") + dtype_name(q.dtype()) + " " + shape_str(q.shape()) + " and v " + shape_str(v.shape()) +
           " on " + q.device().str() + ", and the fused CUDA path runs f32, bf16 and f16 with head dims up to 128";
  if (!q.device().is_cpu()) return "q is on " + q.device().str() + " and the fused path runs on the CPU and CUDA";
  return std::string("q is ") + dtype_name(q.dtype()) + " and the fused CPU path runs f32 and f64";
}

// The op on operands already cast (or not) for autocast.
Tensor attention_dispatch(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options,
                          double scale, AttentionImplementation implementation) {
  switch (implementation) {
    case AttentionImplementation::reference:
      return attention_reference(q, k, v, options, scale);
    case AttentionImplementation::fused:
      if (!detail::attention_fused_applies(q, v))
        throw NotImplementedError(std::string(kOp) + ": the fused implementation does not apply: " + why_not_fused(q, v) +
                                  "; use AttentionImplementation::reference or automatic");
      return detail::attention_fused(q, k, v, options, scale);
    case AttentionImplementation::automatic:
      if (detail::attention_fused_applies(q, v)) return detail::attention_fused(q, k, v, options, scale);
      return attention_reference(q, k, v, options, scale);
  }
  throw ValueError(std::string(kOp) + ": unknown implementation");
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options,
                                    AttentionImplementation implementation) {
  const double scale = validate(q, k, v, options);
  if (const auto dtype = autocast::compute_dtype({q, k, v})) {
    Tensor out;
    {
      // Autocast is off inside: the op is cast once here, as a whole. (On the CPU the emulated
      // operands are still f32, and the reference composite's matmuls would round again.)
      AutocastGuard off(DType::f32);
      out = attention_dispatch(autocast::to_compute(q, *dtype), autocast::to_compute(k, *dtype),
                               autocast::to_compute(v, *dtype), options, scale, implementation);
    }
    return autocast::to_result(out, *dtype);
  }
  return attention_dispatch(q, k, v, options, scale, implementation);
}

}  // namespace graft
