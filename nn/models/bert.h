// BERT (Devlin et al. 2019) as Hugging Face transformers' BertModel computes it, with its module
// tree, so checkpoints such as all-MiniLM-L6-v2 load as they are:
//   embeddings.{word_embeddings, position_embeddings, token_type_embeddings, LayerNorm}
//   encoder.layer.N.*   a TransformerEncoderLayer (post-LN), N < num_hidden_layers
//   pooler.dense        optional: tanh(dense(hidden of the first token, [CLS]))
// and BertForSequenceClassification ("bert.*", "classifier.*") on top of it.
// N batch, S sequence length (<= max_position_embeddings), E hidden_size.
//
// Inputs are padded batches: input_ids [N, S] (i32/i64); attention_mask [N, S] (i32/i64/bool,
// nonzero = real token, 0 = padding; undefined = every token is real); token_type_ids [N, S]
// (undefined = all segment 0). Position ids are 0..S-1 whatever the mask, as in transformers, so
// right padding never changes a real token's output (left padding shifts the positions).
// A row with no real token attends to nothing and gets the attention output 0 (transformers
// would attend uniformly to its padding); neither is meaningful.
#pragma once

#include <filesystem>
#include <memory>

#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/models/bert_config.h"
#include "nn/transformer.h"

namespace graft::nn {

struct BertOptions {
  bool add_pooling_layer = true;   // the "pooler" child; without it the file's pooler.* is skipped
  Generator* generator = nullptr;  // the dropouts' seed source; the default generator when null
};

// word + token_type + position embeddings, then LayerNorm and dropout (HF's BertEmbeddings).
// Children: "word_embeddings", "position_embeddings", "token_type_embeddings", "LayerNorm"
// (member layer_norm), "dropout". Position ids are 0..S-1 (HF's position_ids buffer is not kept).
class BertEmbeddings : public Module {
 public:
  BertEmbeddings(const BertConfig& config, Generator* generator);
  Tensor forward(const Tensor& input_ids, const Tensor& token_type_ids);  // -> [N, S, E]
  std::shared_ptr<Embedding> word_embeddings;
  std::shared_ptr<Embedding> position_embeddings;
  std::shared_ptr<Embedding> token_type_embeddings;
  std::shared_ptr<LayerNorm> layer_norm;
  std::shared_ptr<Dropout> dropout;
};

// tanh(dense(hidden[:, 0])): [N, S, E] -> [N, E] (HF's BertPooler). Child "dense".
class BertPooler : public Module {
 public:
  explicit BertPooler(int64_t hidden_size);
  Tensor forward(const Tensor& hidden) override;
  std::shared_ptr<Linear> dense;
};

struct BertModelOutput {
  Tensor last_hidden_state;  // [N, S, E]
  Tensor pooler_output;      // [N, E]; undefined without the pooling layer
};

class BertModel : public Module {
 public:
  // Randomly initialised as transformers does (weights N(0, initializer_range), biases 0,
  // LayerNorm 1 and 0, the padding row of word_embeddings 0). Validates the config.
  explicit BertModel(BertConfig config, BertOptions options = {});

  // Reads dir/config.json and dir/model.safetensors (see load_pretrained_weights); IOError naming
  // the missing file. Returns the model in eval mode, as transformers does: call train() to fine-tune.
  static std::shared_ptr<BertModel> from_pretrained(const std::filesystem::path& dir, BertOptions options = {});

  // Copies a safetensors checkpoint's weights in; the file's names are HF's, with or without the
  // "bert." prefix of a BertFor* checkpoint (whose other tensors, the task heads, are skipped).
  // "embeddings.position_ids" is skipped, and so is "pooler.*" when this model has no pooler.
  // Every other tensor must be one of this model's, with its shape: ValueError naming a tensor the
  // config has no place for or the tensors the file lacks, ShapeError naming the tensor, the shape
  // the config gives it and the file's. On error nothing is loaded.
  void load_pretrained_weights(const std::filesystem::path& safetensors_file);

  BertModelOutput forward(const Tensor& input_ids, const Tensor& attention_mask,
                          const Tensor& token_type_ids = Tensor());
  Tensor forward(const Tensor& input_ids) override { return forward(input_ids, Tensor()).last_hidden_state; }

  // all-MiniLM-L6-v2's sentence embedding: l2_normalize(mean_pool(last_hidden_state, mask)) -> [N, E].
  Tensor sentence_embedding(const Tensor& input_ids, const Tensor& attention_mask,
                            const Tensor& token_type_ids = Tensor());

  void reset_parameters() override;
  std::string extra_repr() const override;  // "hidden_size=384, num_hidden_layers=6, num_attention_heads=12"
  const BertConfig& config() const { return config_; }

  std::shared_ptr<BertEmbeddings> embeddings;
  std::shared_ptr<TransformerEncoder> encoder;
  std::shared_ptr<BertPooler> pooler;  // null without add_pooling_layer

 private:
  BertConfig config_;
};

// What the classification head reads: the pooler output (tanh(dense([CLS])), as transformers'
// BertForSequenceClassification), or the mean of the real tokens' last hidden states.
enum class BertPooling { cls, mean };

const char* bert_pooling_name(BertPooling pooling);  // "cls", "mean"

struct BertClassifierOptions {
  int64_t num_labels = 2;
  BertPooling pooling = BertPooling::cls;
  std::optional<double> classifier_dropout;  // transformers' default: the config's hidden_dropout_prob
  Generator* generator = nullptr;
};

// Children: "bert" (without a pooler under mean pooling), "dropout", "classifier" (Linear(E, num_labels)).
class BertForSequenceClassification : public Module {
 public:
  BertForSequenceClassification(BertConfig config, BertClassifierOptions options);

  // The pretrained backbone from dir (as BertModel::from_pretrained) under a freshly initialised
  // head (N(0, initializer_range), bias 0); eval mode.
  static std::shared_ptr<BertForSequenceClassification> from_pretrained(const std::filesystem::path& dir,
                                                                        int64_t num_labels,
                                                                        BertPooling pooling = BertPooling::cls);

  // -> logits [N, num_labels]
  Tensor forward(const Tensor& input_ids, const Tensor& attention_mask, const Tensor& token_type_ids = Tensor());
  Tensor forward(const Tensor& input_ids) override { return forward(input_ids, Tensor()); }
  // What the head reads: the pooled features [N, hidden] before dropout (for other heads, or caching).
  Tensor features(const Tensor& input_ids, const Tensor& attention_mask, const Tensor& token_type_ids = Tensor());

  void reset_parameters() override;
  std::string extra_repr() const override;  // "num_labels=2, pooling=cls"
  const BertClassifierOptions& options() const { return options_; }

  std::shared_ptr<BertModel> bert;
  std::shared_ptr<Dropout> dropout;
  std::shared_ptr<Linear> classifier;

 private:
  BertClassifierOptions options_;
};

}  // namespace graft::nn
