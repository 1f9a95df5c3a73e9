// Built without oneDNN: there is no oneDNN GRU kernel, so GruImplementation::fused_onednn does not
// apply (gru_fused_applies asks gru_onednn_available) and calling these is an error. graft's own
// CPU kernel (kernels/gru/cpu.cpp) needs no oneDNN.
#include "kernels/gru/gru.h"
#include "tensor/error.h"

namespace graft::kernels {

bool gru_onednn_available() { return false; }

std::size_t gru_onednn_workspace_bytes(const GruLayerShape&) {
  throw NotImplementedError("gru_onednn_workspace_bytes: graft was built without oneDNN; GruImplementation::fused_onednn does not apply");
}

void gru_onednn_forward(const GruLayerShape&, const float*, const float*, const GruLayerWeights<float>&, float*, float*,
                     void*) {
  throw NotImplementedError("gru_onednn_forward: graft was built without oneDNN; GruImplementation::fused_onednn does not apply");
}

void gru_onednn_backward(const GruLayerShape&, const float*, const float*, const GruLayerWeights<float>&, const float*,
                      const float*, const void*, const float*, const float*, float*, float*,
                      const GruLayerGrads<float>&) {
  throw NotImplementedError("gru_onednn_backward: graft was built without oneDNN; GruImplementation::fused_onednn does not apply");
}

}  // namespace graft::kernels
