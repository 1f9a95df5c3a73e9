// The fused GRU: ONE autograd node for the whole layer stack, each layer (both directions) one call
// of the oneDNN lbr_gru kernel (kernels/gru/cpu_onednn.cpp), forward_training with a workspace.
// Shape letters: T steps, N batch, I input size, H hidden, L layers, D directions.
//
// A node has one output, so the node's output is one flat buffer
//   packed = [ y of the last layer (T*N*D*H, in the caller's layout) | h_n (L*D*N*H) ]
// and GruResult's output and h_n are differentiable views of it; the engine sums their gradients
// into one gradient of `packed` (zeros where a view was not used).
//
// Saved for backward, per layer l: its input x_l [T, N, I_l] (after dropout), its output y_l
// [T, N, D*H], its h_n slice (inside packed), and its oneDNN workspace; plus the dropout masks
// (already scaled by 1/(1-p)) and h0. Dropout masks are drawn layer by layer (l = 0 .. L-2) as
// bernoulli([T, N, D*H], 1 - p, cpu, options.generator), always in time-major layout.
//
// Variable lengths: oneDNN's RNN has no per-sequence lengths, and the reverse direction would need
// each sequence reversed within its own length; gru_fused_applies returns false when lengths is
// defined, and gru() takes the reference path.
#include <algorithm>
#include <string>

#include "autograd/functions/common.h"
#include "autograd/gru.h"
#include "kernels/gru/gru.h"
#include "tensor/error.h"
#include "tensor/factory.h"

namespace graft {

using namespace autograd;

namespace {

// Why the fused path does not apply to these arguments, or empty when it does.
std::string fused_refusal(const Tensor& input, const std::vector<Tensor>& params, const Tensor& lengths) {
  if (!kernels::gru_cpu_available()) return "graft was built without oneDNN";
  if (lengths.defined()) return "variable lengths (oneDNN's RNN has no per-sequence lengths)";
  if (!input.defined()) return "input is undefined";
  if (input.dtype() != DType::f32) return std::string("input dtype is ") + dtype_name(input.dtype()) + ", not f32";
  if (!input.device().is_cpu()) return "input is not on the CPU";
  for (const Tensor& p : params)
    if (!p.defined() || p.dtype() != DType::f32 || !p.device().is_cpu()) return "a parameter is not an f32 CPU tensor";
  return {};
}

struct Layer {
  kernels::GruLayerShape shape;
  Tensor x, y, workspace;  // x_l (after dropout), y_l [T, N, D*H], workspace (undefined for inference)
  std::vector<Tensor> w;   // this layer's params, contiguous, per direction (w_ih, w_hh[, b_ih, b_hh])
};

kernels::GruLayerWeights<float> weights_of(const Layer& layer, int64_t per) {
  kernels::GruLayerWeights<float> w;
  for (int64_t d = 0; d < layer.shape.D; ++d) {
    w.w_ih[d] = layer.w[d * per].data_ptr<float>();
    w.w_hh[d] = layer.w[d * per + 1].data_ptr<float>();
    if (per == 4) {
      w.b_ih[d] = layer.w[d * per + 2].data_ptr<float>();
      w.b_hh[d] = layer.w[d * per + 3].data_ptr<float>();
    }
  }
  return w;
}

float* ptr_or_null(const Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; }

}  // namespace

bool gru_fused_applies(const Tensor& input, const std::vector<Tensor>& params, const GruOptions& options,
                       const Tensor& lengths) {
  return fused_refusal(input, params, lengths).empty();
}

GruResult gru_fused(const Tensor& input, const Tensor& h0, const std::vector<Tensor>& params,
                    const GruOptions& options, const Tensor& lengths) {
  if (std::string why = fused_refusal(input, params, lengths); !why.empty())
    throw NotImplementedError("gru (fused): does not apply: " + why);
  const int64_t L = options.num_layers, D = options.bidirectional ? 2 : 1, per = options.bias ? 4 : 2;
  if (input.dim() != 3 || L < 1 || static_cast<int64_t>(params.size()) != L * D * per || params[1].dim() != 2)
    throw ShapeError("gru (fused): expected input [T, N, I] and " + std::to_string(L * D * per) +
                     " parameters, got input " + shape_str(input.shape()) + " and " + std::to_string(params.size()));
  const int64_t H = params[1].shape()[1];
  // Time-major inside; batch_first is transposed at the boundary (one copy each way).
  const Tensor x0 = ops::contiguous(options.batch_first ? ops::permute(input, {1, 0, 2}) : input);
  const int64_t T = x0.shape()[0], N = x0.shape()[1], I = x0.shape()[2];
  const Tensor h0c = h0.defined() ? ops::contiguous(h0) : Tensor();
  if (h0c.defined() && h0c.shape() != Shape{L * D, N, H})
    throw ShapeError("gru (fused): h0 " + shape_str(h0c.shape()) + " must be " + shape_str({L * D, N, H}));

  std::vector<Tensor> inputs{input, h0};
  inputs.insert(inputs.end(), params.begin(), params.end());
  const bool graph = needs_graph(inputs);
  const double p = options.dropout;
  const bool drop = options.training && p > 0.0 && L > 1;

  const int64_t y_numel = T * N * D * H, hn_numel = L * D * N * H;
  Tensor packed = empty({y_numel + hn_numel});
  const Tensor h_n_all = ops::narrow(packed, 0, y_numel, hn_numel);
  std::vector<Layer> layers(L);
  std::vector<Tensor> masks;
  for (int64_t l = 0; l < L; ++l) {
    Layer& layer = layers[l];
    layer.shape = {T, N, l == 0 ? I : D * H, H, D};
    for (int64_t k = 0; k < D * per; ++k) layer.w.push_back(ops::contiguous(params[l * D * per + k]));
    if (l == 0) {
      layer.x = x0;
    } else if (drop) {
      const Tensor& prev = layers[l - 1].y;
      // As graft::dropout draws (same generator use, so the reference composite sees the same masks);
      // p == 1 draws nothing and drops everything.
      if (p >= 1.0) {
        masks.push_back(zeros(prev.shape()));
      } else {
        Tensor keep = ops::cast(bernoulli(prev.shape(), 1.0 - p, Device::cpu(), options.generator), DType::f32);
        masks.push_back(ops::binary(BinaryOp::mul, keep, ops::scalar_like(1.0 / (1.0 - p), keep)));
      }
      layer.x = ops::binary(BinaryOp::mul, prev, masks.back());
    } else {
      layer.x = layers[l - 1].y;
    }
    // The last layer writes straight into packed when the layout allows.
    layer.y = (l == L - 1 && !options.batch_first) ? ops::narrow(packed, 0, 0, y_numel).view({T, N, D * H})
                                                   : empty({T, N, D * H});
    if (graph) {
      const auto bytes = static_cast<int64_t>(kernels::gru_cpu_workspace_bytes(layer.shape));
      layer.workspace = empty({(bytes + 3) / 4});
    }
    const float* h0_l = h0c.defined() ? h0c.data_ptr<float>() + l * D * N * H : nullptr;
    kernels::gru_cpu_forward(layer.shape, layer.x.data_ptr<float>(), h0_l, weights_of(layer, per),
                             layer.y.data_ptr<float>(), h_n_all.data_ptr<float>() + l * D * N * H,
                             ptr_or_null(layer.workspace));
    if (!graph && l > 0) layers[l - 1] = Layer{};  // inference: free what no backward will read
  }
  if (options.batch_first)
    ops::copy_into(ops::narrow(packed, 0, 0, y_numel).view({N, T, D * H}), ops::permute(layers.back().y, {1, 0, 2}));

  const bool batch_first = options.batch_first;
  const bool input_grad = input.requires_grad(), h0_grad = h0.defined() && h0.requires_grad();
  std::vector<bool> param_grad;
  for (const Tensor& q : params) param_grad.push_back(q.requires_grad());
  Tensor out = record(
      "gru_fused", packed, inputs,
      [layers, masks, h0c, h_n_all, per, batch_first, input_grad, h0_grad, param_grad, y_numel, hn_numel](
          const Tensor& grad) {
        const int64_t L = static_cast<int64_t>(layers.size());
        const kernels::GruLayerShape& s = layers.back().shape;
        const int64_t T = s.T, N = s.N, H = s.H, D = s.D;
        const Tensor g = ops::contiguous(grad);
        Tensor dy = ops::narrow(g, 0, 0, y_numel);
        dy = batch_first ? ops::contiguous(ops::permute(dy.view({N, T, D * H}), {1, 0, 2})) : dy.view({T, N, D * H});
        const Tensor dh_n = ops::narrow(g, 0, y_numel, hn_numel);
        std::vector<Tensor> result(2 + param_grad.size());
        Tensor dh0_all = h0_grad ? empty({L * D, N, H}) : Tensor();
        for (int64_t l = L - 1; l >= 0; --l) {
          const Layer& layer = layers[l];
          kernels::GruLayerGrads<float> grads;
          for (int64_t d = 0; d < D; ++d)
            for (int64_t k = 0; k < per; ++k) {
              const size_t index = static_cast<size_t>(l * D * per + d * per + k);
              if (!param_grad[index]) continue;
              Tensor dw = empty(layer.w[d * per + k].shape());
              result[2 + index] = dw;
              float* ptr = dw.data_ptr<float>();
              (k == 0 ? grads.w_ih : k == 1 ? grads.w_hh : k == 2 ? grads.b_ih : grads.b_hh)[d] = ptr;
            }
          Tensor dx = (l > 0 || input_grad) ? empty(layer.x.shape()) : Tensor();
          const float* h0_l = h0c.defined() ? h0c.data_ptr<float>() + l * D * N * H : nullptr;
          kernels::gru_cpu_backward(layer.shape, layer.x.data_ptr<float>(), h0_l, weights_of(layer, per),
                                    layer.y.data_ptr<float>(), h_n_all.data_ptr<float>() + l * D * N * H,
                                    layer.workspace.data_ptr<float>(), ops::contiguous(dy).data_ptr<float>(),
                                    dh_n.data_ptr<float>() + l * D * N * H, ptr_or_null(dx),
                                    h0_grad ? dh0_all.data_ptr<float>() + l * D * N * H : nullptr, grads);
          if (l > 0) dy = masks.empty() ? dx : ops::binary(BinaryOp::mul, dx, masks[l - 1]);
          else if (input_grad) result[0] = batch_first ? ops::contiguous(ops::permute(dx, {1, 0, 2})) : dx;
        }
        result[1] = dh0_all;
        return result;
      });
  GruResult result;
  const Shape y_shape = batch_first ? Shape{N, T, D * H} : Shape{T, N, D * H};
  result.output = view(narrow(out, 0, 0, y_numel), y_shape);
  result.h_n = view(narrow(out, 0, y_numel, hn_numel), {L * D, N, H});
  return result;
}

}  // namespace graft
