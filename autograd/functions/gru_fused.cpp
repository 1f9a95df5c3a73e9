// The fused GRU: ONE autograd node for the whole layer stack, each layer (both directions) one call
// of a CPU layer kernel with a workspace for backward: graft's own (kernels/gru/cpu.cpp), or with
// GruImplementation::fused_onednn oneDNN's lbr_gru (kernels/gru/cpu_onednn.cpp), the same contract.
// On CUDA tensors the same node runs kernels/gru/cuda.cu instead (gru_fused_cuda below).
// Shape letters: T steps, N batch, I input size, H hidden, L layers, D directions.
//
// A node has one output, so the node's output is one flat buffer
//   packed = [ y of the last layer (T*N*D*H, in the caller's layout) | h_n (L*D*N*H) ]
// and GruResult's output and h_n are differentiable views of it; the engine sums their gradients
// into one gradient of `packed` (zeros where a view was not used).
//
// Saved for backward, per layer l: its input x_l [T, N, I_l] (after dropout), its output y_l
// [T, N, D*H], its h_n slice (inside packed), and its kernel's workspace; plus the dropout masks
// (already scaled by 1/(1-p)) and h0. Dropout masks are drawn layer by layer (l = 0 .. L-2) as
// bernoulli([T, N, D*H], 1 - p, cpu, options.generator), always in time-major layout.
//
// Variable lengths: graft's CPU kernel (and the CUDA one) take them natively; on the CPU the batch
// is sorted longest first at the node's boundary (BatchOrder), so that the sequences still running
// at a step are a prefix of the batch and the finished ones cost nothing. oneDNN's RNN has no
// per-sequence lengths, so under fused_onednn each direction runs as its own left-to-right call over
// all T steps, the reverse direction on the input reversed within each sequence's length (x_rev[t] =
// x[len-1-t] for t < len). A sequence's valid steps then come first in both calls, so steps past
// its length cannot affect them: the outputs there are masked to zero, h_n is the output at step
// len-1 (un-reversed for the reverse direction), and in backward the padded steps get zero output
// gradient and dh_n is added at step len-1 instead.
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

// What both paths read off the arguments (already validated by gru() and gru_fused()): sizes, the
// time-major contiguous input (batch_first is transposed at the boundary, one copy each way), h0,
// and whether a graph and dropout between layers are wanted.
struct FusedCall {
  int64_t L, D, per, H, T = 0, N = 0, I = 0, y_numel = 0, hn_numel = 0;
  Tensor x0, h0c;
  std::vector<Tensor> inputs;  // input, h0, params: the node's inputs
  bool graph = false, drop = false;
  double p = 0.0;

  FusedCall(const Tensor& input, const Tensor& h0, const std::vector<Tensor>& params, const GruOptions& options)
      : L(options.num_layers), D(options.bidirectional ? 2 : 1), per(options.bias ? 4 : 2), H(params[1].shape()[1]) {
    x0 = ops::contiguous(options.batch_first ? ops::permute(input, {1, 0, 2}) : input);
    T = x0.shape()[0], N = x0.shape()[1], I = x0.shape()[2];
    h0c = h0.defined() ? ops::contiguous(h0) : Tensor();
    if (h0c.defined() && h0c.shape() != Shape{L * D, N, H})
      throw ShapeError("gru (fused): h0 " + shape_str(h0c.shape()) + " must be " + shape_str({L * D, N, H}));
    inputs = {input, h0};
    inputs.insert(inputs.end(), params.begin(), params.end());
    graph = needs_graph(inputs);
    p = options.dropout;
    drop = options.training && p > 0.0 && L > 1;
    y_numel = T * N * D * H, hn_numel = L * D * N * H;
  }

  // The node's packed output [y; h_n] as the user sees it: y [T, N, D*H] (or [N, T, D*H]), h_n.
  GruResult result_of(const Tensor& out, bool batch_first) const {
    GruResult result;
    const Shape y_shape = batch_first ? Shape{N, T, D * H} : Shape{T, N, D * H};
    result.output = view(narrow(out, 0, 0, y_numel), y_shape);
    result.h_n = view(narrow(out, 0, y_numel, hn_numel), {L * D, N, H});
    return result;
  }
};

// Dropout's scaled mask between layers, drawn on the CPU as graft::dropout draws (same generator
// use, so the reference composite, and both devices, see the same masks); p == 1 draws nothing
// and drops everything.
Tensor between_layers_mask(const Shape& shape, double p, Generator* generator) {
  if (p >= 1.0) return zeros(shape);
  Tensor keep = ops::cast(bernoulli(shape, 1.0 - p, Device::cpu(), generator), DType::f32);
  return ops::binary(BinaryOp::mul, keep, ops::scalar_like(1.0 / (1.0 - p), keep));
}

// A CPU layer kernel of gru.h's contract: graft's own, or oneDNN's lbr_gru. Only graft's takes
// per-sequence lengths (`lengths`); oneDNN's is never given any.
struct CpuKernel {
  bool (*available)();
  std::size_t (*workspace_bytes)(const kernels::GruLayerShape&);
  decltype(&kernels::gru_cpu_forward) forward;
  decltype(&kernels::gru_cpu_backward) backward;
  bool lengths;
};

const CpuKernel& cpu_kernel(GruImplementation implementation) {
  using kernels::GruLayerGrads, kernels::GruLayerShape, kernels::GruLayerWeights;
  static const CpuKernel graft{kernels::gru_cpu_available, kernels::gru_cpu_workspace_bytes, kernels::gru_cpu_forward,
                               kernels::gru_cpu_backward, true};
  static const CpuKernel onednn{
      kernels::gru_onednn_available, kernels::gru_onednn_workspace_bytes,
      [](const GruLayerShape& s, const float* x, const float* h0, const GruLayerWeights<float>& w, float* y,
         float* h_n, void* ws, const int64_t*) { kernels::gru_onednn_forward(s, x, h0, w, y, h_n, ws); },
      [](const GruLayerShape& s, const float* x, const float* h0, const GruLayerWeights<float>& w, const float* y,
         const float* h_n, const void* ws, const float* dy, const float* dh_n, float* dx, float* dh0,
         const GruLayerGrads<float>& g,
         const int64_t*) { kernels::gru_onednn_backward(s, x, h0, w, y, h_n, ws, dy, dh_n, dx, dh0, g); },
      false};
  return implementation == GruImplementation::fused_onednn ? onednn : graft;
}

// The batch in the order graft's CPU kernel takes lengths in, longest first (stable): sorted row i
// is the caller's row rows[i]. Index tensors only when that is not the caller's order already.
struct BatchOrder {
  std::vector<int64_t> lengths;  // sorted; empty: no lengths
  Tensor to_sorted, to_caller;   // index_select indices along the batch dimension

  BatchOrder() = default;
  explicit BatchOrder(const std::vector<int64_t>& lens) {
    std::vector<int64_t> rows(lens.size());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
    std::stable_sort(rows.begin(), rows.end(), [&](int64_t a, int64_t b) { return lens[a] > lens[b]; });
    for (int64_t r : rows) lengths.push_back(lens[r]);
    if (std::is_sorted(rows.begin(), rows.end())) return;
    std::vector<int64_t> inverse(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) inverse[rows[i]] = static_cast<int64_t>(i);
    to_sorted = from_vector<int64_t>(rows);
    to_caller = from_vector<int64_t>(inverse);
  }
  bool permutes() const { return to_sorted.defined(); }
  const int64_t* data() const { return lengths.empty() ? nullptr : lengths.data(); }
  Tensor sorted(const Tensor& t, int64_t dim) const {
    return permutes() && t.defined() ? ops::index_select(t, dim, to_sorted) : t;
  }
  Tensor caller(const Tensor& t, int64_t dim) const {
    return permutes() && t.defined() ? ops::index_select(t, dim, to_caller) : t;
  }
};

// Why the fused path does not apply to these arguments, or empty when it does.
std::string fused_refusal(const Tensor& input, const std::vector<Tensor>& params, GruImplementation implementation) {
  const bool onednn = implementation == GruImplementation::fused_onednn;
#if GRAFT_WITH_CUDA
  // CUDA tensors take the CUDA kernels (kernels/gru/cuda.cu), which need no oneDNN.
  if (input.defined() && input.device().is_cuda()) {
    if (onednn) return "fused_onednn runs on the CPU and the input is on " + input.device().str();
    if (input.dtype() != DType::f32) return std::string("input dtype is ") + dtype_name(input.dtype()) + ", not f32";
    for (const Tensor& p : params)
      if (!p.defined() || p.dtype() != DType::f32 || p.device() != input.device())
        return "a parameter is not an f32 tensor on " + input.device().str();
    return {};
  }
#endif
  if (!cpu_kernel(implementation).available())
    return onednn ? "graft was built without oneDNN" : "graft was built without AVX2/FMA (GRAFT_NATIVE off)";
  if (!input.defined()) return "input is undefined";
  if (input.dtype() != DType::f32) return std::string("input dtype is ") + dtype_name(input.dtype()) + ", not f32";
  if (!input.device().is_cpu()) return "input is not on the CPU";
  for (const Tensor& p : params)
    if (!p.defined() || p.dtype() != DType::f32 || !p.device().is_cpu()) return "a parameter is not an f32 CPU tensor";
  return {};
}

// One direction run alone (variable lengths): what the kernel saw and wrote.
struct DirectionRun {
  kernels::GruLayerShape shape;  // D = 1
  Tensor x, y, h_n, workspace;   // x as fed (reversed within lengths for the reverse direction), raw y [T, N, H]
};

struct Layer {
  kernels::GruLayerShape shape;
  Tensor x, y, workspace;  // x_l (after dropout), y_l [T, N, D*H], workspace (undefined for inference)
  std::vector<Tensor> w;   // this layer's params, contiguous, per direction (w_ih, w_hh[, b_ih, b_hh])
  std::vector<DirectionRun> runs;  // with lengths: one per direction (and workspace above unused)
};

// The weights of direction d alone, as a one-direction layer.
kernels::GruLayerWeights<float> direction_weights(const Layer& layer, int64_t per, int64_t d) {
  kernels::GruLayerWeights<float> w;
  w.w_ih[0] = layer.w[d * per].data_ptr<float>();
  w.w_hh[0] = layer.w[d * per + 1].data_ptr<float>();
  if (per == 4) {
    w.b_ih[0] = layer.w[d * per + 2].data_ptr<float>();
    w.b_hh[0] = layer.w[d * per + 3].data_ptr<float>();
  }
  return w;
}

// Time index that step t of sequence n maps to: itself forward, mirrored within the length in
// reverse (an involution, so the same map undoes it); padded steps stay in place.
inline int64_t source_step(bool reverse, int64_t t, int64_t length) {
  return reverse && t < length ? length - 1 - t : t;
}

// out[t, n, :] = in[source_step(t), n, in_offset : in_offset + C] for valid steps; padded steps
// get zeros when mask_padding, else their own values. in is [T, N, in_stride], out [T, N, C].
void gather_steps(const float* in, int64_t in_stride, int64_t in_offset, float* out, int64_t C, int64_t T,
                  const std::vector<int64_t>& lengths, bool reverse, bool mask_padding) {
  const auto N = static_cast<int64_t>(lengths.size());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      float* dst = out + (t * N + n) * C;
      if (t >= lengths[n] && mask_padding) {
        std::fill(dst, dst + C, 0.0f);
        continue;
      }
      const float* src = in + (source_step(reverse, t, lengths[n]) * N + n) * in_stride + in_offset;
      std::copy(src, src + C, dst);
    }
}

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

#if GRAFT_WITH_CUDA
// The CUDA path (kernels/gru/cuda.cu). The kernels take lengths themselves (a sequence's state is
// held past its length and its outputs there are zero, which gives what the reversed runs above
// give), so each layer is one call for both directions, with or without lengths. Dropout masks are
// drawn on the CPU exactly as above and moved to the device: a seeded run drops the same elements
// on either device. Saved per layer: x_l, y_l and the workspace (the gates and every step's state).
struct CudaLayer {
  kernels::GruLayerShape shape;
  Tensor x, y, workspace;  // x_l (after dropout), y_l [T, N, D*H], workspace (undefined for inference)
  std::vector<Tensor> w;   // this layer's params, contiguous, per direction (w_ih, w_hh[, b_ih, b_hh])
};

// Device addresses: data_ptr<T>() is for host memory only.
float* device_floats(const Tensor& t) { return t.defined() ? static_cast<float*>(t.data_ptr()) : nullptr; }
const int64_t* device_lengths(const Tensor& t) { return t.defined() ? static_cast<const int64_t*>(t.data_ptr()) : nullptr; }

kernels::GruLayerWeights<float> cuda_weights(const CudaLayer& layer, int64_t per) {
  kernels::GruLayerWeights<float> w;
  for (int64_t d = 0; d < layer.shape.D; ++d) {
    w.w_ih[d] = device_floats(layer.w[d * per]);
    w.w_hh[d] = device_floats(layer.w[d * per + 1]);
    if (per == 4) {
      w.b_ih[d] = device_floats(layer.w[d * per + 2]);
      w.b_hh[d] = device_floats(layer.w[d * per + 3]);
    }
  }
  return w;
}

GruResult gru_fused_cuda(const FusedCall& c, const Tensor& input, const Tensor& h0, const std::vector<Tensor>& params,
                         const GruOptions& options, const Tensor& lengths) {
  const Device device = input.device();
  const TensorOptions on_device = TensorOptions(DType::f32).with_device(device);
  const int64_t L = c.L, D = c.D, per = c.per, H = c.H, T = c.T, N = c.N, I = c.I;
  const int64_t y_numel = c.y_numel, hn_numel = c.hn_numel;
  const Tensor &x0 = c.x0, &h0c = c.h0c;
  const std::vector<Tensor>& inputs = c.inputs;
  const bool graph = c.graph, drop = c.drop;
  const double p = c.p;
  // Validated by gru(): 1 <= length <= T. The kernels read them on the device as i64.
  const Tensor lens = lengths.defined() ? ops::to_device(from_vector<int64_t>(lengths.to_vector<int64_t>()), device)
                                        : Tensor();
  Tensor packed = empty({y_numel + hn_numel}, on_device);
  const Tensor h_n_all = ops::narrow(packed, 0, y_numel, hn_numel);
  std::vector<CudaLayer> layers(L);
  std::vector<Tensor> masks;  // on the device
  for (int64_t l = 0; l < L; ++l) {
    CudaLayer& layer = layers[l];
    layer.shape = {T, N, l == 0 ? I : D * H, H, D};
    for (int64_t k = 0; k < D * per; ++k) layer.w.push_back(ops::contiguous(params[l * D * per + k]));
    if (l == 0) {
      layer.x = x0;
    } else if (drop) {
      const Tensor& prev = layers[l - 1].y;
      masks.push_back(ops::to_device(between_layers_mask(prev.shape(), p, options.generator), device));
      layer.x = ops::binary(BinaryOp::mul, prev, masks.back());
    } else {
      layer.x = layers[l - 1].y;
    }
    layer.y = (l == L - 1 && !options.batch_first) ? ops::narrow(packed, 0, 0, y_numel).view({T, N, D * H})
                                                   : empty({T, N, D * H}, on_device);
    if (graph) {
      const auto bytes = static_cast<int64_t>(kernels::gru_cuda_workspace_bytes(layer.shape));
      layer.workspace = empty({(bytes + 3) / 4}, on_device);
    }
    const float* h0_l = h0c.defined() ? device_floats(h0c) + l * D * N * H : nullptr;
    kernels::gru_cuda_forward(layer.shape, device_floats(layer.x), h0_l, cuda_weights(layer, per), device_lengths(lens),
                              device_floats(layer.y), device_floats(h_n_all) + l * D * N * H,
                              device_floats(layer.workspace), device.index);
    // Inference: free what no backward will read (frees are ordered after the queued kernels).
    if (!graph && l > 0) layers[l - 1] = CudaLayer{};
  }
  if (options.batch_first)
    ops::copy_into(ops::narrow(packed, 0, 0, y_numel).view({N, T, D * H}), ops::permute(layers.back().y, {1, 0, 2}));

  const bool batch_first = options.batch_first;
  const bool input_grad = input.requires_grad(), h0_grad = h0.defined() && h0.requires_grad();
  std::vector<bool> param_grad;
  for (const Tensor& q : params) param_grad.push_back(q.requires_grad());
  Tensor out = record(
      "gru_fused", packed, inputs,
      [layers, masks, lens, per, batch_first, input_grad, h0_grad, param_grad, y_numel, hn_numel, on_device](
          const Tensor& grad) {
        const int64_t L = static_cast<int64_t>(layers.size());
        const kernels::GruLayerShape& s = layers.back().shape;
        const int64_t T = s.T, N = s.N, H = s.H, D = s.D;
        const int device = on_device.device.index;
        const Tensor g = ops::contiguous(grad);
        Tensor dy = ops::narrow(g, 0, 0, y_numel);
        dy = batch_first ? ops::contiguous(ops::permute(dy.view({N, T, D * H}), {1, 0, 2})) : dy.view({T, N, D * H});
        const Tensor dh_n = ops::narrow(g, 0, y_numel, hn_numel);
        std::vector<Tensor> result(2 + param_grad.size());
        Tensor dh0_all = h0_grad ? empty({L * D, N, H}, on_device) : Tensor();
        for (int64_t l = L - 1; l >= 0; --l) {
          const CudaLayer& layer = layers[l];
          kernels::GruLayerGrads<float> grads;
          for (int64_t d = 0; d < D; ++d)
            for (int64_t k = 0; k < per; ++k) {
              const size_t index = static_cast<size_t>(l * D * per + d * per + k);
              if (!param_grad[index]) continue;
              Tensor dw = empty(layer.w[d * per + k].shape(), on_device);
              result[2 + index] = dw;
              (k == 0 ? grads.w_ih : k == 1 ? grads.w_hh : k == 2 ? grads.b_ih : grads.b_hh)[d] = device_floats(dw);
            }
          Tensor dx = (l > 0 || input_grad) ? empty(layer.x.shape(), on_device) : Tensor();
          const Tensor dyc = ops::contiguous(dy);
          kernels::gru_cuda_backward(layer.shape, device_floats(layer.x), cuda_weights(layer, per), device_lengths(lens),
                                     layer.workspace.data_ptr(), device_floats(dyc), device_floats(dh_n) + l * D * N * H,
                                     device_floats(dx), h0_grad ? device_floats(dh0_all) + l * D * N * H : nullptr,
                                     grads, device);
          if (l > 0) dy = masks.empty() ? dx : ops::binary(BinaryOp::mul, dx, masks[l - 1]);
          else if (input_grad) result[0] = batch_first ? ops::contiguous(ops::permute(dx, {1, 0, 2})) : dx;
        }
        result[1] = dh0_all;
        return result;
      });
  return c.result_of(out, batch_first);
}
#endif

}  // namespace

bool gru_fused_applies(const Tensor& input, const std::vector<Tensor>& params, const GruOptions& /*options*/,
                       const Tensor& /*lengths*/, GruImplementation implementation) {
  return fused_refusal(input, params, implementation).empty();
}

std::string gru_fused_refusal(const Tensor& input, const std::vector<Tensor>& params, const Tensor& /*lengths*/,
                              GruImplementation implementation) {
  return fused_refusal(input, params, implementation);
}

GruResult gru_fused(const Tensor& input, const Tensor& h0, const std::vector<Tensor>& params,
                    const GruOptions& options, const Tensor& lengths, GruImplementation implementation) {
  if (implementation != GruImplementation::fused_onednn) implementation = GruImplementation::fused;
  if (std::string why = fused_refusal(input, params, implementation); !why.empty())
    throw NotImplementedError("gru (fused): does not apply: " + why);
  const CpuKernel* kernel = &cpu_kernel(implementation);
  {
    const int64_t L = options.num_layers, D = options.bidirectional ? 2 : 1, per = options.bias ? 4 : 2;
    if (input.dim() != 3 || L < 1 || static_cast<int64_t>(params.size()) != L * D * per || params[1].dim() != 2)
      throw ShapeError("gru (fused): expected input [T, N, I] and " + std::to_string(L * D * per) +
                       " parameters, got input " + shape_str(input.shape()) + " and " + std::to_string(params.size()));
  }
  const FusedCall c(input, h0, params, options);
#if GRAFT_WITH_CUDA
  if (input.device().is_cuda()) return gru_fused_cuda(c, input, h0, params, options, lengths);
#endif
  const int64_t L = c.L, D = c.D, per = c.per, H = c.H, T = c.T, N = c.N, I = c.I;
  const int64_t y_numel = c.y_numel, hn_numel = c.hn_numel;
  const std::vector<Tensor>& inputs = c.inputs;
  const bool graph = c.graph, drop = c.drop;
  const double p = c.p;
  // Validated by gru(): 1 <= length <= T.
  const std::vector<int64_t> lens = lengths.defined() ? lengths.to(DType::i64).to_vector<int64_t>() : std::vector<int64_t>{};
  // graft's kernel runs lengths itself, on the batch sorted longest first: everything between the
  // node's boundaries (x, h0, masks, y, h_n and their gradients) is in that order. oneDNN's runs
  // each direction alone on reversed sequences (the `runs` below).
  const bool native = !lens.empty() && kernel->lengths;
  const BatchOrder order = native ? BatchOrder(lens) : BatchOrder();
  const Tensor x0 = order.sorted(c.x0, 1), h0c = order.sorted(c.h0c, 1);
  Tensor packed = empty({y_numel + hn_numel});
  const Tensor h_n_all = ops::narrow(packed, 0, y_numel, hn_numel);
  // Where the kernels write h_n: straight into packed unless the batch is permuted.
  const Tensor h_n_kernel = order.permutes() ? empty({hn_numel}) : h_n_all;
  // The last layer writes its output straight into packed when the layout allows.
  const bool y_in_place = !options.batch_first && (lens.empty() || (native && !order.permutes()));
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
      masks.push_back(order.sorted(between_layers_mask(prev.shape(), p, options.generator), 1));
      layer.x = ops::binary(BinaryOp::mul, prev, masks.back());
    } else {
      layer.x = layers[l - 1].y;
    }
    const float* h0_l = h0c.defined() ? h0c.data_ptr<float>() + l * D * N * H : nullptr;
    if (!lens.empty() && !native) {
      const int64_t Il = layer.shape.I;
      layer.y = empty({T, N, D * H});
      for (int64_t d = 0; d < D; ++d) {
        DirectionRun run;
        run.shape = {T, N, Il, H, 1};
        run.x = layer.x;
        if (d == 1) {
          run.x = empty({T, N, Il});
          gather_steps(layer.x.data_ptr<float>(), Il, 0, run.x.data_ptr<float>(), Il, T, lens, true, false);
        }
        run.y = empty({T, N, H});
        run.h_n = empty({N, H});
        if (graph) {
          const auto bytes = static_cast<int64_t>(kernel->workspace_bytes(run.shape));
          run.workspace = empty({(bytes + 3) / 4});
        }
        kernel->forward(run.shape, run.x.data_ptr<float>(), h0_l ? h0_l + d * N * H : nullptr,
                        direction_weights(layer, per, d), run.y.data_ptr<float>(),
                        run.h_n.data_ptr<float>(), ptr_or_null(run.workspace), nullptr);
        // Output: un-reversed, zero past each length; h_n: the raw output at the last valid step.
        const float* raw = run.y.data_ptr<float>();
        float* y = layer.y.data_ptr<float>();
        float* h_n = h_n_all.data_ptr<float>() + (l * D + d) * N * H;
        for (int64_t t = 0; t < T; ++t)
          for (int64_t n = 0; n < N; ++n) {
            float* dst = y + (t * N + n) * D * H + d * H;
            if (t >= lens[n]) {
              std::fill(dst, dst + H, 0.0f);
              continue;
            }
            const float* src = raw + (source_step(d == 1, t, lens[n]) * N + n) * H;
            std::copy(src, src + H, dst);
          }
        for (int64_t n = 0; n < N; ++n) {
          const float* last = raw + ((lens[n] - 1) * N + n) * H;
          std::copy(last, last + H, h_n + n * H);
        }
        layer.runs.push_back(run);
      }
    } else {
      layer.y = (l == L - 1 && y_in_place) ? ops::narrow(packed, 0, 0, y_numel).view({T, N, D * H})
                                           : empty({T, N, D * H});
      if (graph) {
        const auto bytes = static_cast<int64_t>(kernel->workspace_bytes(layer.shape));
        layer.workspace = empty({(bytes + 3) / 4});
      }
      kernel->forward(layer.shape, layer.x.data_ptr<float>(), h0_l, weights_of(layer, per), layer.y.data_ptr<float>(),
                      h_n_kernel.data_ptr<float>() + l * D * N * H, ptr_or_null(layer.workspace), order.data());
    }
    if (!graph && l > 0) layers[l - 1] = Layer{};  // inference: free what no backward will read
  }
  if (!y_in_place) {
    const Tensor y = order.caller(layers.back().y, 1);
    if (options.batch_first)
      ops::copy_into(ops::narrow(packed, 0, 0, y_numel).view({N, T, D * H}), ops::permute(y, {1, 0, 2}));
    else
      ops::copy_into(ops::narrow(packed, 0, 0, y_numel).view({T, N, D * H}), y);
  }
  if (order.permutes()) ops::copy_into(h_n_all.view({L * D, N, H}), order.caller(h_n_kernel.view({L * D, N, H}), 1));

  const bool batch_first = options.batch_first;
  const bool input_grad = input.requires_grad(), h0_grad = h0.defined() && h0.requires_grad();
  std::vector<bool> param_grad;
  for (const Tensor& q : params) param_grad.push_back(q.requires_grad());
  Tensor out = record(
      "gru_fused", packed, inputs,
      [layers, masks, h0c, h_n_kernel, per, batch_first, input_grad, h0_grad, param_grad, y_numel, hn_numel, lens,
       kernel, order](const Tensor& grad) {
        const int64_t L = static_cast<int64_t>(layers.size());
        const kernels::GruLayerShape& s = layers.back().shape;
        const int64_t T = s.T, N = s.N, H = s.H, D = s.D;
        const Tensor g = ops::contiguous(grad);
        Tensor dy = ops::narrow(g, 0, 0, y_numel);
        dy = batch_first ? ops::contiguous(ops::permute(dy.view({N, T, D * H}), {1, 0, 2})) : dy.view({T, N, D * H});
        dy = order.sorted(dy, 1);
        const Tensor dh_n = ops::contiguous(order.sorted(ops::narrow(g, 0, y_numel, hn_numel).view({L * D, N, H}), 1));
        std::vector<Tensor> result(2 + param_grad.size());
        Tensor dh0_all = h0_grad ? empty({L * D, N, H}) : Tensor();
        for (int64_t l = L - 1; l >= 0; --l) {
          const Layer& layer = layers[l];
          // Gradient buffers of direction d's params, at slot `slot` of a GruLayerGrads.
          auto param_grads = [&](int64_t d, int slot, kernels::GruLayerGrads<float>& grads) {
            for (int64_t k = 0; k < per; ++k) {
              const size_t index = static_cast<size_t>(l * D * per + d * per + k);
              if (!param_grad[index]) continue;
              Tensor dw = empty(layer.w[d * per + k].shape());
              result[2 + index] = dw;
              float* ptr = dw.data_ptr<float>();
              (k == 0 ? grads.w_ih : k == 1 ? grads.w_hh : k == 2 ? grads.b_ih : grads.b_hh)[slot] = ptr;
            }
          };
          const float* h0_l = h0c.defined() ? h0c.data_ptr<float>() + l * D * N * H : nullptr;
          Tensor dx;
          if (!layer.runs.empty()) {
            const Tensor dyc = ops::contiguous(dy);
            if (l > 0 || input_grad) dx = zeros(layer.x.shape());
            const int64_t Il = layer.shape.I;
            const Tensor zero_hn = zeros({N, H});  // dh_n enters through dy at the last valid step
            for (int64_t d = 0; d < D; ++d) {
              const DirectionRun& run = layer.runs[d];
              Tensor dyr = empty({T, N, H});
              gather_steps(dyc.data_ptr<float>(), D * H, d * H, dyr.data_ptr<float>(), H, T, lens, d == 1, true);
              const float* dh = dh_n.data_ptr<float>() + (l * D + d) * N * H;
              float* dyr_ptr = dyr.data_ptr<float>();
              for (int64_t n = 0; n < N; ++n)
                for (int64_t j = 0; j < H; ++j) dyr_ptr[((lens[n] - 1) * N + n) * H + j] += dh[n * H + j];
              kernels::GruLayerGrads<float> grads;
              param_grads(d, 0, grads);
              Tensor dxr = dx.defined() ? empty(run.x.shape()) : Tensor();
              kernel->backward(run.shape, run.x.data_ptr<float>(), h0_l ? h0_l + d * N * H : nullptr,
                               direction_weights(layer, per, d), run.y.data_ptr<float>(),
                               run.h_n.data_ptr<float>(), run.workspace.data_ptr<float>(), dyr_ptr,
                               zero_hn.data_ptr<float>(), ptr_or_null(dxr),
                               h0_grad ? dh0_all.data_ptr<float>() + (l * D + d) * N * H : nullptr, grads,
                               nullptr);
              if (!dxr.defined()) continue;
              const float* g = dxr.data_ptr<float>();
              float* out = dx.data_ptr<float>();
              for (int64_t t = 0; t < T; ++t)
                for (int64_t n = 0; n < N; ++n) {
                  const float* src = g + (t * N + n) * Il;
                  float* dst = out + (source_step(d == 1, t, lens[n]) * N + n) * Il;
                  for (int64_t i = 0; i < Il; ++i) dst[i] += src[i];
                }
            }
          } else {
            kernels::GruLayerGrads<float> grads;
            for (int64_t d = 0; d < D; ++d) param_grads(d, static_cast<int>(d), grads);
            if (l > 0 || input_grad) dx = empty(layer.x.shape());
            kernel->backward(layer.shape, layer.x.data_ptr<float>(), h0_l, weights_of(layer, per),
                             layer.y.data_ptr<float>(), h_n_kernel.data_ptr<float>() + l * D * N * H,
                             layer.workspace.data_ptr<float>(), ops::contiguous(dy).data_ptr<float>(),
                             dh_n.data_ptr<float>() + l * D * N * H, ptr_or_null(dx),
                             h0_grad ? dh0_all.data_ptr<float>() + l * D * N * H : nullptr, grads, order.data());
          }
          if (l > 0) dy = masks.empty() ? dx : ops::binary(BinaryOp::mul, dx, masks[l - 1]);
          else if (input_grad) {
            dx = order.caller(dx, 1);
            result[0] = batch_first ? ops::contiguous(ops::permute(dx, {1, 0, 2})) : dx;
          }
        }
        result[1] = order.caller(dh0_all, 1);
        return result;
      });
  return c.result_of(out, batch_first);
}

}  // namespace graft
