// Built when graft has no CUDA backend: every CUDA request fails with a clear reason.
#include "kernels/memory/cuda_memory.h"

namespace graft::kernels {

namespace {
const char* kReason = "graft was built without CUDA (configure with -DGRAFT_CUDA=ON where nvcc exists)";
}

bool cuda_compiled() { return false; }
int cuda_device_count_raw() { return 0; }
void* cuda_allocate(std::size_t, int, std::string* error) {
  if (error) *error = kReason;
  return nullptr;
}
void cuda_release(void*, int) {}
bool cuda_copy(void*, const void*, std::size_t, int, int, std::string* error) {
  if (error) *error = kReason;
  return false;
}
bool cuda_memset_zero(void*, std::size_t, int, std::string* error) {
  if (error) *error = kReason;
  return false;
}

bool cuda_synchronize_raw(int, std::string* error) {
  if (error) *error = kReason;
  return false;
}

}  // namespace graft::kernels
