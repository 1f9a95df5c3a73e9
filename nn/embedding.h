// Embedding: a lookup table [num_embeddings, embedding_dim] indexed by integer ids, as
// torch.nn.Embedding (padding_idx's row starts at zero and receives no gradient).
#pragma once

#include <optional>

#include "nn/module.h"

namespace graft::nn {

struct EmbeddingOptions {
  int64_t num_embeddings = 0;
  int64_t embedding_dim = 0;
  // None: no padding row. Negative values count from the end, as torch's (-1 is the last row).
  std::optional<int64_t> padding_idx;
  DType dtype = DType::f32;
};

class Embedding : public Module {
 public:
  explicit Embedding(EmbeddingOptions options);
  Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = std::nullopt)
      : Embedding(EmbeddingOptions{num_embeddings, embedding_dim, padding_idx}) {}
  // A table initialised from pretrained vectors [num, dim] (copied), frozen unless told otherwise,
  // as torch.nn.Embedding.from_pretrained.
  static std::shared_ptr<Embedding> from_pretrained(const Tensor& vectors, bool freeze = true,
                                                    std::optional<int64_t> padding_idx = std::nullopt);

  Tensor forward(const Tensor& ids) override;  // ids i32/i64 of any shape -> ids.shape + [dim]
  void reset_parameters() override;          // N(0, 1), padding row zeroed
  std::string extra_repr() const override;
  const EmbeddingOptions& options() const { return options_; }
  int64_t padding_row() const { return padding_row_; }  // the normalised padding_idx, or -1

  Tensor weight;

 private:
  Embedding(EmbeddingOptions options, bool initialise);
  EmbeddingOptions options_;
  int64_t padding_row_ = -1;
};

}  // namespace graft::nn
