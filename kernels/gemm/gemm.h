// Batched GEMM: for b in [0, batch): C[b] = op(A[b]) * op(B[b]), row-major.
//   op(A[b]) is M x K: A[b] + i*lda + k when !trans_a, A[b] + k*lda + i when trans_a (same for B).
//   A[b] = a + b * batch_stride_a; a batch stride of 0 broadcasts that operand over the batch.
// C is overwritten and contiguous per batch (ldc = N, batch stride M*N).
#pragma once

#include <cstdint>

namespace graft::kernels {

struct GemmShape {
  int64_t batch = 1, M = 0, N = 0, K = 0;
  bool trans_a = false, trans_b = false;
  int64_t lda = 0, ldb = 0;
  int64_t batch_stride_a = 0, batch_stride_b = 0;
};

// f32 goes through oneDNN's matmul primitive when graft is built with it (primitives cached by
// shape); otherwise, and for f64, through the blocked loops in reference.cpp.
void gemm_cpu(const GemmShape& shape, const float* a, const float* b, float* c);
void gemm_cpu(const GemmShape& shape, const double* a, const double* b, double* c);
// The same plus a bias row: C[b][i, j] = (op(A[b]) * op(B[b]))[i, j] + bias[j], bias of N elements.
// oneDNN adds it in the GEMM's epilogue (one pass over C fewer); elsewhere a loop after the GEMM.
void gemm_bias_cpu(const GemmShape& shape, const float* a, const float* b, const float* bias, float* c);
void gemm_bias_cpu(const GemmShape& shape, const double* a, const double* b, const double* bias, double* c);

// Plain blocked loops, the truth the fast path is tested against.
template <class T>
void gemm_reference(const GemmShape& shape, const T* a, const T* b, T* c);

// C[b][i, j] += bias[j] over the batch: the bias for the paths without a fused epilogue.
template <class T>
void add_bias_rows(const GemmShape& shape, const T* bias, T* c);

bool gemm_uses_onednn();  // which f32 path this build takes

}  // namespace graft::kernels
