// Random draws on CUDA (see random_cuda.h): each element calls the very functions the CPU calls
// (philox.h is host and device code), so the numbers agree element for element; the double
// log / sqrt / cos of the normal may differ from the host's in the last bit of a double.
#include "kernels/common/cuda.h"
#include "kernels/random/philox.h"
#include "kernels/random/random_cuda.h"

namespace graft::kernels {

namespace {

using cuda::device_t;
using cuda::kThreads;

// As the CPU's cast of the f64 result: straight to f32 / f64, through f32 to the 16-bit types.
template <class T>
__device__ __forceinline__ void store_draw(T* p, double v) {
  if constexpr (std::is_same_v<T, double>) *p = v;
  else cuda::store(p, static_cast<float>(v));
}

template <class T>
__global__ void uniform_kernel(T* out, int64_t n, double low, double high, uint64_t seed, uint64_t counter) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    store_draw(&out[i], low + (high - low) * static_cast<double>(philox_uniform(seed, counter, i)));
}

template <class T>
__global__ void normal_kernel(T* out, int64_t n, double mean, double std, uint64_t seed, uint64_t counter) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    store_draw(&out[i], mean + std * philox_normal(seed, counter, i));
}

__global__ void bernoulli_kernel(bool* out, int64_t n, double p, uint64_t seed, uint64_t counter) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = philox_uniform(seed, counter, i) < p;
}

}  // namespace

template <class T>
void uniform_cuda(int device, T* out, int64_t n, double low, double high, uint64_t seed, uint64_t counter) {
  if (n == 0) return;
  cuda::DeviceGuard guard(device);
  using D = device_t<T>;
  uniform_kernel<D><<<cuda::blocks_for(n), kThreads, 0, cuda::stream()>>>(reinterpret_cast<D*>(out), n, low, high,
                                                                          seed, counter);
  GRAFT_CUDA_CHECK_LAUNCH(uniform_kernel);
}

template <class T>
void normal_cuda(int device, T* out, int64_t n, double mean, double std, uint64_t seed, uint64_t counter) {
  if (n == 0) return;
  cuda::DeviceGuard guard(device);
  using D = device_t<T>;
  normal_kernel<D><<<cuda::blocks_for(n), kThreads, 0, cuda::stream()>>>(reinterpret_cast<D*>(out), n, mean, std,
                                                                         seed, counter);
  GRAFT_CUDA_CHECK_LAUNCH(normal_kernel);
}

void bernoulli_cuda(int device, bool* out, int64_t n, double p, uint64_t seed, uint64_t counter) {
  if (n == 0) return;
  cuda::DeviceGuard guard(device);
  bernoulli_kernel<<<cuda::blocks_for(n), kThreads, 0, cuda::stream()>>>(out, n, p, seed, counter);
  GRAFT_CUDA_CHECK_LAUNCH(bernoulli_kernel);
}

#define GRAFT_INSTANTIATE(T)                                                                    \
  template void uniform_cuda<T>(int, T*, int64_t, double, double, uint64_t, uint64_t);          \
  template void normal_cuda<T>(int, T*, int64_t, double, double, uint64_t, uint64_t);
GRAFT_INSTANTIATE(float)
GRAFT_INSTANTIATE(double)
GRAFT_INSTANTIATE(bf16)
GRAFT_INSTANTIATE(f16)

}  // namespace graft::kernels
