#include "tensor/device.h"

#include "kernels/memory/cuda_memory.h"

namespace graft {

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

bool cuda_is_available() { return kernels::cuda_device_count_raw() > 0; }
int cuda_device_count() { return kernels::cuda_device_count_raw(); }

}  // namespace graft
