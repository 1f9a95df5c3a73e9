// The fused attention: ONE autograd node on the kernels of kernels/attention (the flash-style
// AVX2 kernel for f32, the reference loops for f64). Forward saves q, k, v (as given: the f32
// kernel reads views in place; backward makes them contiguous), the output, the row
// log-sum-exp [B, h, Sq] and the dropout seed and counter; backward recomputes the probabilities
// from them (and regenerates the dropout mask) instead of keeping the Sq x Sk matrix.
// On CUDA (f32, bf16, f16; head dims up to 128) the same node runs kernels/attention/cuda.cu:
// q, k, v read in place when their last dim is contiguous, lse kept in f32 whatever the dtype.
// Shape letters: B batch, h heads, Sq queries, Sk keys, d head dim of q and k, dv head dim of v.
#include <string>
#include <type_traits>
#include <vector>

#include "autograd/attention.h"
#include "autograd/functions/common.h"
#include "kernels/attention/attention.h"
#include "tensor/error.h"
#include "tensor/factory.h"

namespace graft {

using namespace autograd;

namespace {

// The layout of q, k, v as the f32 kernel reads them: their own strides (last dim contiguous).
kernels::AttentionLayout layout_of(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out) {
  auto of = [](const Tensor& t) {
    return kernels::AttentionOperandStrides{t.strides()[0], t.strides()[1], t.strides()[2]};
  };
  return {of(q), of(k), of(v), of(out)};
}

bool last_dim_contiguous(const Tensor& t) { return t.size(3) == 1 || t.strides()[3] == 1; }

template <class S>
void forward(const kernels::AttentionShape& shape, const kernels::AttentionParams& params, const Tensor& q,
             const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse) {
  if constexpr (std::is_same_v<S, float>)
    kernels::attention_cpu_forward(shape, layout_of(q, k, v, out), params, q.data_ptr<S>(), k.data_ptr<S>(),
                                   v.data_ptr<S>(), out.data_ptr<S>(), lse.data_ptr<S>());
  else
    kernels::attention_reference_forward<S>(shape, params, q.data_ptr<S>(), k.data_ptr<S>(), v.data_ptr<S>(),
                                            out.data_ptr<S>(), lse.data_ptr<S>());
}

template <class S>
void backward(const kernels::AttentionShape& shape, const kernels::AttentionParams& params, const Tensor& q,
              const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& dout,
              const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  if constexpr (std::is_same_v<S, float>)
    kernels::attention_cpu_backward(shape, params, q.data_ptr<S>(), k.data_ptr<S>(), v.data_ptr<S>(),
                                    out.data_ptr<S>(), lse.data_ptr<S>(), dout.data_ptr<S>(), dq.data_ptr<S>(),
                                    dk.data_ptr<S>(), dv.data_ptr<S>());
  else
    kernels::attention_reference_backward<S>(shape, params, q.data_ptr<S>(), k.data_ptr<S>(), v.data_ptr<S>(),
                                             out.data_ptr<S>(), lse.data_ptr<S>(), dout.data_ptr<S>(),
                                             dq.data_ptr<S>(), dk.data_ptr<S>(), dv.data_ptr<S>());
}

// Runs f<float> or f<double> by q's dtype (attention_fused_applies admitted only those).
template <class F>
void by_dtype(DType dtype, F&& f) {
  if (dtype == DType::f32)
    f(float{});
  else
    f(double{});
}

#if GRAFT_WITH_CUDA
// --- CUDA: the kernels of kernels/attention/cuda.cu, f32 / bf16 / f16 storage, f32 lse. ---

template <class S>
const S* device_ptr(const Tensor& t) {
  return static_cast<const S*>(t.data_ptr());  // data_ptr<T>() is the CPU accessor: it refuses device memory
}
template <class S>
S* device_mut_ptr(const Tensor& t) {
  return static_cast<S*>(t.data_ptr());
}

// Runs f(S{}) with S = q's storage type (attention_fused_applies admitted only these).
template <class F>
void by_cuda_dtype(DType dtype, F&& f) {
  if (dtype == DType::f32)
    f(float{});
  else if (dtype == DType::bf16)
    f(bf16{});
  else
    f(f16{});
}

Tensor attention_fused_cuda(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options,
                            double scale) {
  const kernels::AttentionShape shape{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3)};
  if (shape.D > kernels::kAttentionCudaMaxHeadDim || shape.Dv > kernels::kAttentionCudaMaxHeadDim)
    throw NotImplementedError("scaled_dot_product_attention: the fused CUDA kernel takes head dims up to " +
                              std::to_string(kernels::kAttentionCudaMaxHeadDim) + ", got q " + shape_str(q.shape()) +
                              ", k " + shape_str(k.shape()) + ", v " + shape_str(v.shape()) +
                              "; use AttentionImplementation::reference");
  // Forward reads q, k, v through their strides when the last dim has stride 1 (the views
  // attention layers pass; a size-1 last dim of another stride is copied too, as on the CPU);
  // backward takes them contiguous.
  auto prepare = [](const Tensor& t) { return t.strides()[3] == 1 ? t : ops::contiguous(t); };
  const Tensor qc = prepare(q), kc = prepare(k), vc = prepare(v);
  const Tensor mask = options.key_padding_mask.defined() ? ops::contiguous(options.key_padding_mask) : Tensor();
  kernels::AttentionParams params;
  params.scale = scale;
  params.causal = options.causal;
  params.key_padding_mask = mask.defined() ? static_cast<const bool*>(mask.data_ptr()) : nullptr;
  params.dropout_p = options.dropout_p;
  if (options.dropout_p > 0) {
    // The CPU's draw exactly, so a seed gives the same mask on either device.
    Generator& g = options.generator ? *options.generator : default_generator();
    params.dropout_seed = g.seed();
    params.dropout_counter = g.reserve(shape.B * shape.H * shape.Sq * shape.Sk);
  }
  const int device = q.device().index;
  const Tensor out = empty({shape.B, shape.H, shape.Sq, shape.Dv}, TensorOptions(q.dtype()).with_device(q.device()));
  const Tensor lse = empty({shape.B, shape.H, shape.Sq}, TensorOptions(DType::f32).with_device(q.device()));
  by_cuda_dtype(q.dtype(), [&](auto s) {
    using S = decltype(s);
    kernels::attention_cuda_forward<S>(shape, layout_of(qc, kc, vc, out), params, device_ptr<S>(qc),
                                       device_ptr<S>(kc), device_ptr<S>(vc), device_mut_ptr<S>(out),
                                       device_mut_ptr<float>(lse), device);
  });
  return record("scaled_dot_product_attention", out, {q, k, v},
                [q_saved = saved(qc), k_saved = saved(kc), v_saved = saved(vc), saved_out = saved(out), lse, mask,
                 shape, params, device](const Tensor& grad) {
                  const Tensor qc = ops::contiguous(q_saved), kc = ops::contiguous(k_saved),
                               vc = ops::contiguous(v_saved), out_c = ops::contiguous(saved_out);
                  // The kernel reads dout as q's storage type: never reinterpret another dtype's bits.
                  const Tensor dout = grad.dtype() == qc.dtype() ? ops::contiguous(grad) : ops::cast(grad, qc.dtype());
                  const Tensor dq = empty_like(qc), dk = empty_like(kc), dv = empty_like(vc);
                  by_cuda_dtype(qc.dtype(), [&](auto s) {
                    using S = decltype(s);
                    kernels::attention_cuda_backward<S>(
                        shape, params, device_ptr<S>(qc), device_ptr<S>(kc), device_ptr<S>(vc), device_ptr<S>(out_c),
                        device_ptr<float>(lse), device_ptr<S>(dout), device_mut_ptr<S>(dq), device_mut_ptr<S>(dk),
                        device_mut_ptr<S>(dv), device);
                  });
                  return std::vector<Tensor>{dq, dk, dv};
                });
}
#endif  // GRAFT_WITH_CUDA

}  // namespace

namespace detail {

bool attention_fused_applies(const Tensor& q) {
#if GRAFT_WITH_CUDA
  if (q.device().is_cuda())
    return (q.dtype() == DType::f32 || q.dtype() == DType::bf16 || q.dtype() == DType::f16) &&
           q.size(3) <= kernels::kAttentionCudaMaxHeadDim;
#endif
  return q.device().is_cpu() && (q.dtype() == DType::f32 || q.dtype() == DType::f64);
}

// The same, knowing v: on CUDA v's head dim has the same limit as q's (what attention.cpp asks).
bool attention_fused_applies(const Tensor& q, const Tensor& v) {
#if GRAFT_WITH_CUDA
  if (q.device().is_cuda()) return attention_fused_applies(q) && v.size(3) <= kernels::kAttentionCudaMaxHeadDim;
#endif
  return attention_fused_applies(q);
}

Tensor attention_fused(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options,
                       double scale) {
#if GRAFT_WITH_CUDA
  if (q.device().is_cuda()) return attention_fused_cuda(q, k, v, options, scale);
#endif
  // f32 reads q, k, v in place (the views attention layers pass); backward, and the f64 reference,
  // take them contiguous.
  const bool in_place = q.dtype() == DType::f32 && last_dim_contiguous(q) && last_dim_contiguous(k) &&
                        last_dim_contiguous(v);
  auto prepare = [&](const Tensor& t) {
    if (!in_place) return ops::contiguous(t);
    // A size-1 last dim may carry any stride: restride it to 1 so the kernel's view is exact.
    if (t.size(3) == 1 && t.strides()[3] != 1) return ops::contiguous(t);
    return t;
  };
  const Tensor qc = prepare(q), kc = prepare(k), vc = prepare(v);
  const Tensor mask = options.key_padding_mask.defined() ? ops::contiguous(options.key_padding_mask) : Tensor();
  const kernels::AttentionShape shape{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3)};
  kernels::AttentionParams params;
  params.scale = scale;
  params.causal = options.causal;
  params.key_padding_mask = mask.defined() ? mask.data_ptr<bool>() : nullptr;
  params.dropout_p = options.dropout_p;
  if (options.dropout_p > 0) {
    // The same draw as graft::dropout on the [B, h, Sq, Sk] probabilities (the reference's).
    Generator& g = options.generator ? *options.generator : default_generator();
    params.dropout_seed = g.seed();
    params.dropout_counter = g.reserve(shape.B * shape.H * shape.Sq * shape.Sk);
  }
  const TensorOptions like = TensorOptions(q.dtype()).with_device(q.device());
  // out stays contiguous: writing it head-merged ([B, Sq, h, dv] underneath) saves the layer's copy
  // in inference but costs a copy in backward and strided reads downstream (measured slower on
  // bench/compare.sh attention), so the kernel's out strides are the contiguous ones here.
  const Tensor out = empty({shape.B, shape.H, shape.Sq, shape.Dv}, like);
  const Tensor lse = empty({shape.B, shape.H, shape.Sq}, like);
  by_dtype(q.dtype(), [&](auto s) { forward<decltype(s)>(shape, params, qc, kc, vc, out, lse); });
  return record("scaled_dot_product_attention", out, {q, k, v},
                [q_saved = saved(qc), k_saved = saved(kc), v_saved = saved(vc), saved_out = saved(out), lse, mask,
                 shape, params](const Tensor& grad) {
                  const Tensor qc = ops::contiguous(q_saved), kc = ops::contiguous(k_saved),
                               vc = ops::contiguous(v_saved), out_c = ops::contiguous(saved_out);
                  const Tensor dout = ops::contiguous(grad);
                  const Tensor dq = empty_like(qc), dk = empty_like(kc), dv = empty_like(vc);
                  by_dtype(qc.dtype(), [&](auto s) {
                    backward<decltype(s)>(shape, params, qc, kc, vc, out_c, lse, dout, dq, dk, dv);
                  });
                  return std::vector<Tensor>{dq, dk, dv};
                });
}

}  // namespace detail

}  // namespace graft
