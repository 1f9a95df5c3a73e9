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

// Makes `device` current for the scope and restores the caller's device after.
class ScopedDevice {
 public:
  explicit ScopedDevice(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    ok_ = cudaSetDevice(device);
  }
  ~ScopedDevice() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  cudaError_t status() const { return ok_; }

 private:
  int previous_ = -1;
  cudaError_t ok_ = cudaSuccess;
};
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
  ScopedDevice scope(device);
  if (!GRAFT_CUDA_CHECK(scope.status())) return nullptr;
  if (!GRAFT_CUDA_CHECK(cudaMallocAsync(&ptr, nbytes == 0 ? 1 : nbytes, cudaStreamPerThread))) return nullptr;
  return ptr;
}

void cuda_release(void* ptr, int device) {
  if (!ptr) return;
  ScopedDevice scope(device);
  cudaFreeAsync(ptr, cudaStreamPerThread);
}

bool cuda_copy(void* dst, const void* src, std::size_t nbytes, int kind, int device, std::string* error) {
  ScopedDevice scope(device);
  if (!GRAFT_CUDA_CHECK(scope.status())) return false;
  const cudaMemcpyKind k = kind == 0 ? cudaMemcpyHostToDevice : kind == 1 ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
  if (!GRAFT_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, k, cudaStreamPerThread))) return false;
  return GRAFT_CUDA_CHECK(cudaStreamSynchronize(cudaStreamPerThread));
}

bool cuda_memset_zero(void* dst, std::size_t nbytes, int device, std::string* error) {
  ScopedDevice scope(device);
  if (!GRAFT_CUDA_CHECK(scope.status())) return false;
  return GRAFT_CUDA_CHECK(cudaMemsetAsync(dst, 0, nbytes, cudaStreamPerThread));
}

bool cuda_synchronize_raw(int device, std::string* error) {
  ScopedDevice scope(device);
  if (!GRAFT_CUDA_CHECK(scope.status())) return false;
  return GRAFT_CUDA_CHECK(cudaStreamSynchronize(cudaStreamPerThread));
}

}  // namespace graft::kernels
