// Internal to tensor/: builds the kernels' StridedIter from tensors, and dispatches on dtype.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "kernels/common/strided.h"
#include "tensor/tensor.h"

namespace graft::detail {

// Operands are broadcast to `shape` (operand 0 is normally the output, already of that shape);
// size-1 dims are dropped and adjacent dims merged when every operand allows it.
kernels::StridedIter make_iter(const char* op, const Shape& shape, std::initializer_list<const Tensor*> operands);

[[noreturn]] void throw_dtype(const char* op, DType dtype, const char* supported);

}  // namespace graft::detail

// Calls BODY with `scalar_t` bound to the C++ type of DTYPE (floating + integer types).
#define GRAFT_DISPATCH_ALL(OP, DTYPE, ...)                                                   \
  [&] {                                                                                      \
    switch (DTYPE) {                                                                         \
      case ::graft::DType::f32: { using scalar_t = float; return (__VA_ARGS__)(); }                   \
      case ::graft::DType::f64: { using scalar_t = double; return (__VA_ARGS__)(); }                  \
      case ::graft::DType::bf16: { using scalar_t = ::graft::bf16; return (__VA_ARGS__)(); }          \
      case ::graft::DType::f16: { using scalar_t = ::graft::f16; return (__VA_ARGS__)(); }            \
      case ::graft::DType::i32: { using scalar_t = int32_t; return (__VA_ARGS__)(); }                 \
      case ::graft::DType::i64: { using scalar_t = int64_t; return (__VA_ARGS__)(); }                 \
      case ::graft::DType::boolean: { using scalar_t = bool; return (__VA_ARGS__)(); }                \
    }                                                                                        \
    ::graft::detail::throw_dtype(OP, DTYPE, "any");                                          \
  }()

// f32 and f64 only: the CPU compute types of the float kernels (norms, softmax, GEMM).
#define GRAFT_DISPATCH_F32_F64(OP, DTYPE, ...)                                               \
  [&] {                                                                                      \
    switch (DTYPE) {                                                                         \
      case ::graft::DType::f32: { using scalar_t = float; return (__VA_ARGS__)(); }                   \
      case ::graft::DType::f64: { using scalar_t = double; return (__VA_ARGS__)(); }                  \
      default: ::graft::detail::throw_dtype(OP, DTYPE, "f32, f64");                          \
    }                                                                                        \
  }()
