#include "nn/embedding.h"

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/init.h"
#include "tensor/ops.h"

namespace graft::nn {

Embedding::Embedding(EmbeddingOptions options) : Embedding(options, true) {}

Embedding::Embedding(EmbeddingOptions options, bool initialise) : Module("Embedding"), options_(options) {
  if (options.num_embeddings < 0 || options.embedding_dim < 0) {
    throw ValueError("Embedding: sizes must be >= 0, got num_embeddings=" + std::to_string(options.num_embeddings) +
                     " embedding_dim=" + std::to_string(options.embedding_dim));
  }
  if (options.padding_idx) {
    const int64_t index = *options.padding_idx, n = options.num_embeddings;
    if (index < -n || index >= n) {
      throw IndexError("Embedding: padding_idx " + std::to_string(index) + " is out of range for " + std::to_string(n) +
                       " embeddings (expected -" + std::to_string(n) + " <= padding_idx < " + std::to_string(n) + ")");
    }
    padding_row_ = index < 0 ? index + n : index;
  }
  weight = register_parameter("weight", empty({options.num_embeddings, options.embedding_dim}, options.dtype));
  if (initialise) reset_parameters();
}

std::shared_ptr<Embedding> Embedding::from_pretrained(const Tensor& vectors, bool freeze,
                                                      std::optional<int64_t> padding_idx) {
  if (!vectors.defined() || vectors.dim() != 2) {
    throw ShapeError("Embedding::from_pretrained: vectors must be 2-D [num_embeddings, embedding_dim], got " +
                     (vectors.defined() ? shape_str(vectors.shape()) : std::string("undefined")));
  }
  // No random init: the vectors replace it, and drawing would shift the default generator's stream.
  std::shared_ptr<Embedding> table(new Embedding(
      EmbeddingOptions{vectors.size(0), vectors.size(1), padding_idx,
                       is_floating(vectors.dtype()) ? vectors.dtype() : DType::f32},
      /*initialise=*/false));
  {
    NoGradGuard no_grad;
    ops::copy_into(table->weight, vectors);  // pretrained rows kept as given, the padding row included
  }
  table->weight.requires_grad_(!freeze);
  return table;
}

void Embedding::reset_parameters() {
  init::normal_(weight, 0.0, 1.0);
  if (padding_row_ >= 0) {
    NoGradGuard no_grad;
    ops::fill(weight.select(0, padding_row_), 0.0);
  }
}

Tensor Embedding::forward(const Tensor& ids) { return embedding(weight, ids, padding_row_); }

std::string Embedding::extra_repr() const {
  std::string out = std::to_string(options_.num_embeddings) + ", " + std::to_string(options_.embedding_dim);
  if (options_.padding_idx) out += ", padding_idx=" + std::to_string(*options_.padding_idx);
  return out;
}

}  // namespace graft::nn
