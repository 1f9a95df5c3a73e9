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

// --- CUDA: cuBLASLt (kernels/gemm/cuda.cu; declared in every build, defined only with CUDA) ---
// The same row-major contract as above, on device pointers of `device`, queued on the calling
// thread's stream (kernels/common/cuda.h). A and B share a storage type; C may be wider (bf16 or
// f16 inputs with an f32 C: tensor-core math, f32 accumulation and output, what autocast uses).
// The bias has C's type and N elements. Accumulation is f32 for f32/bf16/f16 inputs (f64 for f64).
enum class GemmType : uint8_t { f32, f64, bf16, f16 };
enum class GemmEpilogue : uint8_t {
  none,
  bias,       // C = A*B + bias
  gelu_bias,  // C = gelu_tanh(A*B + bias); the pre-activation goes to `aux` (M x N, C's type) for backward
};
struct CudaGemmArgs {
  GemmShape shape;
  GemmType ab_type = GemmType::f32;
  GemmType c_type = GemmType::f32;
  const void* a = nullptr;
  const void* b = nullptr;
  void* c = nullptr;
  const void* bias = nullptr;
  void* aux = nullptr;
  GemmEpilogue epilogue = GemmEpilogue::none;
  bool allow_tf32 = false;  // f32 inputs on tensor cores (10-bit mantissa), as torch's allow_tf32
  int device = 0;
};
void gemm_cuda(const CudaGemmArgs& args);

// Process-wide: whether f32 GEMMs on CUDA may use TF32 (off by default, as torch's matmul).
void set_cuda_allow_tf32(bool allow);
bool cuda_allow_tf32();

}  // namespace graft::kernels
