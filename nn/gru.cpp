#include "nn/gru.h"

#include <cmath>
#include <sstream>

#include "autograd/ops.h"
#include "nn/init.h"

namespace graft::nn {

namespace {

void check_sizes(const char* module, int64_t input_size, int64_t hidden_size) {
  if (input_size <= 0 || hidden_size <= 0)
    throw ValueError(std::string(module) + ": input_size and hidden_size must be > 0, got input_size=" +
                     std::to_string(input_size) + " hidden_size=" + std::to_string(hidden_size));
}

void uniform_all(const std::vector<Tensor>& params, int64_t hidden_size) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
  for (Tensor p : params) init::uniform_(p, -bound, bound);
}

}  // namespace

GRU::GRU(GRUOptions options) : Module("GRU"), options_(options) {
  check_sizes("GRU", options.input_size, options.hidden_size);
  if (options.num_layers <= 0) throw ValueError("GRU: num_layers must be > 0, got " + std::to_string(options.num_layers));
  if (!(options.dropout >= 0.0 && options.dropout <= 1.0))
    throw ValueError("GRU: dropout must be in [0, 1], got " + std::to_string(options.dropout));
  const int64_t H = options.hidden_size, D = options.bidirectional ? 2 : 1;
  for (int64_t k = 0; k < options.num_layers; ++k) {
    const int64_t in = k == 0 ? options.input_size : D * H;
    for (int64_t d = 0; d < D; ++d) {
      const std::string suffix = "_l" + std::to_string(k) + (d == 1 ? "_reverse" : "");
      flat_.push_back(register_parameter("weight_ih" + suffix, empty({3 * H, in}, options.dtype)));
      flat_.push_back(register_parameter("weight_hh" + suffix, empty({3 * H, H}, options.dtype)));
      if (options.bias) {
        flat_.push_back(register_parameter("bias_ih" + suffix, empty({3 * H}, options.dtype)));
        flat_.push_back(register_parameter("bias_hh" + suffix, empty({3 * H}, options.dtype)));
      }
    }
  }
  reset_parameters();
}

void GRU::reset_parameters() { uniform_all(flat_, options_.hidden_size); }

GruResult GRU::forward(const Tensor& input, const Tensor& h0, const Tensor& lengths) {
  GruOptions o;
  o.num_layers = options_.num_layers;
  o.bias = options_.bias;
  o.batch_first = options_.batch_first;
  o.dropout = options_.dropout;
  o.bidirectional = options_.bidirectional;
  o.enforce_sorted = options_.enforce_sorted;
  o.training = is_training();
  // Unbatched [T, I] as torch: run as a batch of one and drop the batch dim again.
  if (input.defined() && input.dim() == 2) {
    if (lengths.defined()) throw ValueError("GRU: lengths need a batched input [T, N, I], got " + shape_str(input.shape()));
    if (h0.defined() && h0.dim() != 2)
      throw ShapeError("GRU: for unbatched input " + shape_str(input.shape()) + ", h0 must be 2-D [L*D, H], got " +
                       shape_str(h0.shape()));
    const int64_t batch_dim = options_.batch_first ? 0 : 1;
    GruResult r = gru(unsqueeze(input, batch_dim), h0.defined() ? unsqueeze(h0, 1) : h0, flat_, o, Tensor(),
                      implementation_);
    return GruResult{squeeze(r.output, batch_dim), squeeze(r.h_n, 1)};
  }
  return gru(input, h0, flat_, o, lengths, implementation_);
}

Tensor GRU::forward(const Tensor& input) { return forward(input, Tensor(), Tensor()).output; }

std::string GRU::extra_repr() const {
  std::ostringstream s;
  s << options_.input_size << ", " << options_.hidden_size;
  if (options_.num_layers != 1) s << ", num_layers=" << options_.num_layers;
  if (!options_.bias) s << ", bias=false";
  if (options_.batch_first) s << ", batch_first=true";
  if (options_.dropout != 0.0) s << ", dropout=" << options_.dropout;
  if (options_.bidirectional) s << ", bidirectional=true";
  return s.str();
}

GRUCell::GRUCell(GRUCellOptions options) : Module("GRUCell"), options_(options) {
  check_sizes("GRUCell", options.input_size, options.hidden_size);
  const int64_t H = options.hidden_size;
  weight_ih = register_parameter("weight_ih", empty({3 * H, options.input_size}, options.dtype));
  weight_hh = register_parameter("weight_hh", empty({3 * H, H}, options.dtype));
  if (options.bias) {
    bias_ih = register_parameter("bias_ih", empty({3 * H}, options.dtype));
    bias_hh = register_parameter("bias_hh", empty({3 * H}, options.dtype));
  }
  reset_parameters();
}

void GRUCell::reset_parameters() {
  std::vector<Tensor> params{weight_ih, weight_hh};
  if (options_.bias) params.insert(params.end(), {bias_ih, bias_hh});
  uniform_all(params, options_.hidden_size);
}

Tensor GRUCell::forward(const Tensor& input, const Tensor& hx) {
  return gru_cell(input, hx, weight_ih, weight_hh, bias_ih, bias_hh);
}

std::string GRUCell::extra_repr() const {
  return std::to_string(options_.input_size) + ", " + std::to_string(options_.hidden_size) +
         (options_.bias ? "" : ", bias=false");
}

}  // namespace graft::nn
