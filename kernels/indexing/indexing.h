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

// --- CUDA (kernels/indexing/cuda.cu): the same layouts, device pointers on `device`, work queued
// on cuda::stream(). T is float, double, bf16, f16, int32_t, int64_t (and bool for the copies).
// The adds write every element of out (out = zeros + adds, no prior contents read) and are
// deterministic: sources are sorted by target with a stable radix sort, then each output element
// is summed by one thread in position order (as the CPU), accumulating 16-bit types in float.

// Wraps negative indices in place ([-size, 0) -> +size) and returns the smallest and largest index
// as given, for the caller's range check; n > 0. Waits for the device (one small host read).
void wrap_indices_cuda(int device, int64_t* index, int64_t n, int64_t size, int64_t* min_index, int64_t* max_index);
template <class T>
void index_select_cuda(int device, const T* in, int64_t outer, int64_t dim, int64_t inner, const int64_t* index,
                       int64_t n_index, T* out);
template <class T>
void index_add_cuda(int device, T* out, int64_t outer, int64_t dim, int64_t inner, const int64_t* index,
                    int64_t n_index, const T* src);
template <class T>
void gather_cuda(int device, const T* in, int64_t outer, int64_t dim, int64_t inner, const int64_t* index, int64_t n,
                 T* out);
template <class T>
void scatter_add_cuda(int device, T* out, int64_t outer, int64_t dim, int64_t inner, const int64_t* index, int64_t n,
                      const T* src);

}  // namespace graft::kernels
