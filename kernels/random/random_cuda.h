// Random tensors drawn on the device (kernels/random/random_cuda.cu) with the CPU's Philox
// elements: element i of each draw is the same function of (seed, counter, i) as in
// tensor/factory.cpp, computed in double and rounded to T as the CPU's f64 -> T cast rounds it
// (through float for the 16-bit types). Device pointers on `device`; work queued on cuda::stream().
// T is float, double, bf16 or f16.
#pragma once

#include <cstdint>

namespace graft::kernels {

// out[i] = low + (high - low) * philox_uniform(seed, counter, i)
template <class T>
void uniform_cuda(int device, T* out, int64_t n, double low, double high, uint64_t seed, uint64_t counter);
// out[i] = mean + std * philox_normal(seed, counter, i)
template <class T>
void normal_cuda(int device, T* out, int64_t n, double mean, double std, uint64_t seed, uint64_t counter);
// out[i] = philox_uniform(seed, counter, i) < p
void bernoulli_cuda(int device, bool* out, int64_t n, double p, uint64_t seed, uint64_t counter);

}  // namespace graft::kernels
