#include <cstring>

#include "kernels/common/half.h"
#include "kernels/common/strided.h"
#include "kernels/indexing/indexing.h"

namespace graft::kernels {

template <class T>
void index_select_cpu(const T* in, int64_t outer, int64_t dim, int64_t inner, const int64_t* index,
                      int64_t n_index, T* out) {
#ifdef _OPENMP
#pragma omp parallel for collapse(2) schedule(static) if (outer * n_index * inner >= kParallelGrain)
#endif
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n_index; ++j)
      std::memcpy(out + (o * n_index + j) * inner, in + (o * dim + index[j]) * inner, sizeof(T) * inner);
}

template <class T>
void index_add_cpu(T* out, int64_t outer, int64_t dim, int64_t inner, const int64_t* index, int64_t n_index,
                   const T* src) {
  // Parallel over (outer, inner) columns; each column walks the indices in order.
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (outer * n_index * inner >= kParallelGrain)
#endif
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < n_index; ++j) {
      T* dst = out + (o * dim + index[j]) * inner;
      const T* s = src + (o * n_index + j) * inner;
      for (int64_t i = 0; i < inner; ++i) dst[i] += s[i];
    }
  }
}

template <class T>
void gather_cpu(const T* in, int64_t outer, int64_t dim, int64_t inner, const int64_t* index, int64_t n, T* out) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t p = (o * n + j) * inner + i;
        out[p] = in[(o * dim + index[p]) * inner + i];
      }
}

template <class T>
void scatter_add_cpu(T* out, int64_t outer, int64_t dim, int64_t inner, const int64_t* index, int64_t n,
                     const T* src) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t p = (o * n + j) * inner + i;
        out[(o * dim + index[p]) * inner + i] += src[p];
      }
}

#define GRAFT_INSTANTIATE_COPY(T)                                                                     \
  template void index_select_cpu<T>(const T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, T*); \
  template void gather_cpu<T>(const T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, T*);
#define GRAFT_INSTANTIATE_ADD(T)                                                                       \
  template void index_add_cpu<T>(T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, const T*);    \
  template void scatter_add_cpu<T>(T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, const T*);
GRAFT_INSTANTIATE_COPY(float)
GRAFT_INSTANTIATE_COPY(double)
GRAFT_INSTANTIATE_COPY(bf16)
GRAFT_INSTANTIATE_COPY(f16)
GRAFT_INSTANTIATE_COPY(int32_t)
GRAFT_INSTANTIATE_COPY(int64_t)
GRAFT_INSTANTIATE_COPY(bool)
GRAFT_INSTANTIATE_ADD(float)
GRAFT_INSTANTIATE_ADD(double)
GRAFT_INSTANTIATE_ADD(int32_t)
GRAFT_INSTANTIATE_ADD(int64_t)

}  // namespace graft::kernels
