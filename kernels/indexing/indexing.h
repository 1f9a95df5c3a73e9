// Index kernels on contiguous buffers viewed as [outer, dim, inner]. Indices are int64 and were
// bounds-checked by the tensor layer. Scatter-adds walk indices in order, so repeated indices
// accumulate deterministically.
#pragma once

#include <cstdint>

namespace graft::kernels {

// out[o, j, i] = in[o, index[j], i]            (out is [outer, n_index, inner])
template <class T>
void index_select_cpu(const T* in, int64_t outer, int64_t dim, int64_t inner, const int64_t* index,
                      int64_t n_index, T* out);
// out[o, index[j], i] += src[o, j, i]          (src is [outer, n_index, inner]; out is accumulated)
template <class T>
void index_add_cpu(T* out, int64_t outer, int64_t dim, int64_t inner, const int64_t* index, int64_t n_index,
                   const T* src);
// out[o, j, i] = in[o, index[o, j, i], i]      (index and out are [outer, n, inner])
template <class T>
void gather_cpu(const T* in, int64_t outer, int64_t dim, int64_t inner, const int64_t* index, int64_t n, T* out);
// out[o, index[o, j, i], i] += src[o, j, i]    (out is accumulated)
template <class T>
void scatter_add_cpu(T* out, int64_t outer, int64_t dim, int64_t inner, const int64_t* index, int64_t n,
                     const T* src);

}  // namespace graft::kernels
