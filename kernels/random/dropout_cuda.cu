// Fused dropout on CUDA (see dropout.h). One thread per Philox block: it draws the four words once
// and masks the four consecutive elements they belong to, exactly as philox_uniform would.
#include "kernels/common/cuda.h"
#include "kernels/random/dropout.h"
#include "kernels/random/philox.h"

namespace graft::kernels {

namespace {

using cuda::acc_t;
using cuda::device_t;
using cuda::kThreads;

template <class T>
__global__ void dropout_forward_kernel(const T* x, int64_t n, double keep_prob, acc_t<T> scale, uint64_t seed,
                                       uint64_t counter, T* out, bool* keep) {
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; b < blocks;
       b += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Philox4x32 r = philox4x32_10(counter + static_cast<uint64_t>(b), seed);
    for (int w = 0; w < 4; ++w) {
      const int64_t i = 4 * b + w;
      if (i >= n) break;
      // philox_uniform(seed, counter, i): element i is word i % 4 of block counter + i / 4
      const float u = static_cast<float>(r.v[w] >> 8) * (1.0f / 16777216.0f);
      const bool k = u < keep_prob;
      keep[i] = k;
      cuda::store(&out[i], cuda::load(&x[i]) * (k ? scale : acc_t<T>(0)));
    }
  }
}

template <class T>
__global__ void dropout_backward_kernel(const T* grad, const bool* keep, int64_t n, acc_t<T> scale, T* grad_x) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    cuda::store(&grad_x[i], cuda::load(&grad[i]) * (keep[i] ? scale : acc_t<T>(0)));
}

}  // namespace

template <class T>
void dropout_forward_cuda(int device, const T* x, int64_t n, double keep_prob, double scale, uint64_t seed,
                          uint64_t counter, T* out, bool* keep) {
  if (n == 0) return;
  cuda::DeviceGuard guard(device);
  using D = device_t<T>;
  dropout_forward_kernel<D><<<cuda::blocks_for((n + 3) / 4), kThreads, 0, cuda::stream()>>>(
      reinterpret_cast<const D*>(x), n, keep_prob, static_cast<acc_t<D>>(scale), seed, counter,
      reinterpret_cast<D*>(out), keep);
  GRAFT_CUDA_CHECK_LAUNCH(dropout_forward_kernel);
}

template <class T>
void dropout_backward_cuda(int device, const T* grad, const bool* keep, int64_t n, double scale, T* grad_x) {
  if (n == 0) return;
  cuda::DeviceGuard guard(device);
  using D = device_t<T>;
  dropout_backward_kernel<D><<<cuda::blocks_for(n), kThreads, 0, cuda::stream()>>>(
      reinterpret_cast<const D*>(grad), keep, n, static_cast<acc_t<D>>(scale), reinterpret_cast<D*>(grad_x));
  GRAFT_CUDA_CHECK_LAUNCH(dropout_backward_kernel);
}

#define GRAFT_INSTANTIATE(T)                                                                                     \
  template void dropout_forward_cuda<T>(int, const T*, int64_t, double, double, uint64_t, uint64_t, T*, bool*); \
  template void dropout_backward_cuda<T>(int, const T*, const bool*, int64_t, double, T*);
GRAFT_INSTANTIATE(float)
GRAFT_INSTANTIATE(double)
GRAFT_INSTANTIATE(bf16)
GRAFT_INSTANTIATE(f16)

}  // namespace graft::kernels
