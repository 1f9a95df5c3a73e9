// The process-wide TF32 switch for f32 GEMMs on CUDA. Compiled in every build (with or without
// the CUDA backend) so that callers such as the benchmarks link either way.
#include <atomic>

#include "kernels/gemm/gemm.h"

namespace graft::kernels {

namespace {
std::atomic<bool> allow_tf32{false};  // off by default, as torch.backends.cuda.matmul.allow_tf32
}  // namespace

void set_cuda_allow_tf32(bool allow) { allow_tf32.store(allow, std::memory_order_relaxed); }
bool cuda_allow_tf32() { return allow_tf32.load(std::memory_order_relaxed); }

}  // namespace graft::kernels
