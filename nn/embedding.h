// Embedding: a lookup table [num_embeddings, embedding_dim] indexed by integer ids, as
// torch.nn.Embedding (padding_idx's row starts at zero and receives no gradient).
#pragma once

#include "nn/module.h"

namespace graft::nn {

struct EmbeddingOptions {
  int64_t num_embeddings = 0;
  int64_t embedding_dim = 0;
  int64_t padding_idx = -1;  // < 0: none; negative values in torch's sense are normalised at construction
  DType dtype = DType::f32;
};

class Embedding : public Module {
 public:
  explicit Embedding(EmbeddingOptions options);
  Embedding(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx = -1)
      : Embedding(EmbeddingOptions{num_embeddings, embedding_dim, padding_idx}) {}
  // A table initialised from pretrained vectors [num, dim] (copied), frozen unless told otherwise,
  // as torch.nn.Embedding.from_pretrained.
  static std::shared_ptr<Embedding> from_pretrained(const Tensor& vectors, bool freeze = true, int64_t padding_idx = -1);

  Tensor forward(const Tensor& ids) override;  // ids i32/i64 of any shape -> ids.shape + [dim]
  void reset_parameters() override;          // N(0, 1), padding row zeroed
  std::string extra_repr() const override;
  const EmbeddingOptions& options() const { return options_; }

  Tensor weight;

 private:
  EmbeddingOptions options_;
};

}  // namespace graft::nn
