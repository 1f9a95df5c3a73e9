// f32 GEMM for builds without oneDNN (e.g. the GPU machine): the reference loops.
#include "kernels/gemm/gemm.h"

namespace graft::kernels {

bool gemm_uses_onednn() { return false; }

void gemm_cpu(const GemmShape& shape, const float* a, const float* b, float* c) {
  gemm_reference(shape, a, b, c);
}

void gemm_bias_cpu(const GemmShape& shape, const float* a, const float* b, const float* bias, float* c) {
  gemm_reference(shape, a, b, c);
  add_bias_rows(shape, bias, c);
}

}  // namespace graft::kernels
