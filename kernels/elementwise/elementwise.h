// Elementwise kernels over a StridedIter: operand 0 is the output, the rest are inputs.
// T is the storage type; bf16/f16 compute in float, f64 in double, integers in int64.
#pragma once

#include <cstdint>

#include "kernels/common/strided.h"

namespace graft::kernels {

enum class UnaryOp : uint8_t {
  neg, exp, log, log1p, sqrt, rsqrt, abs, sign, square, reciprocal,
  tanh, sigmoid, relu, gelu_erf, gelu_tanh,
  gelu_erf_grad, gelu_tanh_grad,  // derivative of gelu at x, for backward
  erf, sin, cos,
  pow_scalar,  // x ^ a
  clamp,       // min(max(x, a), b)
  isnan, isinf,  // output bool
};

enum class BinaryOp : uint8_t {
  add, sub, mul, div, pow, maximum, minimum,
  eq, ne, lt, le, gt, ge,  // output bool
  logical_and, logical_or,  // bool inputs and output
};

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);
bool unary_op_needs_float(UnaryOp op);    // false: also defined on i32/i64
bool unary_op_outputs_bool(UnaryOp op);
bool binary_op_outputs_bool(BinaryOp op);

// Plain-text dispatch over storage types (defined for float, double, bf16, f16, int32_t, int64_t).
template <class T>
void unary_cpu(UnaryOp op, double a, double b, const StridedIter& it, void* out, const void* in);
template <class T>  // for comparison ops `out` is bool
void binary_cpu(BinaryOp op, const StridedIter& it, void* out, const void* lhs, const void* rhs);
template <class T>  // out = cond ? a : b; cond is bool
void where_cpu(const StridedIter& it, void* out, const bool* cond, const void* a, const void* b);
template <class Dst, class Src>  // out = Src -> Dst conversion
void copy_cpu(const StridedIter& it, void* out, const void* in);
template <class T>
void fill_cpu(const StridedIter& it, void* out, double value);

// --- CUDA (kernels/elementwise/cuda.cu; defined only in CUDA builds, called under GRAFT_WITH_CUDA) ---
// The same contracts and formulas as the CPU launchers above, on device pointers of GPU `device`.
// Work is queued on that device's cuda::stream() and not waited for. T is graft's storage type
// (float, double, bf16, f16, int32_t, int64_t, bool).
template <class T>  // not for bool
void unary_cuda(UnaryOp op, double a, double b, const StridedIter& it, void* out, const void* in, int device);
template <class T>  // for comparison ops `out` is bool; bool inputs only for eq, ne, logical_and, logical_or
void binary_cuda(BinaryOp op, const StridedIter& it, void* out, const void* lhs, const void* rhs, int device);
template <class T>
void where_cuda(const StridedIter& it, void* out, const bool* cond, const void* a, const void* b, int device);
template <class Dst, class Src>  // any strides on both sides
void copy_cuda(const StridedIter& it, void* out, const void* in, int device);
template <class T>
void fill_cuda(const StridedIter& it, void* out, double value, int device);

}  // namespace graft::kernels
