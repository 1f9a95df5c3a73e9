// The GRU reference: a composite of autograd ops, so the engine differentiates it and gradcheck
// can run on it. It is the truth the fused path is tested against; clarity over speed.
//
// Shape letters: T time steps, N batch, I_l the input size of layer l, H hidden size,
// L layers, D directions. Internally everything is time-major [T, N, *].
//
// Variable lengths follow PyTorch's packed sequences: sequence n runs steps [0, len_n). Where a
// step is valid for some sequences only, the new state is taken with `where` per row and the other
// rows keep their state, so the forward direction's state freezes at len_n - 1, and the reverse
// direction (walking t = T-1 .. 0) holds h0 until t = len_n - 1 and starts there. Outputs of
// invalid steps are zeros, so the next layer sees exactly what PyTorch's padding gives it, and
// `where` sends no gradient into the masked-out branch.
#include <string>
#include <vector>

#include "autograd/gru.h"
#include "autograd/ops.h"

namespace graft::detail {

// One cell step, PyTorch's order of operations: h' = (h - n) * z + n.
Tensor gru_cell_step(const Tensor& x, const Tensor& h, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                     const Tensor& b_hh);

namespace {

// The gate arithmetic on precomputed projections gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh,
// both [N, 3H] with column blocks r, z, n.
Tensor gates_to_state(const Tensor& gi, const Tensor& gh, const Tensor& h, int64_t H) {
  const Tensor rz = sigmoid(narrow(gi, 1, 0, 2 * H) + narrow(gh, 1, 0, 2 * H));
  const Tensor r = narrow(rz, 1, 0, H), z = narrow(rz, 1, H, H);
  const Tensor n = tanh(narrow(gi, 1, 2 * H, H) + r * narrow(gh, 1, 2 * H, H));
  return (h - n) * z + n;
}

// Which rows are valid at each step (lengths empty: all of them).
struct StepMasks {
  std::vector<int64_t> valid_count;  // [T]: how many sequences include step t
  std::vector<Tensor> mask;          // [T] bool [N, 1], defined only where 0 < valid_count < N
};

StepMasks step_masks(const std::vector<int64_t>& lengths, int64_t T, int64_t N, Device device) {
  StepMasks m;
  m.valid_count.assign(T, N);
  m.mask.resize(T);
  if (lengths.empty()) return m;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<bool> valid(N);
    int64_t count = 0;
    for (int64_t n = 0; n < N; ++n) count += (valid[n] = t < lengths[n]) ? 1 : 0;
    m.valid_count[t] = count;
    if (count > 0 && count < N) m.mask[t] = from_vector<bool>(valid, {N, 1}).to(device);
  }
  return m;
}

// Runs one direction of one layer over the whole sequence. gi: [T, N, 3H], h: the initial state
// [N, H]. Writes the per-step outputs [N, H] into outputs and returns the final state.
Tensor run_direction(const Tensor& gi, Tensor h, const Tensor& w_hh, const Tensor& b_hh, bool reverse,
                     const StepMasks& masks, std::vector<Tensor>& outputs) {
  const int64_t T = gi.size(0), N = gi.size(1), H = w_hh.size(1);
  outputs.assign(T, Tensor());
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    if (masks.valid_count[t] == 0) {  // every sequence has ended: zeros out, state kept
      outputs[t] = zeros({N, H}, TensorOptions(gi.dtype()).with_device(gi.device()));
      continue;
    }
    const Tensor h_new = gates_to_state(select(gi, 0, t), linear(h, w_hh, b_hh), h, H);
    if (masks.valid_count[t] == N) {
      outputs[t] = h_new;
      h = h_new;
    } else {
      outputs[t] = where(masks.mask[t], h_new, 0.0);
      h = where(masks.mask[t], h_new, h);
    }
  }
  return h;
}

}  // namespace

Tensor gru_cell_step(const Tensor& x, const Tensor& h, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                     const Tensor& b_hh) {
  return gates_to_state(linear(x, w_ih, b_ih), linear(h, w_hh, b_hh), h, w_hh.size(1));
}

GruResult gru_reference(const Tensor& input, const Tensor& h0, const std::vector<Tensor>& params,
                        const GruOptions& options, const std::vector<int64_t>& lengths) {
  const int64_t L = options.num_layers, D = options.bidirectional ? 2 : 1, per = options.bias ? 4 : 2;
  const Tensor x_tm = options.batch_first ? transpose(input, 0, 1) : input;  // [T, N, I]
  const int64_t T = x_tm.size(0), N = x_tm.size(1), H = params[1].size(1);
  const StepMasks masks = step_masks(lengths, T, N, input.device());

  Tensor layer_input = x_tm;
  std::vector<Tensor> finals;  // [L*D] of [N, H], in h_n's order
  for (int64_t l = 0; l < L; ++l) {
    // Dropout acts on the outputs of every layer but the last, i.e. on the inputs of layers >= 1.
    if (l > 0 && options.training && options.dropout > 0.0)
      layer_input = dropout(layer_input, options.dropout, true, options.generator);
    std::vector<Tensor> direction_outputs;
    for (int64_t d = 0; d < D; ++d) {
      const Tensor* p = &params[(l * D + d) * per];
      const Tensor b_ih = options.bias ? p[2] : Tensor(), b_hh = options.bias ? p[3] : Tensor();
      // The input projection of every step at once: one matmul instead of T.
      const Tensor gi = linear(layer_input, p[0], b_ih);
      const Tensor h_init = h0.defined() ? select(h0, 0, l * D + d)
                                         : zeros({N, H}, TensorOptions(input.dtype()).with_device(input.device()));
      std::vector<Tensor> outputs;
      finals.push_back(run_direction(gi, h_init, p[1], b_hh, d == 1, masks, outputs));
      direction_outputs.push_back(stack(outputs, 0));  // [T, N, H]
    }
    layer_input = D == 1 ? direction_outputs[0] : cat(direction_outputs, 2);  // [T, N, D*H]
  }
  Tensor output = options.batch_first ? contiguous(transpose(layer_input, 0, 1)) : layer_input;
  return GruResult{output, stack(finals, 0)};
}

}  // namespace graft::detail
