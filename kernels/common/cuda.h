// What every CUDA kernel file shares: checked calls, the stream, launch sizes, and the storage
// types. Included only by .cu files (and by host files of the CUDA backend that call the runtime).
//
// Streams: all of graft's work on a device goes to cudaStreamPerThread of the calling host thread,
// the stream the memory pool allocates and frees on (kernels/memory/cuda_memory.cu). Work from one
// thread is therefore ordered without events; the host waits only when it reads a result
// (a device-to-host copy) or calls cuda_synchronize().
//
// Errors: a failing runtime call or launch throws graft::DeviceError naming the call, file and
// line. Kernel launches are asynchronous, so a fault inside a kernel surfaces at the next checked
// call; GRAFT_CUDA_SYNC=1 synchronizes after every launch so that it is reported at the launch.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "kernels/common/half.h"
#include "kernels/common/strided.h"
#include "tensor/error.h"  // kernels and the tensor layer share the typed errors, nothing else

namespace graft::kernels::cuda {

[[noreturn]] inline void throw_error(const char* call, const char* file, int line, cudaError_t status) {
  throw DeviceError(std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " +
                    cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
}

inline void check(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so that later calls do not report it again
    throw_error(call, file, line, status);
  }
}

inline bool sync_after_launch() {
  static const bool on = [] {
    const char* v = std::getenv("GRAFT_CUDA_SYNC");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

// After a <<<...>>> launch: reports a bad configuration at once, and a fault inside the kernel at
// once when GRAFT_CUDA_SYNC is set.
inline void check_launch(const char* kernel, const char* file, int line) {
  check(cudaGetLastError(), kernel, file, line);
  if (sync_after_launch()) check(cudaStreamSynchronize(cudaStreamPerThread), kernel, file, line);
}

inline cudaStream_t stream() { return cudaStreamPerThread; }

// Makes `device` current for the scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice", __FILE__, __LINE__);
    if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice", __FILE__, __LINE__);
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, never more than needed.
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t wanted = (n + threads - 1) / threads;
  const int64_t cap = 65535LL * 8;
  return static_cast<unsigned>(wanted < 1 ? 1 : (wanted > cap ? cap : wanted));
}

// graft's 16-bit storage types have the same bits as CUDA's; kernels use CUDA's.
template <class T>
struct DeviceType { using type = T; };
template <>
struct DeviceType<graft::bf16> { using type = __nv_bfloat16; };
template <>
struct DeviceType<graft::f16> { using type = __half; };
template <class T>
using device_t = typename DeviceType<T>::type;

// The compute type: 16-bit floats compute in float, everything else in itself.
template <class T>
struct AccType { using type = T; };
template <>
struct AccType<__nv_bfloat16> { using type = float; };
template <>
struct AccType<__half> { using type = float; };
template <class T>
using acc_t = typename AccType<T>::type;

template <class T>
__device__ __forceinline__ acc_t<T> load(const T* p) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(*p);
  else if constexpr (std::is_same_v<T, __half>) return __half2float(*p);
  else return *p;
}

template <class T, class V>
__device__ __forceinline__ void store(T* p, V v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) *p = __float2bfloat16_rn(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, __half>) *p = __float2half_rn(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, bool>) *p = static_cast<bool>(v);
  else *p = static_cast<T>(v);
}

// Element offsets of the N operands at row-major linear index i of the iteration space. N is a
// template argument so that the offsets stay in registers (with the count read from `it` at run
// time ptxas keeps them in local memory). When the iteration coalesced to one dim (all operands
// contiguous, or tensor-with-scalar) it is one multiply per operand, no divisions.
template <int N>
__device__ __forceinline__ void offsets_at(const StridedIter& it, int64_t i, int64_t (&off)[N]) {
  if (it.ndim == 1) {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = i * it.strides[k][0];
    return;
  }
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
  for (int d = it.ndim - 1; d >= 0; --d) {
    const int64_t size = it.sizes[d];
    const int64_t index = i % size;
    i /= size;
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] += index * it.strides[k][d];
  }
}

// Scratch device memory for one launcher call, from the stream-ordered pool on the calling thread's
// stream; freed in stream order when it goes out of scope, so the kernels queued before still see it.
class Scratch {
 public:
  explicit Scratch(size_t bytes) {
    check(cudaMallocAsync(&ptr_, bytes == 0 ? 1 : bytes, stream()), "cudaMallocAsync", __FILE__, __LINE__);
  }
  ~Scratch() { cudaFreeAsync(ptr_, stream()); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
};

// Waits for every queued kernel and copy of the calling thread on the current device.
inline void synchronize() { check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize", __FILE__, __LINE__); }

}  // namespace graft::kernels::cuda

#define GRAFT_CUDA_CHECK(call) ::graft::kernels::cuda::check((call), #call, __FILE__, __LINE__)
#define GRAFT_CUDA_CHECK_LAUNCH(kernel) ::graft::kernels::cuda::check_launch(#kernel, __FILE__, __LINE__)
