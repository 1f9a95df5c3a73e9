// matmul (torch.matmul semantics, broadcast batch dims) and layer_norm, on the CPU and (in CUDA
// builds) on CUDA: the same validation and operand layout, then the device's kernel.
#include <algorithm>

#include "kernels/gemm/gemm.h"
#include "kernels/norm/layer_norm.h"
#include "tensor/factory.h"
#include "tensor/iter.h"
#include "tensor/ops.h"

namespace graft::ops {

namespace {

// A [B, R, C] operand as the GEMM wants it: row-major or transposed with a leading dimension.
struct MatrixOperand {
  Tensor t;
  bool trans = false;
  int64_t ld = 0, batch_stride = 0;
};

MatrixOperand as_gemm_operand(const Tensor& x3) {
  auto fits = [](const Tensor& t, MatrixOperand& m) {
    const int64_t R = t.shape()[1], C = t.shape()[2], s1 = t.strides()[1], s2 = t.strides()[2];
    if ((s2 == 1 || C == 1) && (R == 1 || s1 >= std::max<int64_t>(C, 1))) {
      m.trans = false;
      m.ld = R == 1 ? std::max<int64_t>(C, 1) : s1;
    } else if ((s1 == 1 || R == 1) && (C == 1 || s2 >= std::max<int64_t>(R, 1))) {
      m.trans = true;
      m.ld = C == 1 ? std::max<int64_t>(R, 1) : s2;
    } else {
      return false;
    }
    m.batch_stride = t.shape()[0] == 1 ? 0 : t.strides()[0];
    m.t = t;
    return true;
  };
  MatrixOperand m;
  if (fits(x3, m)) return m;
  fits(contiguous(x3), m);
  return m;
}

// Folds the batch dims of an expanded [..., R, C] operand into one, copying only when needed.
Tensor fold_batch(const Tensor& x, int64_t batch) {
  const Shape shape{batch, x.shape()[static_cast<size_t>(x.dim() - 2)], x.shape()[static_cast<size_t>(x.dim() - 1)]};
  Tensor v = try_view(x, shape);
  return v.defined() ? v : try_view(contiguous(x), shape);
}

// Throws unless this build has kernels for x's device: the CPU, and CUDA in CUDA builds.
void check_device_supported(const char* op, const Tensor& x) {
#if GRAFT_WITH_CUDA
  if (x.device().is_cuda()) return;
#endif
  check_cpu(op, x);
}

#if GRAFT_WITH_CUDA
// Calls f(T{}) for the floating types the CUDA kernels take.
template <class F>
void dispatch_cuda_float(const char* op, DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::bf16: return f(bf16{});
    case DType::f16: return f(f16{});
    default: detail::throw_dtype(op, dtype, "f32, f64, bf16, f16");
  }
}

kernels::GemmType cuda_gemm_type(const char* op, DType dtype) {
  switch (dtype) {
    case DType::f32: return kernels::GemmType::f32;
    case DType::f64: return kernels::GemmType::f64;
    case DType::bf16: return kernels::GemmType::bf16;
    case DType::f16: return kernels::GemmType::f16;
    default: detail::throw_dtype(op, dtype, "f32, f64, bf16, f16");
  }
}
#endif

// Before any work: the device, and on CUDA the dtype (the CPU path checks its dtypes as it dispatches).
void check_gemm_supported(const char* op, const Tensor& x) {
  check_device_supported(op, x);
#if GRAFT_WITH_CUDA
  if (x.device().is_cuda()) cuda_gemm_type(op, x.dtype());
#endif
}

}  // namespace

void check_matmul(const Tensor& a, const Tensor& b) {
  check_same_device("matmul", a, b);
  check_same_dtype("matmul", a, b);
  const std::string shapes = shape_str(a.shape()) + " and " + shape_str(b.shape());
  if (a.dim() == 0 || b.dim() == 0) throw ShapeError("matmul: both operands need at least 1 dim, got shapes " + shapes);
  const int64_t k_a = a.shape().back(), k_b = b.dim() == 1 ? b.shape()[0] : b.shape()[static_cast<size_t>(b.dim() - 2)];
  if (k_a != k_b)
    throw ShapeError("matmul: shapes " + shapes + " cannot be multiplied (" + std::to_string(k_a) + " vs " +
                     std::to_string(k_b) + ")");
  const Shape a_batch(a.shape().begin(), a.shape().end() - std::min<int64_t>(a.dim(), 2));
  const Shape b_batch(b.shape().begin(), b.shape().end() - std::min<int64_t>(b.dim(), 2));
  try {
    broadcast_shapes("matmul", a_batch, b_batch);
  } catch (const ShapeError&) {
    throw ShapeError("matmul: the batch dims of shapes " + shapes + " cannot be broadcast together");
  }
}

namespace {

// a @ b (+ bias over the last dim when defined): one GEMM call either way.
Tensor matmul_bias(const Tensor& a_in, const Tensor& b_in, const Tensor& bias) {
  const bool a_vec = a_in.dim() == 1, b_vec = b_in.dim() == 1;
  Tensor a = a_vec ? unsqueeze(a_in, 0) : a_in;
  Tensor b = b_vec ? unsqueeze(b_in, 1) : b_in;
  const int64_t M = a.shape()[static_cast<size_t>(a.dim() - 2)], K = a.shape()[static_cast<size_t>(a.dim() - 1)];
  const int64_t K2 = b.shape()[static_cast<size_t>(b.dim() - 2)], N = b.shape()[static_cast<size_t>(b.dim() - 1)];
  if (K != K2)
    throw ShapeError("matmul: shapes " + shape_str(a_in.shape()) + " and " + shape_str(b_in.shape()) +
                     " cannot be multiplied (" + std::to_string(K) + " vs " + std::to_string(K2) + ")");
  const Shape a_batch(a.shape().begin(), a.shape().end() - 2), b_batch(b.shape().begin(), b.shape().end() - 2);
  const Shape batch_shape = broadcast_shapes("matmul", a_batch, b_batch);
  const int64_t batch = shape_numel(batch_shape);

  Shape out_shape = batch_shape;
  if (!a_vec) out_shape.push_back(M);
  if (!b_vec) out_shape.push_back(N);
  Tensor out = empty(out_shape, TensorOptions(a.dtype()).with_device(a.device()));
  if (out.numel() == 0) return out;

  kernels::GemmShape s;
  MatrixOperand A, B;
  if (b.dim() == 2 && a.dim() > 2) {
    // [..., M, K] x [K, N]: fold a's batch into its rows, one GEMM (the Linear-layer case).
    Tensor a2 = try_view(a, {batch * M, K});
    if (!a2.defined()) a2 = try_view(contiguous(a), {batch * M, K});
    A = as_gemm_operand(unsqueeze(a2, 0));
    B = as_gemm_operand(unsqueeze(b, 0));
    s.batch = 1;
    s.M = batch * M;
  } else {
    Shape a_full = batch_shape, b_full = batch_shape;
    a_full.insert(a_full.end(), {M, K});
    b_full.insert(b_full.end(), {K, N});
    A = as_gemm_operand(fold_batch(expand(a, a_full), batch));
    B = as_gemm_operand(fold_batch(expand(b, b_full), batch));
    s.batch = batch;
    s.M = M;
  }
  s.N = N;
  s.K = K;
  s.trans_a = A.trans;
  s.trans_b = B.trans;
  s.lda = A.ld;
  s.ldb = B.ld;
  s.batch_stride_a = A.batch_stride;
  s.batch_stride_b = B.batch_stride;
#if GRAFT_WITH_CUDA
  if (a.device().is_cuda()) {
    // Same operands as the CPU path (transposed views go in as transposes, no copies); 16-bit
    // inputs give 16-bit outputs; TF32 for f32 only when the process-wide switch allows it.
    kernels::CudaGemmArgs args;
    args.shape = s;
    args.ab_type = args.c_type = cuda_gemm_type("matmul", a.dtype());
    args.a = A.t.defined() ? A.t.data_ptr() : nullptr;  // undefined only when K == 0 (never read)
    args.b = B.t.defined() ? B.t.data_ptr() : nullptr;
    args.c = out.data_ptr();
    if (bias.defined()) {
      args.bias = bias.data_ptr();
      args.epilogue = kernels::GemmEpilogue::bias;
    }
    args.allow_tf32 = a.dtype() == DType::f32 && kernels::cuda_allow_tf32();
    args.device = a.device().index;
    kernels::gemm_cuda(args);
    return out;
  }
#endif
  GRAFT_DISPATCH_F32_F64("matmul", a.dtype(), [&] {
    const auto* a_data = static_cast<const scalar_t*>(A.t.data_ptr());
    const auto* b_data = static_cast<const scalar_t*>(B.t.data_ptr());
    auto* out_data = static_cast<scalar_t*>(out.data_ptr());
    if (bias.defined())
      kernels::gemm_bias_cpu(s, a_data, b_data, static_cast<const scalar_t*>(bias.data_ptr()), out_data);
    else
      kernels::gemm_cpu(s, a_data, b_data, out_data);
  });
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_matmul(a, b);
  check_gemm_supported("matmul", a);
  return matmul_bias(a, b, Tensor());
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (weight.dim() != 2)
    throw ShapeError("linear: weight must be [out_features, in_features], got " + shape_str(weight.shape()));
  const Tensor weight_t = permute(weight, {1, 0});
  check_matmul(x, weight_t);
  check_gemm_supported("linear", x);
  if (!bias.defined()) return matmul_bias(x, weight_t, Tensor());
  check_same_device("linear", x, bias);
  check_same_dtype("linear", x, bias);
  if (bias.shape() != Shape{weight.shape()[0]})
    throw ShapeError("linear: bias " + shape_str(bias.shape()) + " must be [" + std::to_string(weight.shape()[0]) + "]");
  return matmul_bias(x, weight_t, contiguous(bias));
}

#if GRAFT_WITH_CUDA
namespace {

// f32/f64 keep mean/rstd in their own dtype (as the CPU); bf16/f16 keep them in f32.
DType layer_norm_stat_dtype(DType dtype) { return dtype == DType::bf16 || dtype == DType::f16 ? DType::f32 : dtype; }

std::tuple<Tensor, Tensor, Tensor> layer_norm_forward_cuda(const Tensor& x, const Tensor& w, const Tensor& b,
                                                           const Shape& lead, int64_t rows, int64_t cols, double eps) {
  const TensorOptions stat_options = TensorOptions(layer_norm_stat_dtype(x.dtype())).with_device(x.device());
  Tensor y = empty_like_contiguous(x, x.dtype());
  Tensor mean = empty(lead, stat_options), rstd = empty(lead, stat_options);
  dispatch_cuda_float("layer_norm", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using S = kernels::layer_norm_stat_t<T>;
    kernels::layer_norm_forward_cuda<T>(static_cast<const T*>(x.data_ptr()),
                                        w.defined() ? static_cast<const T*>(w.data_ptr()) : nullptr,
                                        b.defined() ? static_cast<const T*>(b.data_ptr()) : nullptr, rows, cols, eps,
                                        static_cast<T*>(y.data_ptr()), static_cast<S*>(mean.data_ptr()),
                                        static_cast<S*>(rstd.data_ptr()), x.device().index);
  });
  return {y, mean, rstd};
}

std::tuple<Tensor, Tensor, Tensor> layer_norm_backward_cuda(const Tensor& grad_y_in, const Tensor& x, const Tensor& mean,
                                                            const Tensor& rstd, const Shape& norm, const Tensor& w,
                                                            bool want_weight, bool want_bias) {
  const char* op = "layer_norm_backward";
  for (const Tensor* t : {&grad_y_in, &mean, &rstd}) check_same_device(op, x, *t);
  check_same_dtype(op, x, grad_y_in);
  if (grad_y_in.shape() != x.shape())
    throw ShapeError(std::string(op) + ": gradient " + shape_str(grad_y_in.shape()) + " does not match input " +
                     shape_str(x.shape()));
  const int64_t cols = shape_numel(norm), rows = x.numel() / std::max<int64_t>(cols, 1);
  const DType stat_dtype = layer_norm_stat_dtype(x.dtype());
  for (const Tensor* t : {&mean, &rstd}) {
    if (t->dtype() != stat_dtype || t->numel() != rows)
      throw ValueError(std::string(op) + ": mean/rstd must be the " + std::to_string(rows) + " " + dtype_name(stat_dtype) +
                       " row statistics layer_norm_forward returned for input " + shape_str(x.shape()) + " " +
                       dtype_name(x.dtype()) + ", got " + shape_str(t->shape()) + " " + dtype_name(t->dtype()));
  }
  Tensor gy = contiguous(grad_y_in), m = contiguous(mean), r = contiguous(rstd);
  Tensor gx = empty_like_contiguous(x, x.dtype());
  const TensorOptions options = TensorOptions(x.dtype()).with_device(x.device());
  Tensor gw = want_weight ? empty(norm, options) : Tensor();
  Tensor gb = want_bias ? empty(norm, options) : Tensor();
  // With rows == 0 the kernels still write the (zero) parameter gradients; with cols == 0 nothing is there.
  dispatch_cuda_float(op, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using S = kernels::layer_norm_stat_t<T>;
    kernels::layer_norm_backward_cuda<T>(
        static_cast<const T*>(gy.data_ptr()), static_cast<const T*>(x.data_ptr()), static_cast<const S*>(m.data_ptr()),
        static_cast<const S*>(r.data_ptr()), w.defined() ? static_cast<const T*>(w.data_ptr()) : nullptr, rows, cols,
        static_cast<T*>(gx.data_ptr()), gw.defined() ? static_cast<T*>(gw.data_ptr()) : nullptr,
        gb.defined() ? static_cast<T*>(gb.data_ptr()) : nullptr, x.device().index);
  });
  return {gx, gw, gb};
}

}  // namespace
#endif

std::tuple<Tensor, Tensor, Tensor> layer_norm_forward(const Tensor& x_in, int64_t normalized_ndim,
                                                      const Tensor& weight, const Tensor& bias, double eps) {
  check_device_supported("layer_norm", x_in);
  check_floating("layer_norm", x_in);
  if (normalized_ndim < 1 || normalized_ndim > x_in.dim())
    throw ShapeError("layer_norm: cannot normalise the last " + std::to_string(normalized_ndim) +
                     " dims of shape " + shape_str(x_in.shape()));
  const Shape lead(x_in.shape().begin(), x_in.shape().end() - normalized_ndim);
  const Shape norm(x_in.shape().end() - normalized_ndim, x_in.shape().end());
  for (const Tensor* p : {&weight, &bias}) {
    if (!p->defined()) continue;
    check_same_device("layer_norm", x_in, *p);
    check_same_dtype("layer_norm", x_in, *p);
    if (p->shape() != norm)
      throw ShapeError("layer_norm: parameter of shape " + shape_str(p->shape()) + " does not match normalized shape " +
                       shape_str(norm) + " of input " + shape_str(x_in.shape()));
  }
  Tensor x = contiguous(x_in);
  Tensor w = weight.defined() ? contiguous(weight) : Tensor(), b = bias.defined() ? contiguous(bias) : Tensor();
  const int64_t cols = shape_numel(norm), rows = shape_numel(lead);
#if GRAFT_WITH_CUDA
  if (x.device().is_cuda()) return layer_norm_forward_cuda(x, w, b, lead, rows, cols, eps);
#endif
  Tensor y = empty_like_contiguous(x, x.dtype());
  Tensor mean = empty(lead, x.dtype()), rstd = empty(lead, x.dtype());
  if (cols == 0 || rows == 0) return {y, mean, rstd};
  GRAFT_DISPATCH_F32_F64("layer_norm", x.dtype(), [&] {
    using T = scalar_t;
    kernels::layer_norm_forward_cpu<T>(static_cast<const T*>(x.data_ptr()),
                                       w.defined() ? static_cast<const T*>(w.data_ptr()) : nullptr,
                                       b.defined() ? static_cast<const T*>(b.data_ptr()) : nullptr, rows, cols, eps,
                                       static_cast<T*>(y.data_ptr()), static_cast<T*>(mean.data_ptr()),
                                       static_cast<T*>(rstd.data_ptr()));
  });
  return {y, mean, rstd};
}

std::tuple<Tensor, Tensor, Tensor> layer_norm_backward(const Tensor& grad_y_in, const Tensor& x_in, const Tensor& mean,
                                                       const Tensor& rstd, int64_t normalized_ndim,
                                                       const Tensor& weight, bool want_weight, bool want_bias) {
  check_device_supported("layer_norm_backward", x_in);
#if GRAFT_WITH_CUDA
  if (x_in.device().is_cuda()) {
    if (normalized_ndim < 1 || normalized_ndim > x_in.dim())
      throw ShapeError("layer_norm_backward: cannot normalise the last " + std::to_string(normalized_ndim) +
                       " dims of shape " + shape_str(x_in.shape()));
    if (weight.defined()) {
      check_same_device("layer_norm_backward", x_in, weight);
      check_same_dtype("layer_norm_backward", x_in, weight);
    }
    const Shape norm(x_in.shape().end() - normalized_ndim, x_in.shape().end());
    return layer_norm_backward_cuda(grad_y_in, contiguous(x_in), mean, rstd, norm,
                                    weight.defined() ? contiguous(weight) : Tensor(), want_weight, want_bias);
  }
#endif
  Tensor gy = contiguous(grad_y_in), x = contiguous(x_in);
  Tensor w = weight.defined() ? contiguous(weight) : Tensor();
  const Shape norm(x.shape().end() - normalized_ndim, x.shape().end());
  const int64_t cols = shape_numel(norm), rows = x.numel() / std::max<int64_t>(cols, 1);
  Tensor gx = empty_like_contiguous(x, x.dtype());
  Tensor gw = want_weight ? empty(norm, x.dtype()) : Tensor();
  Tensor gb = want_bias ? empty(norm, x.dtype()) : Tensor();
  if (cols == 0 || rows == 0) {
    if (gw.defined()) fill(gw, 0);
    if (gb.defined()) fill(gb, 0);
    return {gx, gw, gb};
  }
  GRAFT_DISPATCH_F32_F64("layer_norm_backward", x.dtype(), [&] {
    using T = scalar_t;
    kernels::layer_norm_backward_cpu<T>(
        static_cast<const T*>(gy.data_ptr()), static_cast<const T*>(x.data_ptr()),
        static_cast<const T*>(mean.data_ptr()), static_cast<const T*>(rstd.data_ptr()),
        w.defined() ? static_cast<const T*>(w.data_ptr()) : nullptr, rows, cols, static_cast<T*>(gx.data_ptr()),
        gw.defined() ? static_cast<T*>(gw.data_ptr()) : nullptr, gb.defined() ? static_cast<T*>(gb.data_ptr()) : nullptr);
  });
  return {gx, gw, gb};
}

}  // namespace graft::ops
