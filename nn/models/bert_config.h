// BertConfig: the fields of a Hugging Face BERT config.json that shape the model.
//
// Required (they size the tensors): vocab_size, hidden_size, num_hidden_layers,
// num_attention_heads, intermediate_size, max_position_embeddings, type_vocab_size. Optional, with
// transformers' BertConfig defaults: hidden_act ("gelu"; also "gelu_new", "relu"),
// hidden_dropout_prob (0.1), attention_probs_dropout_prob (0.1), layer_norm_eps (1e-12),
// pad_token_id (0; null for none), position_embedding_type ("absolute", the only one graft has),
// initializer_range (0.02). Other keys are ignored. A config that names an architecture or
// model_type must name a BERT one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "nn/transformer.h"

namespace graft::nn {

struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  TransformerActivation hidden_act = TransformerActivation::gelu;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  std::optional<int64_t> pad_token_id = 0;
  double initializer_range = 0.02;

  // FormatError naming the field and `source` for a missing, ill-typed or out-of-range field, or a
  // non-BERT model_type/architecture; ValueError when hidden_size is not a multiple of the heads.
  static BertConfig from_json(const nlohmann::json& json, const std::string& source = "<json>");
  // IOError when the file cannot be read, FormatError when it is not JSON; then as from_json.
  static BertConfig from_file(const std::filesystem::path& path);

  // The value checks of from_json, with its errors, for configs built in code; `source` names them.
  void validate(const std::string& source = "BertConfig") const;

  // The per-layer options of the encoder this config describes.
  TransformerEncoderLayerOptions layer_options() const;
};

}  // namespace graft::nn
