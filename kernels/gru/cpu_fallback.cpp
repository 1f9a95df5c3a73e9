// Built without oneDNN: there is no fast GRU kernel, so the fused GRU does not apply
// (gru_fused_applies asks gru_cpu_available) and calling these is an error.
#include "kernels/gru/gru.h"
#include "tensor/error.h"

namespace graft::kernels {

bool gru_cpu_available() { return false; }

std::size_t gru_cpu_workspace_bytes(const GruLayerShape&) {
  throw NotImplementedError("gru_cpu_workspace_bytes: graft was built without oneDNN; the fused GRU does not apply");
}

void gru_cpu_forward(const GruLayerShape&, const float*, const float*, const GruLayerWeights<float>&, float*, float*,
                     void*) {
  throw NotImplementedError("gru_cpu_forward: graft was built without oneDNN; the fused GRU does not apply");
}

void gru_cpu_backward(const GruLayerShape&, const float*, const float*, const GruLayerWeights<float>&, const float*,
                      const float*, const void*, const float*, const float*, float*, float*,
                      const GruLayerGrads<float>&) {
  throw NotImplementedError("gru_cpu_backward: graft was built without oneDNN; the fused GRU does not apply");
}

}  // namespace graft::kernels
