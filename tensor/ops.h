// Raw ops: compute on tensors and record no graph. They validate their inputs (device, dtype,
// shape) and dispatch by device to kernels/<family>/{cpu,cuda}. The differentiable ops users
// call live in autograd/ops.h and are built on these.
#pragma once

#include <cstdint>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/elementwise/elementwise.h"
#include "kernels/reduce/reduce.h"
#include "tensor/tensor.h"

namespace graft::ops {

using kernels::BinaryOp;
using kernels::ReduceOp;
using kernels::UnaryOp;

// --- views: share storage; no data moves ---
Tensor as_strided(const Tensor& x, Shape shape, Shape strides, int64_t offset);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step);
Tensor expand(const Tensor& x, const Shape& shape);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Shape infer_shape(const char* op, const Shape& requested, int64_t numel);  // resolves one -1
// The view of x with `shape`, or an undefined Tensor when x's strides do not allow one.
Tensor try_view(const Tensor& x, const Shape& shape);
Tensor reshape(const Tensor& x, const Shape& shape);  // view when possible, else a copy

// --- data movement ---
Tensor empty_like_contiguous(const Tensor& x, DType dtype);
Tensor contiguous(const Tensor& x);  // x itself when already contiguous
Tensor cast(const Tensor& x, DType dtype);  // always a new contiguous tensor
Tensor to_device(const Tensor& x, Device device);
void copy_into(const Tensor& dst, const Tensor& src);  // broadcasts src, converts dtype
void fill(const Tensor& dst, double value);

// --- elementwise (NumPy broadcasting; operands must share dtype and device) ---
Tensor unary(UnaryOp op, const Tensor& x, double a = 0, double b = 0);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
// grad * gelu'(x) for the exact GELU: one fused pass for f32 CPU tensors of equal shape.
Tensor gelu_erf_backward(const Tensor& grad, const Tensor& x);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor scalar_like(double value, const Tensor& like);  // a 0-d tensor of like's dtype and device

// --- reductions (dims empty = all) ---
Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
std::pair<Tensor, Tensor> reduce_with_index(ReduceOp op, const Tensor& x, int64_t dim, bool keepdim);
Tensor arg_reduce(bool is_max, const Tensor& x, int64_t dim, bool keepdim);  // i64 indices
Tensor softmax(const Tensor& x, int64_t dim, bool log);
// Sums a broadcast gradient back to `shape` (the inverse of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);

// --- linear algebra and normalisation ---
Tensor matmul(const Tensor& a, const Tensor& b);
// x @ weight^T + bias (bias [out_features] or undefined), the bias added inside the GEMM.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);
// Validates a matmul (devices, dtypes, inner sizes, batch broadcast) naming both shapes as given.
void check_matmul(const Tensor& a, const Tensor& b);
// Returns (y, mean, rstd); mean/rstd have the leading (non-normalised) shape.
std::tuple<Tensor, Tensor, Tensor> layer_norm_forward(const Tensor& x, int64_t normalized_ndim,
                                                      const Tensor& weight, const Tensor& bias, double eps);
// Returns (grad_x, grad_weight, grad_bias); the parameter gradients are undefined when not wanted.
std::tuple<Tensor, Tensor, Tensor> layer_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& mean,
                                                       const Tensor& rstd, int64_t normalized_ndim,
                                                       const Tensor& weight, bool want_weight, bool want_bias);

// --- dropout (f32 / f64 on the CPU; dropout_fused_applies says whether x qualifies) ---
bool dropout_fused_applies(const Tensor& x);
// Returns (x * mask * 1/(1-p), mask), the mask bool and drawn as bernoulli(x.shape(), 1 - p) at
// generator state (seed, counter) would draw it; p in [0, 1).
std::pair<Tensor, Tensor> dropout_forward(const Tensor& x, double p, uint64_t seed, uint64_t counter);
Tensor dropout_backward(const Tensor& grad, const Tensor& keep, double p);  // grad * mask * 1/(1-p)

// --- indexing (indices are i32 or i64, bounds-checked) ---
// `op` names the caller in errors (embedding uses index_select underneath).
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index, const char* op = "index_select");
Tensor index_add(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& src);  // zeros + adds
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter_add(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& src);  // zeros + adds

// --- checks shared by the op fronts ---
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_floating(const char* op, const Tensor& x);
void check_cpu(const char* op, const Tensor& x);  // throws until the op has a CUDA kernel

}  // namespace graft::ops
