// MultiheadAttention: multi-head self-attention as Hugging Face's BertSelfAttention computes it.
//   x [N, S, E] -> q, k, v = x Wq^T + bq, ... -> [N, h, S, d] -> scaled_dot_product_attention
//   -> heads concatenated: context [N, S, E]
// N batch, S sequence length, E embed_dim, h num_heads, d = E / h head dim.
//
// The output projection is not part of this module: in BERT it sits with the residual add and
// LayerNorm ("attention.output.dense"), so TransformerEncoderLayer owns it and the state-dict names
// stay Hugging Face's. Children, in this order: "query", "key", "value" (Linear(E, E) each).
#pragma once

#include <memory>

#include "nn/linear.h"
#include "nn/module.h"
#include "tensor/random.h"

namespace graft::nn {

struct MultiheadAttentionOptions {
  int64_t embed_dim = 0;
  int64_t num_heads = 1;
  double dropout = 0.0;  // on the attention probabilities, while training
  bool bias = true;
  Generator* generator = nullptr;  // dropout's seed source; the default generator when null
};

class MultiheadAttention : public Module {
 public:
  explicit MultiheadAttention(MultiheadAttentionOptions options);
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout = 0.0)
      : MultiheadAttention(MultiheadAttentionOptions{embed_dim, num_heads, dropout}) {}

  // x [N, S, E] f32/f64; key_padding_mask undefined or bool [N, S], true = padding: no query
  // attends to that key (padded queries still get an output, as in torch). Returns [N, S, E].
  Tensor forward(const Tensor& x, const Tensor& key_padding_mask);
  Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }

  std::string extra_repr() const override;  // "embed_dim=384, num_heads=12, dropout=0.1"
  const MultiheadAttentionOptions& options() const { return options_; }
  int64_t head_dim() const { return options_.embed_dim / options_.num_heads; }

  std::shared_ptr<Linear> query;
  std::shared_ptr<Linear> key;
  std::shared_ptr<Linear> value;

 private:
  MultiheadAttentionOptions options_;
};

}  // namespace graft::nn
