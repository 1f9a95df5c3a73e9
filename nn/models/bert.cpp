#include "nn/models/bert.h"

#include <algorithm>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/init.h"
#include "nn/pooling.h"
#include "nn/safetensors.h"
#include "tensor/ops.h"

namespace graft::nn {

namespace {

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

std::string describe(const Tensor& t) {
  return t.defined() ? shape_str(t.shape()) + " " + dtype_name(t.dtype()) : std::string("undefined");
}

// Undefined, or an integer (or bool, where allowed) tensor of input_ids' shape.
void check_per_token(const char* name, const Tensor& t, const Shape& expected, bool allow_bool) {
  if (!t.defined()) return;
  if (t.shape() != expected) {
    throw ShapeError(std::string("BertModel: ") + name + " must be " + shape_str(expected) + " like input_ids, got " +
                     describe(t));
  }
  if (!is_integral(t.dtype()) && !(allow_bool && t.dtype() == DType::boolean)) {
    throw DTypeError(std::string("BertModel: ") + name + " must be i32/i64" + (allow_bool ? "/bool" : "") + ", got " +
                     describe(t));
  }
}

// HF's _init_weights for every parameter below `module`, by the role its name gives it.
void bert_init(Module& module, double initializer_range) {
  for (auto& [name, tensor] : module.named_parameters()) {
    const size_t dot = name.rfind('.');
    const std::string leaf = dot == std::string::npos ? name : name.substr(dot + 1);
    const bool layer_norm = name.find("LayerNorm.") != std::string::npos;
    if (leaf == "bias")
      init::zeros_(tensor);
    else if (layer_norm)
      init::ones_(tensor);
    else
      init::normal_(tensor, 0.0, initializer_range);  // Linear and Embedding weights
  }
}

// The attention mask of a batch without padding: ones like input_ids, on its device.
Tensor all_real(const Tensor& input_ids) {
  return ones(input_ids.shape(), TensorOptions(DType::i64).with_device(input_ids.device()));
}

void require_file(const std::filesystem::path& dir, const char* file, const char* who) {
  if (!std::filesystem::is_regular_file(dir / file)) {
    throw IOError(std::string(who) + "::from_pretrained: no " + file + " in " + dir.string() +
                  " (all-MiniLM-L6-v2 is fetched by scripts/fetch-assets.sh)");
  }
}

}  // namespace

// ---- BertEmbeddings ----

BertEmbeddings::BertEmbeddings(const BertConfig& config, Generator* generator) : Module("BertEmbeddings") {
  const int64_t E = config.hidden_size;
  word_embeddings =
      register_module("word_embeddings", std::make_shared<Embedding>(config.vocab_size, E, config.pad_token_id));
  position_embeddings =
      register_module("position_embeddings", std::make_shared<Embedding>(config.max_position_embeddings, E));
  token_type_embeddings =
      register_module("token_type_embeddings", std::make_shared<Embedding>(config.type_vocab_size, E));
  layer_norm = register_module("LayerNorm", std::make_shared<LayerNorm>(E, config.layer_norm_eps));
  dropout = register_module("dropout", std::make_shared<Dropout>(config.hidden_dropout_prob, generator));
}

Tensor BertEmbeddings::forward(const Tensor& input_ids, const Tensor& token_type_ids) {
  const int64_t S = input_ids.size(1);
  // The implied ids live where input_ids do (an index on another device than the table is an error).
  const TensorOptions ids_options = TensorOptions(DType::i64).with_device(input_ids.device());
  const Tensor types = token_type_ids.defined() ? token_type_ids : zeros(input_ids.shape(), ids_options);
  // transformers' order of the sums: (word + token_type) + position.
  const Tensor x = word_embeddings->forward(input_ids) + token_type_embeddings->forward(types) +
                   position_embeddings->forward(arange(S, ids_options));  // [S, E] broadcasts over the batch
  return dropout->forward(layer_norm->forward(x));
}

// ---- BertPooler ----

BertPooler::BertPooler(int64_t hidden_size) : Module("BertPooler") {
  dense = register_module("dense", std::make_shared<Linear>(hidden_size, hidden_size));
}

Tensor BertPooler::forward(const Tensor& hidden) { return tanh(dense->forward(hidden.select(1, 0))); }

// ---- BertModel ----

BertModel::BertModel(BertConfig config, BertOptions options) : Module("BertModel"), config_(config) {
  config.validate();
  embeddings = register_module("embeddings", std::make_shared<BertEmbeddings>(config, options.generator));
  TransformerEncoderLayerOptions layer = config.layer_options();
  layer.generator = options.generator;
  encoder = register_module("encoder", std::make_shared<TransformerEncoder>(layer, config.num_hidden_layers));
  if (options.add_pooling_layer) pooler = register_module("pooler", std::make_shared<BertPooler>(config.hidden_size));
  reset_parameters();
}

void BertModel::reset_parameters() {
  bert_init(*this, config_.initializer_range);
  const int64_t padding_row = embeddings->word_embeddings->padding_row();
  if (padding_row >= 0) {
    NoGradGuard no_grad;
    ops::fill(embeddings->word_embeddings->weight.select(0, padding_row), 0.0);
  }
}

std::shared_ptr<BertModel> BertModel::from_pretrained(const std::filesystem::path& dir, BertOptions options) {
  for (const char* file : {"config.json", "model.safetensors"}) require_file(dir, file, "BertModel");
  auto model = std::make_shared<BertModel>(BertConfig::from_file(dir / "config.json"), options);
  model->load_pretrained_weights(dir / "model.safetensors");
  model->eval();
  return model;
}

void BertModel::load_pretrained_weights(const std::filesystem::path& safetensors_file) {
  const SafetensorsFile file = SafetensorsFile::open(safetensors_file);
  const std::string where = "BertModel: loading " + file.label() + ": ";
  const std::string prefix = "bert.";
  const std::vector<std::string> names = file.names();
  const bool prefixed =
      std::any_of(names.begin(), names.end(), [&](const std::string& n) { return starts_with(n, prefix); });
  const auto wanted = state_dict();
  std::map<std::string, Tensor> state;
  for (const std::string& stored : names) {
    if (prefixed && !starts_with(stored, prefix)) continue;  // a task head beside the backbone
    const std::string name = prefixed ? stored.substr(prefix.size()) : stored;
    if (name == "embeddings.position_ids" || (!pooler && starts_with(name, "pooler."))) continue;
    const auto it = wanted.find(name);
    if (it == wanted.end()) {
      throw ValueError(where + "tensor '" + stored + "' has no place in this BertModel (" + extra_repr() +
                       (pooler ? "" : ", no pooler") + ")");
    }
    const TensorInfo info = file.info(stored);
    if (info.shape != it->second.shape()) {
      throw ShapeError(where + "tensor '" + stored + "' is " + shape_str(info.shape) + " in the file but " +
                       shape_str(it->second.shape()) + " by the config");
    }
    if (!is_floating(info.dtype)) {
      throw FormatError(where + "tensor '" + stored + "' is " + dtype_name(info.dtype) + "; expected a floating dtype");
    }
    state[name] = file.load(stored, it->second.dtype());
  }
  std::string missing;
  for (const auto& [name, tensor] : wanted) {
    if (!state.count(name)) missing += (missing.empty() ? "" : ", ") + (prefixed ? prefix : "") + name;
  }
  if (!missing.empty()) throw ValueError(where + "the file lacks " + missing);
  load_state_dict(state);
}

BertModelOutput BertModel::forward(const Tensor& input_ids, const Tensor& attention_mask,
                                   const Tensor& token_type_ids) {
  if (!input_ids.defined() || input_ids.dim() != 2 || input_ids.size(1) < 1 || !is_integral(input_ids.dtype())) {
    throw ShapeError("BertModel: input_ids must be an integer tensor [N, S] with S >= 1, got " + describe(input_ids));
  }
  const int64_t S = input_ids.size(1);
  if (S > config_.max_position_embeddings) {
    throw ValueError("BertModel: sequence length " + std::to_string(S) + " exceeds max_position_embeddings " +
                     std::to_string(config_.max_position_embeddings) + "; truncate the input");
  }
  check_per_token("attention_mask", attention_mask, input_ids.shape(), /*allow_bool=*/true);
  check_per_token("token_type_ids", token_type_ids, input_ids.shape(), /*allow_bool=*/false);
  const Tensor padding = attention_mask.defined() ? eq(attention_mask.detach().to(DType::i64), 0.0) : Tensor();

  BertModelOutput out;
  out.last_hidden_state = encoder->forward(embeddings->forward(input_ids, token_type_ids), padding);
  if (pooler) out.pooler_output = pooler->forward(out.last_hidden_state);
  return out;
}

Tensor BertModel::sentence_embedding(const Tensor& input_ids, const Tensor& attention_mask,
                                     const Tensor& token_type_ids) {
  const Tensor hidden = forward(input_ids, attention_mask, token_type_ids).last_hidden_state;
  return l2_normalize(mean_pool(hidden, attention_mask.defined() ? attention_mask : all_real(input_ids)));
}

std::string BertModel::extra_repr() const {
  std::ostringstream out;
  out << "hidden_size=" << config_.hidden_size << ", num_hidden_layers=" << config_.num_hidden_layers
      << ", num_attention_heads=" << config_.num_attention_heads;
  return out.str();
}

// ---- BertForSequenceClassification ----

const char* bert_pooling_name(BertPooling pooling) { return pooling == BertPooling::cls ? "cls" : "mean"; }

BertForSequenceClassification::BertForSequenceClassification(BertConfig config, BertClassifierOptions options)
    : Module("BertForSequenceClassification"), options_(options) {
  if (options.num_labels < 1) {
    throw ValueError("BertForSequenceClassification: num_labels must be >= 1, got " +
                     std::to_string(options.num_labels));
  }
  const double p = options.classifier_dropout.value_or(config.hidden_dropout_prob);
  BertOptions backbone;
  backbone.add_pooling_layer = options.pooling == BertPooling::cls;  // an unused pooler would get no gradient
  backbone.generator = options.generator;
  bert = register_module("bert", std::make_shared<BertModel>(config, backbone));
  dropout = register_module("dropout", std::make_shared<Dropout>(p, options.generator));
  classifier = register_module("classifier", std::make_shared<Linear>(config.hidden_size, options.num_labels));
  bert_init(*classifier, config.initializer_range);
}

std::shared_ptr<BertForSequenceClassification> BertForSequenceClassification::from_pretrained(
    const std::filesystem::path& dir, int64_t num_labels, BertPooling pooling) {
  BertClassifierOptions options;
  options.num_labels = num_labels;
  options.pooling = pooling;
  for (const char* file : {"config.json", "model.safetensors"})
    require_file(dir, file, "BertForSequenceClassification");
  auto model = std::make_shared<BertForSequenceClassification>(BertConfig::from_file(dir / "config.json"), options);
  model->bert->load_pretrained_weights(dir / "model.safetensors");
  model->eval();
  return model;
}

Tensor BertForSequenceClassification::features(const Tensor& input_ids, const Tensor& attention_mask,
                                               const Tensor& token_type_ids) {
  const BertModelOutput out = bert->forward(input_ids, attention_mask, token_type_ids);
  return options_.pooling == BertPooling::cls
             ? out.pooler_output
             : mean_pool(out.last_hidden_state, attention_mask.defined() ? attention_mask : all_real(input_ids));
}

Tensor BertForSequenceClassification::forward(const Tensor& input_ids, const Tensor& attention_mask,
                                              const Tensor& token_type_ids) {
  return classifier->forward(dropout->forward(features(input_ids, attention_mask, token_type_ids)));
}

void BertForSequenceClassification::reset_parameters() {
  bert->reset_parameters();
  bert_init(*classifier, bert->config().initializer_range);
}

std::string BertForSequenceClassification::extra_repr() const {
  return "num_labels=" + std::to_string(options_.num_labels) + ", pooling=" + bert_pooling_name(options_.pooling);
}

}  // namespace graft::nn
