// Loop GEMM: packs op(B) row-major once per batch, then runs i-k-j so the inner loop streams a
// contiguous row of B (vectorised by the compiler). Accumulates in T; the rows of C are split
// across threads, so each element is computed by one thread in a fixed order.
#include <algorithm>
#include <vector>

#include "kernels/gemm/gemm.h"

namespace graft::kernels {

template <class T>
void gemm_reference(const GemmShape& s, const T* a, const T* b, T* c) {
  std::vector<T> packed_b(static_cast<size_t>(s.K * s.N));
  for (int64_t bt = 0; bt < s.batch; ++bt) {
    const T* A = a + bt * s.batch_stride_a;
    const T* B = b + bt * s.batch_stride_b;
    T* C = c + bt * s.M * s.N;
    for (int64_t k = 0; k < s.K; ++k)
      for (int64_t j = 0; j < s.N; ++j)
        packed_b[static_cast<size_t>(k * s.N + j)] = s.trans_b ? B[j * s.ldb + k] : B[k * s.ldb + j];
    const T* P = packed_b.data();
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (s.M * s.N * s.K >= (1 << 18))
#endif
    for (int64_t i = 0; i < s.M; ++i) {
      T* Ci = C + i * s.N;
      std::fill(Ci, Ci + s.N, T(0));
      for (int64_t k = 0; k < s.K; ++k) {
        const T aik = s.trans_a ? A[k * s.lda + i] : A[i * s.lda + k];
        const T* Pk = P + k * s.N;
        for (int64_t j = 0; j < s.N; ++j) Ci[j] += aik * Pk[j];
      }
    }
  }
}

template void gemm_reference<float>(const GemmShape&, const float*, const float*, float*);
template void gemm_reference<double>(const GemmShape&, const double*, const double*, double*);

void gemm_cpu(const GemmShape& shape, const double* a, const double* b, double* c) {
  gemm_reference(shape, a, b, c);
}

template <class T>
void add_bias_rows(const GemmShape& s, const T* bias, T* c) {
  const int64_t rows = s.batch * s.M;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rows * s.N >= (1 << 15))
#endif
  for (int64_t i = 0; i < rows; ++i) {
    T* Ci = c + i * s.N;
    for (int64_t j = 0; j < s.N; ++j) Ci[j] += bias[j];
  }
}
template void add_bias_rows<float>(const GemmShape&, const float*, float*);
template void add_bias_rows<double>(const GemmShape&, const double*, double*);

void gemm_bias_cpu(const GemmShape& shape, const double* a, const double* b, const double* bias, double* c) {
  gemm_reference(shape, a, b, c);
  add_bias_rows(shape, bias, c);
}

}  // namespace graft::kernels
