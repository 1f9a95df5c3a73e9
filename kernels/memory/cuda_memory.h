// Device memory for the CUDA backend. Allocation goes through the stream-ordered pool
// (cudaMallocAsync). Functions report failure through `error` (set to the failing call and its
// message) so that the tensor layer can throw a typed graft::Error; kernels never throw.
#pragma once

#include <cstddef>
#include <string>

namespace graft::kernels {

bool cuda_compiled();  // this build has the CUDA backend
int cuda_device_count_raw();  // 0 when not compiled or no device/driver
void* cuda_allocate(std::size_t nbytes, int device, std::string* error);
void cuda_release(void* ptr, int device);
// kind: 0 host->device, 1 device->host, 2 device->device. Synchronous with respect to the host.
bool cuda_copy(void* dst, const void* src, std::size_t nbytes, int kind, int device, std::string* error);
bool cuda_memset_zero(void* dst, std::size_t nbytes, int device, std::string* error);
// Waits for the calling thread's queued work on `device` (its cudaStreamPerThread).
bool cuda_synchronize_raw(int device, std::string* error);

}  // namespace graft::kernels
