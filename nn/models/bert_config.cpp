#include "nn/models/bert_config.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tensor/error.h"

namespace graft::nn {

namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& field, const std::string& what) {
  throw FormatError(source + ": field '" + field + "' " + what);
}

const json* find(const json& config, const char* field, const std::string& source, bool required) {
  const auto it = config.find(field);
  if (it == config.end()) {
    if (required) fail(source, field, "is missing");
    return nullptr;
  }
  return &*it;
}

// A JSON integer (not a bool, not a fraction) into `out`; absent leaves the default.
void read_int(const json& config, const char* field, const std::string& source, bool required, int64_t& out) {
  const json* value = find(config, field, source, required);
  if (!value) return;
  if (!value->is_number_integer()) fail(source, field, "must be an integer, got " + value->dump());
  if (value->is_number_unsigned() && value->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    fail(source, field, "is out of range: " + value->dump());
  out = value->get<int64_t>();
}

void read_double(const json& config, const char* field, const std::string& source, double& out) {
  const json* value = find(config, field, source, false);
  if (!value) return;
  if (!value->is_number()) fail(source, field, "must be a number, got " + value->dump());
  out = value->get<double>();
}

std::optional<std::string> read_string(const json& config, const char* field, const std::string& source) {
  const json* value = find(config, field, source, false);
  if (!value) return std::nullopt;
  if (!value->is_string()) fail(source, field, "must be a string, got " + value->dump());
  return value->get<std::string>();
}

void check_architecture(const json& config, const std::string& source) {
  if (const auto model_type = read_string(config, "model_type", source); model_type && *model_type != "bert")
    fail(source, "model_type", "is '" + *model_type + "'; graft's BertModel loads model_type 'bert' only");
  const json* architectures = find(config, "architectures", source, false);
  if (!architectures || architectures->is_null()) return;
  if (!architectures->is_array())
    fail(source, "architectures", "must be a list of strings, got " + architectures->dump());
  for (const json& name : *architectures) {
    if (!name.is_string() || name.get<std::string>().rfind("Bert", 0) != 0)
      fail(source, "architectures", "names " + name.dump() + "; expected a BERT architecture (BertModel, BertFor...)");
  }
}

}  // namespace

BertConfig BertConfig::from_json(const json& config, const std::string& source) {
  if (!config.is_object()) throw FormatError(source + ": a config must be a JSON object, got " + config.dump());
  check_architecture(config, source);
  BertConfig c;
  read_int(config, "vocab_size", source, true, c.vocab_size);
  read_int(config, "hidden_size", source, true, c.hidden_size);
  read_int(config, "num_hidden_layers", source, true, c.num_hidden_layers);
  read_int(config, "num_attention_heads", source, true, c.num_attention_heads);
  read_int(config, "intermediate_size", source, true, c.intermediate_size);
  read_int(config, "max_position_embeddings", source, true, c.max_position_embeddings);
  read_int(config, "type_vocab_size", source, true, c.type_vocab_size);
  if (const auto act = read_string(config, "hidden_act", source)) {
    if (*act == "gelu")
      c.hidden_act = TransformerActivation::gelu;
    else if (*act == "gelu_new")
      c.hidden_act = TransformerActivation::gelu_tanh;
    else if (*act == "relu")
      c.hidden_act = TransformerActivation::relu;
    else
      fail(source, "hidden_act", "is '" + *act + "'; expected one of gelu, gelu_new, relu");
  }
  read_double(config, "hidden_dropout_prob", source, c.hidden_dropout_prob);
  read_double(config, "attention_probs_dropout_prob", source, c.attention_probs_dropout_prob);
  read_double(config, "layer_norm_eps", source, c.layer_norm_eps);
  read_double(config, "initializer_range", source, c.initializer_range);
  if (const json* pad = find(config, "pad_token_id", source, false); pad && pad->is_null()) {
    c.pad_token_id = std::nullopt;
  } else if (pad) {
    int64_t id = 0;
    read_int(config, "pad_token_id", source, false, id);
    c.pad_token_id = id;
  }
  if (const auto type = read_string(config, "position_embedding_type", source); type && *type != "absolute")
    fail(source, "position_embedding_type", "is '" + *type + "'; graft implements 'absolute' only");
  c.validate(source);
  return c;
}

BertConfig BertConfig::from_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw IOError("BertConfig: cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  json config;
  try {
    config = json::parse(text.str());
  } catch (const json::parse_error& e) {
    throw FormatError(path.string() + ": not valid JSON: " + e.what());
  }
  return from_json(config, path.string());
}

void BertConfig::validate(const std::string& source) const {
  auto at_least_one = [&](const char* field, int64_t value) {
    if (value < 1) fail(source, field, "must be >= 1, got " + std::to_string(value));
  };
  at_least_one("vocab_size", vocab_size);
  at_least_one("hidden_size", hidden_size);
  at_least_one("num_hidden_layers", num_hidden_layers);
  at_least_one("num_attention_heads", num_attention_heads);
  at_least_one("intermediate_size", intermediate_size);
  at_least_one("max_position_embeddings", max_position_embeddings);
  at_least_one("type_vocab_size", type_vocab_size);
  auto probability = [&](const char* field, double value) {
    if (!(value >= 0.0 && value < 1.0)) fail(source, field, "must be in [0, 1), got " + std::to_string(value));
  };
  probability("hidden_dropout_prob", hidden_dropout_prob);
  probability("attention_probs_dropout_prob", attention_probs_dropout_prob);
  if (!(layer_norm_eps > 0.0)) fail(source, "layer_norm_eps", "must be > 0, got " + std::to_string(layer_norm_eps));
  if (!(initializer_range >= 0.0))
    fail(source, "initializer_range", "must be >= 0, got " + std::to_string(initializer_range));
  if (pad_token_id && (*pad_token_id < 0 || *pad_token_id >= vocab_size)) {
    fail(source, "pad_token_id",
         "must be in [0, vocab_size = " + std::to_string(vocab_size) + "), got " + std::to_string(*pad_token_id));
  }
  if (hidden_size % num_attention_heads != 0) {
    throw ValueError(source + ": hidden_size " + std::to_string(hidden_size) +
                     " is not a multiple of num_attention_heads " + std::to_string(num_attention_heads));
  }
}

TransformerEncoderLayerOptions BertConfig::layer_options() const {
  TransformerEncoderLayerOptions options;
  options.d_model = hidden_size;
  options.num_heads = num_attention_heads;
  options.dim_feedforward = intermediate_size;
  options.dropout = hidden_dropout_prob;
  options.attention_dropout = attention_probs_dropout_prob;
  options.activation = hidden_act;
  options.layer_norm_eps = layer_norm_eps;
  return options;
}

}  // namespace graft::nn
