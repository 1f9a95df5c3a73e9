// TransformerEncoderLayer and TransformerEncoder, with Hugging Face BERT's module tree, so that a
// BERT checkpoint's "encoder.layer.N.*" loads into a TransformerEncoderLayer unchanged:
//
//   attention.self.{query,key,value}   MultiheadAttention (the heads, no output projection)
//   attention.output.dense             Linear(E, E), the attention output projection
//   attention.output.LayerNorm         LayerNorm(E)
//   intermediate.dense                 Linear(E, F), then the activation
//   output.dense                       Linear(F, E)
//   output.LayerNorm                   LayerNorm(E)
// N batch, S sequence length, E d_model, F dim_feedforward.
//
// Post-LN (BERT, the default), with dropout on each sublayer's output:
//   x = attention.output.LayerNorm(x + dropout(attention.output.dense(self(x))))
//   x = output.LayerNorm(x + dropout(output.dense(act(intermediate.dense(x)))))
// Pre-LN (norm_first): each LayerNorm moves to its sublayer's input and the residual stays raw:
//   x = x + dropout(attention.output.dense(self(attention.output.LayerNorm(x))))
//   x = x + dropout(output.dense(act(intermediate.dense(output.LayerNorm(x)))))
// (a pre-LN stack's output is not normalised; add a LayerNorm after it if the task needs one).
#pragma once

#include <memory>

#include "nn/container.h"
#include "nn/dropout.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/multihead_attention.h"

namespace graft::nn {

// BERT's hidden_act values: "gelu" (exact, erf), "gelu_new" (tanh approximation), "relu".
enum class TransformerActivation { gelu, gelu_tanh, relu };

const char* transformer_activation_name(TransformerActivation activation);  // "gelu", "gelu_new", "relu"

// Defaults are BERT's.
struct TransformerEncoderLayerOptions {
  int64_t d_model = 0;
  int64_t num_heads = 1;
  int64_t dim_feedforward = 0;
  double dropout = 0.1;            // hidden dropout, on each sublayer's output
  double attention_dropout = 0.1;  // on the attention probabilities
  TransformerActivation activation = TransformerActivation::gelu;
  double layer_norm_eps = 1e-12;
  bool norm_first = false;         // pre-LN
  Generator* generator = nullptr;  // dropout's seed source; the default generator when null
};

// The projection, dropout and LayerNorm that close a sublayer (HF's BertSelfOutput / BertOutput).
// Children: "dense", "LayerNorm" (member layer_norm), "dropout". TransformerEncoderLayer decides
// the order.
class SublayerOutput : public Module {
 public:
  SublayerOutput(int64_t in_features, const TransformerEncoderLayerOptions& options);
  std::shared_ptr<Linear> dense;
  std::shared_ptr<LayerNorm> layer_norm;
  std::shared_ptr<Dropout> dropout;
};

// HF's BertAttention: children "self" (MultiheadAttention) and "output" (SublayerOutput).
class AttentionSublayer : public Module {
 public:
  explicit AttentionSublayer(const TransformerEncoderLayerOptions& options);
  std::shared_ptr<MultiheadAttention> self;
  std::shared_ptr<SublayerOutput> output;
};

// HF's BertIntermediate: child "dense" (Linear(E, F)); forward = activation(dense(x)).
class FeedForwardIntermediate : public Module {
 public:
  explicit FeedForwardIntermediate(const TransformerEncoderLayerOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;  // "activation=gelu"
  std::shared_ptr<Linear> dense;

 private:
  TransformerActivation activation_;
};

class TransformerEncoderLayer : public Module {
 public:
  explicit TransformerEncoderLayer(TransformerEncoderLayerOptions options);

  // x [N, S, E]; key_padding_mask undefined or bool [N, S], true = padding. Returns [N, S, E].
  Tensor forward(const Tensor& x, const Tensor& key_padding_mask);
  Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }

  std::string extra_repr() const override;  // "norm_first=false"
  const TransformerEncoderLayerOptions& options() const { return options_; }

  std::shared_ptr<AttentionSublayer> attention;
  std::shared_ptr<FeedForwardIntermediate> intermediate;
  std::shared_ptr<SublayerOutput> output;

 private:
  TransformerEncoderLayerOptions options_;
};

// A stack of num_layers identical layers (HF's BertEncoder): child "layer", a ModuleList, so
// names read "layer.0.attention.self.query.weight".
class TransformerEncoder : public Module {
 public:
  TransformerEncoder(const TransformerEncoderLayerOptions& layer_options, int64_t num_layers);
  Tensor forward(const Tensor& x, const Tensor& key_padding_mask);
  Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }
  int64_t num_layers() const { return layer->size(); }
  std::shared_ptr<TransformerEncoderLayer> at(int64_t index) const { return layer->at<TransformerEncoderLayer>(index); }

  std::shared_ptr<ModuleList> layer;
};

}  // namespace graft::nn
