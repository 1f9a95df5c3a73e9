// Raw GRU kernels for one layer (both directions), no autograd: PyTorch's nn.GRU cell
// (linear-before-reset) with gate rows in PyTorch's order r, z, n.
//   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
//   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
//   h' = (1 - z) * n + z * h
// Shape letters: T time steps, N batch, I input size of this layer, H hidden size, D directions
// (1, or 2 for bidirectional), G = 3 gates. Direction 1 runs t = T-1 .. 0.
//
// Layouts (all row-major, contiguous):
//   x [T, N, I]; h0 [D, N, H] or null (zeros); y [T, N, D*H] (direction d in columns d*H .. d*H+H);
//   h_n [D, N, H]; per direction d: w_ih[d] [3H, I], w_hh[d] [3H, H], b_ih[d] / b_hh[d] [3H] or null.
// Forward overwrites y and h_n, and the workspace when one is given (training); backward reads
// what forward wrote (x, h0, y, h_n, workspace, the same weights) and OVERWRITES every gradient it
// is given (dx, dh0, dw_*, db_*; a null pointer means "not wanted"). The incoming gradients
// dy [T, N, D*H] and dh_n [D, N, H] must both be given (zeros where nothing flows).
//
// Backends: the reference (plain loops, f32 and f64, the truth); graft's own CPU kernel (f32,
// AVX2/FMA, kernels/gru/cpu.cpp; gru_cpu_available() is false in a build without AVX2/FMA); the
// CPU kernel on oneDNN's lbr_gru primitive (f32; gru_onednn_available() is false without oneDNN),
// kept as the vendor baseline; and CUDA (below). Their workspaces differ: size them with the
// matching *_workspace_bytes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace graft::kernels {

struct GruLayerShape {
  int64_t T = 0, N = 0, I = 0, H = 0, D = 1;
};

template <class S>
struct GruLayerWeights {
  const S* w_ih[2] = {nullptr, nullptr};
  const S* w_hh[2] = {nullptr, nullptr};
  const S* b_ih[2] = {nullptr, nullptr};  // both biases null: a layer without bias
  const S* b_hh[2] = {nullptr, nullptr};
};

template <class S>
struct GruLayerGrads {
  S* w_ih[2] = {nullptr, nullptr};
  S* w_hh[2] = {nullptr, nullptr};
  S* b_ih[2] = {nullptr, nullptr};
  S* b_hh[2] = {nullptr, nullptr};
};

// --- reference: plain loops (accumulating in double) ---
// Workspace: per direction, step and batch row the gates r, z, n and W_hn h + b_hn (4H values).
template <class S>
std::size_t gru_reference_workspace_bytes(const GruLayerShape& shape);
template <class S>
void gru_reference_forward(const GruLayerShape& shape, const S* x, const S* h0, const GruLayerWeights<S>& weights,
                           S* y, S* h_n, void* workspace);
template <class S>
void gru_reference_backward(const GruLayerShape& shape, const S* x, const S* h0, const GruLayerWeights<S>& weights,
                            const S* y, const S* h_n, const void* workspace, const S* dy, const S* dh_n, S* dx,
                            S* dh0, const GruLayerGrads<S>& grads);

// --- CPU, graft's own: the input projection and the weight gradients as GEMMs over all steps, the
// recurrence in one parallel region per direction on packed weights with the gates fused in
// (inference when workspace is null). Backward skips dx when it is null (oneDNN's cannot).
// Per-sequence lengths: null (all T steps), or N host values sorted longest first, each in [1, T],
// the same for forward and backward. Sequence n then runs steps [0, len_n) (the reverse direction
// from len_n - 1 down to 0, starting from h0) and the steps past it are not computed: y is zero
// there, h_n is the state after the sequence's last step, and dy past it is ignored. ---
bool gru_cpu_available();
std::size_t gru_cpu_workspace_bytes(const GruLayerShape& shape);
void gru_cpu_forward(const GruLayerShape& shape, const float* x, const float* h0, const GruLayerWeights<float>& weights,
                     float* y, float* h_n, void* workspace, const int64_t* lengths = nullptr);
void gru_cpu_backward(const GruLayerShape& shape, const float* x, const float* h0, const GruLayerWeights<float>& weights,
                      const float* y, const float* h_n, const void* workspace, const float* dy, const float* dh_n,
                      float* dx, float* dh0, const GruLayerGrads<float>& grads, const int64_t* lengths = nullptr);

// --- CPU: oneDNN lbr_gru (forward_training + workspace, or forward_inference when workspace is null) ---
bool gru_onednn_available();
std::size_t gru_onednn_workspace_bytes(const GruLayerShape& shape);
void gru_onednn_forward(const GruLayerShape& shape, const float* x, const float* h0,
                        const GruLayerWeights<float>& weights, float* y, float* h_n, void* workspace);
void gru_onednn_backward(const GruLayerShape& shape, const float* x, const float* h0,
                         const GruLayerWeights<float>& weights, const float* y, const float* h_n, const void* workspace,
                         const float* dy, const float* dh_n, float* dx, float* dh0, const GruLayerGrads<float>& grads);

}  // namespace graft::kernels

namespace graft::kernels {

// --- CUDA (kernels/gru/cuda.cu; declared in every build, defined only with CUDA) ---
// f32 on device pointers of `device`, queued on the calling thread's stream (kernels/common/cuda.h).
// The layer contract above, plus per-sequence lengths: `lengths` is null (every sequence runs all
// T steps) or a device array of N int64 values in [1, T]. Sequence n then runs steps [0, len_n):
// past its length its state is held and its output is zero, so the forward direction's h_n is the
// state after step len_n - 1 and the reverse direction holds h0 until t = len_n - 1 and starts
// there (PyTorch's packed sequences; the same results as running on inputs reversed within lengths).
// Per direction: the input projection of all T steps is one GEMM, each step one GEMM h W_hh^T and
// one fused gate kernel; backward runs the steps in reverse with one gate-gradient kernel and one
// GEMM per step, then the weight gradients as GEMMs over all steps and dx as one GEMM. No atomics.
// Workspace (training): [D, T, N, 4H] gates r, z, n, W_hn h + b_hn per step (in the direction's
// step order s), then [D, T+1, N, H] the states h_0 .. h_T (what backward needs as h_prev).
// Backward reads x, the weights, lengths and the workspace (h0, y and h_n are not needed: the
// states are in the workspace); scratch comes from the stream-ordered pool.
std::size_t gru_cuda_workspace_bytes(const GruLayerShape& shape);
void gru_cuda_forward(const GruLayerShape& shape, const float* x, const float* h0, const GruLayerWeights<float>& weights,
                      const int64_t* lengths, float* y, float* h_n, void* workspace, int device);
void gru_cuda_backward(const GruLayerShape& shape, const float* x, const GruLayerWeights<float>& weights,
                       const int64_t* lengths, const void* workspace, const float* dy, const float* dh_n, float* dx,
                       float* dh0, const GruLayerGrads<float>& grads, int device);

}  // namespace graft::kernels
