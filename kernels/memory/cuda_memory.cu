#include <cuda_runtime.h>

#include <string>

#include "kernels/memory/cuda_memory.h"

namespace graft::kernels {

namespace {
bool check(cudaError_t status, const char* call, const char* file, int line, std::string* error) {
  if (status == cudaSuccess) return true;
  if (error) {
    *error = std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " + cudaGetErrorName(status) +
             " (" + cudaGetErrorString(status) + ")";
  }
  return false;
}
#define GRAFT_CUDA_CHECK(call) check((call), #call, __FILE__, __LINE__, error)
}  // namespace

bool cuda_compiled() { return true; }

int cuda_device_count_raw() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

void* cuda_allocate(std::size_t nbytes, int device, std::string* error) {
  void* ptr = nullptr;
  if (!GRAFT_CUDA_CHECK(cudaSetDevice(device))) return nullptr;
  if (!GRAFT_CUDA_CHECK(cudaMallocAsync(&ptr, nbytes == 0 ? 1 : nbytes, cudaStreamPerThread))) return nullptr;
  return ptr;
}

void cuda_release(void* ptr, int device) {
  if (!ptr) return;
  cudaSetDevice(device);
  cudaFreeAsync(ptr, cudaStreamPerThread);
}

bool cuda_copy(void* dst, const void* src, std::size_t nbytes, int kind, int device, std::string* error) {
  if (!GRAFT_CUDA_CHECK(cudaSetDevice(device))) return false;
  const cudaMemcpyKind k = kind == 0 ? cudaMemcpyHostToDevice : kind == 1 ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
  if (!GRAFT_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, k, cudaStreamPerThread))) return false;
  return GRAFT_CUDA_CHECK(cudaStreamSynchronize(cudaStreamPerThread));
}

bool cuda_memset_zero(void* dst, std::size_t nbytes, int device, std::string* error) {
  if (!GRAFT_CUDA_CHECK(cudaSetDevice(device))) return false;
  return GRAFT_CUDA_CHECK(cudaMemsetAsync(dst, 0, nbytes, cudaStreamPerThread));
}

bool cuda_synchronize_raw(int device, std::string* error) {
  if (!GRAFT_CUDA_CHECK(cudaSetDevice(device))) return false;
  return GRAFT_CUDA_CHECK(cudaStreamSynchronize(cudaStreamPerThread));
}

}  // namespace graft::kernels
