// The GRU as a differentiable op, PyTorch's nn.GRU numerics (linear-before-reset):
//   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
//   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
//   h' = (1 - z) * n + z * h
// Shapes: T time steps, N batch, I input size, H hidden size, L layers, D directions (1 or 2).
// params holds, for each layer l and direction d in the order (l0, l0_reverse, l1, ...), PyTorch's
// tensors w_ih [3H, I_l] (I_0 = I, else D*H), w_hh [3H, H], and with bias b_ih [3H], b_hh [3H]:
// 4 (or 2 without bias) tensors per (layer, direction), gate rows in the order r, z, n.
//
// Implementations of the same function: `reference`, a composite of autograd ops (the truth, and
// what gradcheck runs on), and `fused`, one autograd node for the whole stack on graft's own layer
// kernels: on the CPU (f32, AVX2/FMA) the input projection and the weight gradients as GEMMs over
// all steps and the recurrence on packed weights with the gates fused in (kernels/gru/cpu.cpp); on
// CUDA (f32) cuBLASLt GEMMs and fused gate kernels (kernels/gru/cuda.cu). `fused_onednn` is the
// same node on oneDNN's lbr_gru primitive (forward_training with a workspace, then backward), the
// vendor baseline the benchmarks compare against (CPU, f32, graft built with oneDNN; it has no
// per-sequence lengths, so with lengths each direction runs alone on sequences reversed within
// their lengths). `automatic` takes `fused` where it applies and the reference otherwise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace graft {

struct GruOptions {
  int64_t num_layers = 1;
  bool bias = true;
  bool batch_first = false;  // input/output [N, T, *] instead of [T, N, *]; h0/h_n stay [L*D, N, H]
  double dropout = 0.0;      // on the outputs of every layer but the last, while training
  bool bidirectional = false;
  bool training = true;      // dropout applies only when training
  // With lengths: true requires them sorted longest first (PyTorch's pack_padded_sequence default)
  // and calls anything else bad input; false accepts any order (enforce_sorted=False).
  bool enforce_sorted = true;
  Generator* generator = nullptr;  // for dropout; the default generator when null
};

enum class GruImplementation { automatic, reference, fused, fused_onednn };

struct GruResult {
  Tensor output;  // [T, N, D*H] (or [N, T, D*H] with batch_first); zero past each sequence's length
  Tensor h_n;     // [L*D, N, H]: for each sequence, the state at its last valid step
};

// input [T, N, I] (or [N, T, I]); h0 [L*D, N, H] or undefined (zeros); lengths: undefined (all T)
// or an integer tensor [N] with 1 <= length <= T, sorted longest first unless
// options.enforce_sorted is false: each sequence runs its own length, the reverse direction
// starts at its last valid step (PyTorch's packed sequences).
GruResult gru(const Tensor& input, const Tensor& h0, const std::vector<Tensor>& params, const GruOptions& options,
              const Tensor& lengths = Tensor(), GruImplementation implementation = GruImplementation::automatic);

// Whether the fused path (`fused`, or `fused_onednn`) can run these arguments (dtype, device,
// build); gru() asks this. gru_fused_refusal says why not, in words (empty when it applies).
bool gru_fused_applies(const Tensor& input, const std::vector<Tensor>& params, const GruOptions& options,
                       const Tensor& lengths, GruImplementation implementation = GruImplementation::fused);
std::string gru_fused_refusal(const Tensor& input, const std::vector<Tensor>& params, const Tensor& lengths,
                              GruImplementation implementation = GruImplementation::fused);

// The fused path itself (defined in autograd/functions/gru_fused.cpp); gru() validates first.
GruResult gru_fused(const Tensor& input, const Tensor& h0, const std::vector<Tensor>& params,
                    const GruOptions& options, const Tensor& lengths,
                    GruImplementation implementation = GruImplementation::fused);

// One step of one cell: input [N, I], hx [N, H] -> [N, H] (torch.nn.GRUCell); biases may be undefined.
Tensor gru_cell(const Tensor& input, const Tensor& hx, const Tensor& w_ih, const Tensor& w_hh,
                const Tensor& b_ih = Tensor(), const Tensor& b_hh = Tensor());

}  // namespace graft
