// GruClassifier: text classification with a recurrent encoder.
//   input_ids [N, T] -> Embedding [N, T, E] -> GRU (batch_first) [N, T, D*H]
//   -> pooling over each sequence's valid steps [N, P] -> Dropout -> Linear head -> logits [N, C]
// N batch, T padded length, E embedding dim, H hidden size, D directions (1 or 2), L layers,
// C classes, P = D*H the pooled width.
//
// Sequences are right-padded; `lengths` [N] (1 <= length <= T) says how many steps are real, and
// nothing past a sequence's length changes its logits, whatever the pooling:
//   last      : the top layer's final hidden state (h_n at each sequence's last valid step; with
//               D = 2 the forward and reverse states concatenated, forward first, as PyTorch users do)
//   mean      : the mean of the GRU outputs over the valid steps
//   max       : the elementwise max over the valid steps
//   attention : a learned vector w [P] scores each step (s_t = w . o_t), softmax over the valid steps
//               only, and the outputs' weighted sum (child "attention", a bias-free Linear(P, 1))
//
// Children, in this order (state-dict keys are stable): "embedding", "gru", "attention" (attention
// pooling only), "dropout", "head". Pretrained word vectors go in with
// data::load_word_vectors(*model.embedding, vectors, vocab, policy, freeze) (train/data/word_vectors.h).
#pragma once

#include <memory>
#include <optional>

#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/gru.h"
#include "nn/linear.h"
#include "nn/module.h"

namespace graft::nn {

enum class GruPooling { last, mean, max, attention };

const char* gru_pooling_name(GruPooling pooling);  // "last", "mean", "max", "attention"

struct GruClassifierOptions {
  int64_t vocab_size = 0;
  int64_t embedding_dim = 0;
  std::optional<int64_t> padding_idx = 0;  // the [PAD] row: zeros, no gradient; std::nullopt for none
  int64_t hidden_size = 0;
  int64_t num_layers = 1;
  bool bidirectional = false;
  double gru_dropout = 0.0;  // between GRU layers (GRUOptions::dropout)
  GruPooling pooling = GruPooling::last;
  double dropout = 0.0;      // on the pooled features, before the head
  int64_t num_classes = 2;
};

class GruClassifier : public Module {
 public:
  explicit GruClassifier(GruClassifierOptions options);

  // input_ids [N, T] i32/i64; lengths [N] integers in [1, T], any order, or undefined (every sequence
  // is T long). Returns logits [N, num_classes].
  Tensor forward(const Tensor& input_ids, const Tensor& lengths);
  Tensor forward(const Tensor& input_ids) override { return forward(input_ids, Tensor()); }

  // The pooled features [N, D*H] before dropout and the head (for probing, or another head).
  Tensor features(const Tensor& input_ids, const Tensor& lengths = Tensor());

  // A right-padded attention mask [N, T] (1 = real token, as the collators produce) -> lengths [N]
  // i64, on the mask's device. A mask with a real token after padding, or a row without one -> ValueError.
  static Tensor lengths_from_mask(const Tensor& attention_mask);

  // Copies a [vocab_size, embedding_dim] matrix into the embedding in place and freezes it (or not).
  void load_embedding(const Tensor& matrix, bool freeze = false);

  std::string extra_repr() const override;  // "pooling=attention, num_classes=3"
  const GruClassifierOptions& options() const { return options_; }
  int64_t pooled_size() const { return (options_.bidirectional ? 2 : 1) * options_.hidden_size; }

  std::shared_ptr<Embedding> embedding;
  std::shared_ptr<GRU> gru;
  std::shared_ptr<Linear> attention;  // null unless pooling == attention
  std::shared_ptr<Dropout> dropout;
  std::shared_ptr<Linear> head;

 private:
  GruClassifierOptions options_;
};

}  // namespace graft::nn
