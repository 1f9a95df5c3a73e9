// matmul (torch.matmul semantics, broadcast batch dims) and layer_norm.
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
  check_cpu("matmul", a);
  return matmul_bias(a, b, Tensor());
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (weight.dim() != 2)
    throw ShapeError("linear: weight must be [out_features, in_features], got " + shape_str(weight.shape()));
  const Tensor weight_t = permute(weight, {1, 0});
  check_matmul(x, weight_t);
  check_cpu("linear", x);
  if (!bias.defined()) return matmul_bias(x, weight_t, Tensor());
  check_same_device("linear", x, bias);
  check_same_dtype("linear", x, bias);
  if (bias.shape() != Shape{weight.shape()[0]})
    throw ShapeError("linear: bias " + shape_str(bias.shape()) + " must be [" + std::to_string(weight.shape()[0]) + "]");
  return matmul_bias(x, weight_t, contiguous(bias));
}

std::tuple<Tensor, Tensor, Tensor> layer_norm_forward(const Tensor& x_in, int64_t normalized_ndim,
                                                      const Tensor& weight, const Tensor& bias, double eps) {
  check_cpu("layer_norm", x_in);
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
  check_cpu("layer_norm_backward", x_in);
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
