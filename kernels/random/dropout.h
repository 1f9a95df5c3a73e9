// Dropout's mask draw and its application in one pass over contiguous buffers of n elements.
// Element i is kept when philox_uniform(seed, counter, i) < keep_prob: exactly the draw of
// graft::bernoulli(shape, keep_prob) at the same generator state, so the mask does not depend on
// which path or how many threads made it. One Philox block serves four consecutive elements.
// T is float or double; scale is 1 / keep_prob rounded to T, as the unfused x * (mask * scale).
#pragma once

#include <cstdint>

namespace graft::kernels {

// out[i] = x[i] * (keep[i] ? scale : 0); keep (n bools) is written for backward.
template <class T>
void dropout_forward_cpu(const T* x, int64_t n, double keep_prob, T scale, uint64_t seed, uint64_t counter, T* out,
                         bool* keep);

// grad_x[i] = grad[i] * (keep[i] ? scale : 0)
template <class T>
void dropout_backward_cpu(const T* grad, const bool* keep, int64_t n, T scale, T* grad_x);

// --- CUDA (kernels/random/dropout_cuda.cu): T is float, double, bf16, f16; device pointers on
// `device`, work queued on cuda::stream(). Same element draws as the CPU, so the same (seed,
// counter) gives the same mask on both devices. scale (1 / keep_prob) is rounded to the compute
// type, T or float for the 16-bit types, as the CPU rounds it to T; 16-bit outputs round once.
template <class T>
void dropout_forward_cuda(int device, const T* x, int64_t n, double keep_prob, double scale, uint64_t seed,
                          uint64_t counter, T* out, bool* keep);
template <class T>
void dropout_backward_cuda(int device, const T* grad, const bool* keep, int64_t n, double scale, T* grad_x);

}  // namespace graft::kernels
