#include "nn/transformer.h"

#include "autograd/ops.h"

namespace graft::nn {

namespace {

void check_options(const TransformerEncoderLayerOptions& options) {
  if (options.d_model < 1 || options.num_heads < 1 || options.dim_feedforward < 1) {
    throw ValueError("TransformerEncoderLayer: d_model, num_heads and dim_feedforward must be >= 1, got d_model=" +
                     std::to_string(options.d_model) + " num_heads=" + std::to_string(options.num_heads) +
                     " dim_feedforward=" + std::to_string(options.dim_feedforward));
  }
  if (!(options.layer_norm_eps > 0.0)) {
    throw ValueError("TransformerEncoderLayer: layer_norm_eps must be > 0, got " +
                     std::to_string(options.layer_norm_eps));
  }
}

}  // namespace

const char* transformer_activation_name(TransformerActivation activation) {
  switch (activation) {
    case TransformerActivation::gelu:
      return "gelu";
    case TransformerActivation::gelu_tanh:
      return "gelu_new";
    case TransformerActivation::relu:
      return "relu";
  }
  return "?";
}

SublayerOutput::SublayerOutput(int64_t in_features, const TransformerEncoderLayerOptions& options)
    : Module("SublayerOutput") {
  dense = register_module("dense", std::make_shared<Linear>(in_features, options.d_model));
  layer_norm = register_module("LayerNorm", std::make_shared<LayerNorm>(options.d_model, options.layer_norm_eps));
  dropout = register_module("dropout", std::make_shared<Dropout>(options.dropout, options.generator));
}

AttentionSublayer::AttentionSublayer(const TransformerEncoderLayerOptions& options) : Module("AttentionSublayer") {
  MultiheadAttentionOptions attention;
  attention.embed_dim = options.d_model;
  attention.num_heads = options.num_heads;
  attention.dropout = options.attention_dropout;
  attention.generator = options.generator;
  self = register_module("self", std::make_shared<MultiheadAttention>(attention));
  output = register_module("output", std::make_shared<SublayerOutput>(options.d_model, options));
}

FeedForwardIntermediate::FeedForwardIntermediate(const TransformerEncoderLayerOptions& options)
    : Module("FeedForwardIntermediate"), activation_(options.activation) {
  dense = register_module("dense", std::make_shared<Linear>(options.d_model, options.dim_feedforward));
}

Tensor FeedForwardIntermediate::forward(const Tensor& x) {
  const Tensor h = dense->forward(x);
  switch (activation_) {
    case TransformerActivation::gelu:
      return gelu(h, GeluApproximation::none);
    case TransformerActivation::gelu_tanh:
      return gelu(h, GeluApproximation::tanh);
    case TransformerActivation::relu:
      return relu(h);
  }
  throw ValueError("FeedForwardIntermediate: unknown activation");
}

std::string FeedForwardIntermediate::extra_repr() const {
  return std::string("activation=") + transformer_activation_name(activation_);
}

TransformerEncoderLayer::TransformerEncoderLayer(TransformerEncoderLayerOptions options)
    : Module("TransformerEncoderLayer"), options_(options) {
  check_options(options);  // before the children, so a bad size is this layer's error
  attention = register_module("attention", std::make_shared<AttentionSublayer>(options));
  intermediate = register_module("intermediate", std::make_shared<FeedForwardIntermediate>(options));
  output = register_module("output", std::make_shared<SublayerOutput>(options.dim_feedforward, options));
}

Tensor TransformerEncoderLayer::forward(const Tensor& x, const Tensor& key_padding_mask) {
  const int64_t E = options_.d_model;
  if (!x.defined() || x.dim() != 3 || x.size(2) != E) {
    throw ShapeError("TransformerEncoderLayer(d_model=" + std::to_string(E) + "): x must be [N, S, " +
                     std::to_string(E) + "], got " + (x.defined() ? shape_str(x.shape()) : std::string("undefined")));
  }
  const int64_t N = x.size(0), S = x.size(1);
  // Tokens as rows [N*S, E] outside attention, so each Linear is one GEMM forward and backward.
  const Tensor rows = x.reshape({N * S, E});
  auto attend = [&](const Tensor& input) {
    return attention->self->forward(input.view({N, S, E}), key_padding_mask).view({N * S, E});
  };
  SublayerOutput& attention_out = *attention->output;
  // A sublayer's output branch: dropout(dense(input)), added to the residual by the caller.
  auto branch = [](SublayerOutput& out, const Tensor& input) {
    return out.dropout->forward(out.dense->forward(input));
  };
  Tensor y;
  if (options_.norm_first) {
    const Tensor h = rows + branch(attention_out, attend(attention_out.layer_norm->forward(rows)));
    y = h + branch(*output, intermediate->forward(output->layer_norm->forward(h)));
  } else {
    const Tensor h = attention_out.layer_norm->forward(rows + branch(attention_out, attend(rows)));
    y = output->layer_norm->forward(h + branch(*output, intermediate->forward(h)));
  }
  return y.view({N, S, E});
}

std::string TransformerEncoderLayer::extra_repr() const {
  return std::string("norm_first=") + (options_.norm_first ? "true" : "false");
}

TransformerEncoder::TransformerEncoder(const TransformerEncoderLayerOptions& layer_options, int64_t num_layers)
    : Module("TransformerEncoder") {
  if (num_layers < 1)
    throw ValueError("TransformerEncoder: num_layers must be >= 1, got " + std::to_string(num_layers));
  layer = register_module("layer", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < num_layers; ++i) layer->push_back(std::make_shared<TransformerEncoderLayer>(layer_options));
}

Tensor TransformerEncoder::forward(const Tensor& x, const Tensor& key_padding_mask) {
  Tensor h = x;
  for (int64_t i = 0; i < layer->size(); ++i) h = at(i)->forward(h, key_padding_mask);
  return h;
}

}  // namespace graft::nn
