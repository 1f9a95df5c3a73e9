#include "train/cli/finetune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <ostream>
#include <set>
#include <fstream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/atomic_file.h"
#include "nn/container.h"
#include "nn/lora.h"
#include "nn/models/bert.h"
#include "nn/models/gru_classifier.h"
#include "nn/pooling.h"
#include "nn/safetensors.h"
#include "nn/weights.h"
#include "tensor/error.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "train/cli/forecast.h"
#include "train/cli/multitask.h"
#include "train/cli/optimization.h"
#include "train/cli/plot.h"
#include "train/data/augment.h"
#include "train/data/collate.h"
#include "train/data/reader.h"
#include "train/data/split.h"
#include "train/data/word_vectors.h"
#include "train/data/wordpiece.h"
#include "train/optim/scheduler.h"
#include "train/distributed/process_group.h"
#include "train/trainer.h"

namespace graft::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ---- data ----

struct Splits {
  data::TextExamples train, validation, test;
  data::LabelVocab labels;
};

Splits load_splits(const DataConfig& config, std::ostream& log) {
  data::ColumnMap columns{config.text_column, config.text_pair_column, config.label_column};
  const data::Table table = data::read_table(config.path);
  data::TextExamples all = data::to_examples(table, columns);
  Splits s;
  if (!config.labels.empty()) {
    // Rows with other labels (Rotten Tomatoes' plot summaries) are left out, and counted.
    s.labels = data::LabelVocab(config.labels);
    const size_t before = all.size();
    std::erase_if(all, [&](const data::TextExample& e) { return !s.labels.contains(e.label); });
    if (all.size() < before)
      log << "data: " << before - all.size() << " of " << before << " rows of " << config.path
          << " have a label outside data.labels and are left out\n";
  } else {
    s.labels = data::LabelVocab::from_examples(all);
  }
  if (s.labels.size() < 2)
    throw ValueError("data: " + config.path + " has " + std::to_string(s.labels.size()) +
                     " label(s) to classify; at least 2 are needed (data.labels, data.label_column)");
  std::vector<int64_t> ids;
  for (const auto& e : all) ids.push_back(s.labels.id(e.label));
  std::vector<int64_t> count(static_cast<size_t>(s.labels.size()), 0);
  for (int64_t y : ids) ++count[static_cast<size_t>(y)];
  for (int64_t c = 0; c < s.labels.size(); ++c)
    if (count[static_cast<size_t>(c)] == 0)
      throw ValueError("data: label \"" + s.labels.label(c) + "\" (data.labels) has no example in " + config.path +
                       " (column " + config.label_column + ")");
  auto pick = [&](const std::vector<int64_t>& idx) {
    data::TextExamples out;
    for (int64_t i : idx) out.push_back(all[static_cast<size_t>(i)]);
    return out;
  };
  if (config.max_examples > 0 && config.max_examples < static_cast<int64_t>(all.size())) {
    const double keep = static_cast<double>(config.max_examples) / static_cast<double>(all.size());
    const auto parts = config.stratified ? data::stratified_split_indices(ids, {keep, 1 - keep}, config.seed)
                                         : data::split_indices(static_cast<int64_t>(all.size()), {keep, 1 - keep}, config.seed);
    all = pick(parts[0]);
    ids.clear();
    for (const auto& e : all) ids.push_back(s.labels.id(e.label));
  }
  const double total = config.split[0] + config.split[1] + config.split[2];
  const std::vector<double> ratios{config.split[0] / total, config.split[1] / total, config.split[2] / total};
  const auto parts = config.stratified ? data::stratified_split_indices(ids, ratios, config.seed)
                                       : data::split_indices(static_cast<int64_t>(all.size()), ratios, config.seed);
  s.train = pick(parts[0]);
  s.validation = pick(parts[1]);
  s.test = pick(parts[2]);
  const char* names[3] = {"train", "validation", "test"};
  for (int k = 0; k < 3; ++k)
    if (parts[static_cast<size_t>(k)].empty())
      throw ValueError(std::string("data: the ") + names[k] + " split of " + config.path + " is empty (" +
                       std::to_string(all.size()) + " examples, data.split)");
  return s;
}

// DANN's target domain: its texts, split as the source's (data.split, data.seed). Labels, when the
// file has them, are only evaluated; rows whose label the primary task does not know are left out.
struct TargetDomain {
  data::TextExamples train, validation, test;
  bool labelled = false;
};

TargetDomain load_target_domain(const RunConfig& config, const data::LabelVocab& labels, std::ostream& log) {
  const DomainAdaptationConfig& da = config.domain_adaptation;
  const data::Table table = data::read_table(da.path);
  data::TextExamples all = data::to_examples(table, {da.text_column, "", da.label_column});
  TargetDomain t;
  t.labelled = !da.label_column.empty();
  if (t.labelled) {
    const size_t before = all.size();
    std::erase_if(all, [&](const data::TextExample& e) { return !labels.contains(e.label); });
    if (all.size() < before)
      log << "domain_adaptation: " << before - all.size() << " of " << before << " rows of " << da.path
          << " have a label the primary task does not have and are left out\n";
  }
  auto n = static_cast<int64_t>(all.size());
  std::vector<int64_t> keep(static_cast<size_t>(n));
  std::iota(keep.begin(), keep.end(), int64_t{0});
  if (da.max_examples > 0 && da.max_examples < n) {
    const double fraction = static_cast<double>(da.max_examples) / static_cast<double>(n);
    keep = data::split_indices(n, {fraction, 1 - fraction}, config.data.seed)[0];
    n = static_cast<int64_t>(keep.size());
  }
  const std::vector<double>& r = config.data.split;
  const double total = r[0] + r[1] + r[2];
  const auto parts = data::split_indices(n, {r[0] / total, r[1] / total, r[2] / total}, config.data.seed);
  data::TextExamples* out[3] = {&t.train, &t.validation, &t.test};
  const char* names[3] = {"train", "validation", "test"};
  for (size_t k = 0; k < 3; ++k) {
    if (parts[k].empty())
      throw ValueError(std::string("domain_adaptation: the ") + names[k] + " part of " + da.path + " is empty (" +
                       std::to_string(n) + " texts, data.split)");
    for (int64_t i : parts[k]) out[k]->push_back(all[static_cast<size_t>(keep[static_cast<size_t>(i)])]);
  }
  log << "domain_adaptation: target " << da.path << ": " << t.train.size() << " train (unlabelled), "
      << t.validation.size() << " validation, " << t.test.size() << " test"
      << (t.labelled ? " (labels evaluated only)" : "") << "\n";
  return t;
}

std::vector<std::vector<int64_t>> encode(const data::BertTokenizer& tokenizer, const data::TextExamples& examples,
                                         int64_t max_length, bool special_tokens) {
  data::EncodeOptions options;
  options.truncation = data::Truncation{max_length};
  options.add_special_tokens = special_tokens;
  std::vector<std::vector<int64_t>> out;
  out.reserve(examples.size());
  for (const auto& e : examples) {
    data::Encoding enc = e.text_pair.empty() ? tokenizer.encode(e.text, options)
                                             : tokenizer.encode(e.text, e.text_pair, options);
    if (enc.ids.empty()) enc.ids.push_back(tokenizer.unk_id());  // an empty text still needs one step (GRU)
    out.push_back(std::move(enc.ids));
  }
  return out;
}

// ---- models ----

// The model and how it is cut into layer groups: depth 0 is the head, larger depths lie deeper.
struct Model {
  std::shared_ptr<nn::Module> module;                       // what trains and is saved: the root
  std::shared_ptr<nn::BertForSequenceClassification> bert;  // one of these two
  std::shared_ptr<nn::GruClassifier> gru;
  std::shared_ptr<MultiHeadModel> multi;                    // the root when there are other heads
  int64_t max_depth = 0;
  std::set<const TensorImpl*> trainable;  // what the optimizer holds (prepare_model fills it)
  std::set<const TensorImpl*> pinned;     // frozen by the config whatever the strategy (freeze_embeddings)

  // What the primary head reads: pooled features [B, P] (P = pooled_size()).
  Tensor features(const data::Batch& b) const {
    if (bert) return bert->features(b.at("input_ids"), b.at("attention_mask"));
    return gru->features(b.at("input_ids"), b.at("lengths"));
  }
  Tensor primary_head(const Tensor& features) const {
    if (bert) return bert->classifier->forward(bert->dropout->forward(features));
    return gru->head->forward(gru->dropout->forward(features));
  }
  int64_t pooled_size() const { return bert ? bert->bert->config().hidden_size : gru->pooled_size(); }

  int64_t depth(const std::string& name) const {
    auto starts = [&](const char* prefix) { return name.rfind(prefix, 0) == 0; };
    if (bert) {
      const int64_t L = bert->bert->config().num_hidden_layers;
      if (starts("classifier.")) return 0;
      if (starts("bert.pooler.")) return 1;
      if (starts("bert.embeddings.")) return L + 1;
      if (starts("bert.encoder.layer.")) return L - std::stoll(name.substr(std::string("bert.encoder.layer.").size()));
      return 0;
    }
    const int64_t layers = gru->gru->options().num_layers;
    if (starts("embedding.")) return layers + 1;
    if (starts("gru.")) {
      const auto at = name.find("_l");  // weight_ih_l{k}[_reverse]
      return layers - std::stoll(name.substr(at + 2));
    }
    return 0;  // head, attention pooling
  }
};

// The other heads of a run: (name, classes) of every task after the primary, and DANN's.
struct ExtraHeads {
  std::vector<std::pair<std::string, int64_t>> tasks;
  bool domain_classifier = false;
  bool any() const { return !tasks.empty() || domain_classifier; }
};

// Pretrained word vectors from a file into the GRU's embedding rows of the WordPiece tokens that
// are words in the file; the rest get the OOV fill.
void load_word_vector_file(const RunConfig& config, const data::BertTokenizer& tokenizer, nn::Embedding& embedding,
                           std::ostream& log) {
  const data::WordVectors vectors = data::read_word_vectors(config.model.word_vectors);
  std::vector<std::string> vocab;
  for (int64_t i = 0; i < tokenizer.vocab_size(); ++i) vocab.push_back(tokenizer.id_to_token(i));
  data::OovPolicy policy;
  policy.fill = config.model.word_vectors_oov == "zeros"  ? data::OovFill::zeros
                : config.model.word_vectors_oov == "mean" ? data::OovFill::mean
                                                          : data::OovFill::random_normal;
  policy.padding_idx = tokenizer.pad_id();
  const data::OovReport report =
      data::load_word_vectors(embedding, vectors, vocab, policy, /*freeze=*/false, config.train.seed);
  log << "word vectors: " << config.model.word_vectors << " (" << vectors.size() << " words, dim " << vectors.dim()
      << "): " << report.str() << " of the " << vocab.size() << " WordPiece tokens\n";
}

// load_pretrained false: the architecture alone (a finished run's own weights are loaded next).
Model build_model(const RunConfig& config, const data::BertTokenizer& tokenizer, int64_t num_labels,
                  const ExtraHeads& extra, bool load_pretrained, std::ostream& log) {
  const fs::path dir = config.model.path;
  Model m;
  nn::BertConfig bert_config = nn::BertConfig::from_file(dir / "config.json");
  if (config.model.type == "bert") {
    if (config.model.dropout) {
      bert_config.hidden_dropout_prob = *config.model.dropout;
      bert_config.attention_probs_dropout_prob = *config.model.dropout;
    }
    nn::BertClassifierOptions options;
    options.num_labels = num_labels;
    options.pooling = config.model.pooling == "cls" ? nn::BertPooling::cls : nn::BertPooling::mean;
    m.bert = std::make_shared<nn::BertForSequenceClassification>(bert_config, options);
    if (config.model.pretrained && load_pretrained) m.bert->bert->load_pretrained_weights(dir / "model.safetensors");
    log << "model: BERT " << bert_config.num_hidden_layers << " layers, hidden " << bert_config.hidden_size << ", "
        << (config.model.pretrained ? "pretrained from " + dir.string() : std::string("randomly initialised"))
        << ", " << config.model.pooling << " pooling, " << num_labels << " labels\n";
    m.module = m.bert;
    m.max_depth = bert_config.num_hidden_layers + 1;
  } else {
    nn::GruClassifierOptions options;
    options.vocab_size = tokenizer.vocab_size();
    options.padding_idx = tokenizer.pad_id();
    if (config.model.gru_embeddings == "file") {
      // The table's width is the file's: read its header (or first row) now.
      options.embedding_dim = data::read_word_vectors(config.model.word_vectors, data::WordVectorFormat::automatic, 1).dim();
    } else {
      options.embedding_dim =
          config.model.gru_embeddings == "bert" ? bert_config.hidden_size : config.model.gru_embedding_dim;
    }
    options.hidden_size = config.model.gru_hidden;
    options.num_layers = config.model.gru_layers;
    options.bidirectional = config.model.gru_bidirectional;
    options.pooling = config.model.pooling == "last"   ? nn::GruPooling::last
                      : config.model.pooling == "mean" ? nn::GruPooling::mean
                      : config.model.pooling == "max"  ? nn::GruPooling::max
                                                       : nn::GruPooling::attention;
    options.dropout = config.model.dropout.value_or(0.1);
    options.gru_dropout = config.model.gru_layers > 1 ? config.model.dropout.value_or(0.1) : 0.0;
    options.num_classes = num_labels;
    m.gru = std::make_shared<nn::GruClassifier>(options);
    if (config.model.gru_embeddings == "bert" && load_pretrained) {
      // The BERT folder's word embeddings as pretrained word vectors, one per WordPiece token.
      const nn::SafetensorsFile file = nn::SafetensorsFile::open(dir / "model.safetensors");
      const std::string name = file.contains("embeddings.word_embeddings.weight") ? "embeddings.word_embeddings.weight"
                                                                                   : "bert.embeddings.word_embeddings.weight";
      NoGradGuard no_grad;
      m.gru->embedding->weight.copy_(file.load(name, DType::f32));
    }
    if (config.model.gru_embeddings == "file" && load_pretrained)
      load_word_vector_file(config, tokenizer, *m.gru->embedding, log);
    log << "model: GRU classifier, " << options.num_layers << " layer(s) of " << options.hidden_size
        << (options.bidirectional ? ", bidirectional" : "") << ", " << config.model.pooling << " pooling, embeddings "
        << (config.model.gru_embeddings == "bert"   ? "from " + (dir / "model.safetensors").string()
            : config.model.gru_embeddings == "file" ? "from " + config.model.word_vectors
                                                    : std::string("random"))
        << (config.model.freeze_embeddings ? " (frozen)" : "") << "\n";
    m.module = m.gru;
    m.max_depth = options.num_layers + 1;
  }
  if (extra.any()) {
    m.multi = std::make_shared<MultiHeadModel>(*m.module);
    const double dropout = config.model.dropout.value_or(0.1);
    for (const auto& [name, classes] : extra.tasks) {
      m.multi->add_task_head(name, m.pooled_size(), classes, dropout);
      log << "task head " << name << ": " << classes << " labels\n";
    }
    if (extra.domain_classifier) {
      m.multi->add_domain_classifier(m.pooled_size());
      log << "domain classifier behind gradient reversal (DANN)\n";
    }
    m.module = m.multi;
  }
  return m;
}

// The model with its strategy applied: LoRA adapters attached, and requires_grad false on what
// does not train now (gradual unfreezing: what does not train yet). `trainable` is what the
// optimizer holds.
Model prepare_model(const RunConfig& config, const data::BertTokenizer& tokenizer, int64_t num_labels,
                    const ExtraHeads& extra, bool load_pretrained, std::ostream& log) {
  Model model = build_model(config, tokenizer, num_labels, extra, load_pretrained, log);
  const std::string& strategy = config.strategy.type;
  if (config.lora.enabled) {
    nn::LoraOptions lora;
    lora.rank = config.lora.rank;
    lora.alpha = config.lora.alpha;
    lora.dropout = config.lora.dropout;
    lora.targets = config.lora.targets;
    const auto adapted = nn::apply_lora(*model.bert->bert, lora);  // freezes the rest of the backbone
    log << "lora: rank " << lora.rank << " adapters on " << adapted.size() << " Linear layers\n";
  } else if (strategy == "feature_extraction" || strategy == "gradual_unfreezing") {
    for (auto& [name, p] : model.module->named_parameters())
      if (model.depth(name) > 0) p.requires_grad_(false);
  } else if (strategy == "last_n") {
    for (auto& [name, p] : model.module->named_parameters())
      if (model.depth(name) > config.strategy.last_n) p.requires_grad_(false);
  }
  if (model.gru && config.model.freeze_embeddings) {
    model.gru->embedding->weight.requires_grad_(false);
    model.pinned.insert(model.gru->embedding->weight.impl());
  }
  for (const auto& [name, p] : model.module->named_parameters())
    if (!model.pinned.count(p.impl()) &&
        (p.requires_grad() || (strategy == "gradual_unfreezing" && !config.lora.enabled)))
      model.trainable.insert(p.impl());
  return model;
}

// ULMFiT's gradual unfreezing: at the start of epoch e, the layer groups down to depth e train.
class GradualUnfreezing : public train::Callback {
 public:
  GradualUnfreezing(const Model& model, std::ostream& log) : model_(model), log_(log) {}
  void on_epoch_begin(train::Trainer&, train::TrainerState& state) override {
    int64_t unfrozen = 0;
    for (auto& [name, p] : model_.module->named_parameters())
      if (!p.requires_grad() && !model_.pinned.count(p.impl()) && model_.depth(name) <= state.epoch)
        p.requires_grad_(true), ++unfrozen;
    if (unfrozen > 0)
      log_ << "gradual unfreezing: epoch " << state.epoch + 1 << " trains layer groups down to depth " << state.epoch
           << " (" << unfrozen << " more tensors)\n";
  }

 private:
  const Model& model_;
  std::ostream& log_;
};

// Features of the frozen backbone for every example, computed once (feature_extraction).
Tensor backbone_features(const Model& model, const data::SequenceDataset& dataset, int64_t batch_size) {
  NoGradGuard no_grad;
  model.module->eval();
  std::vector<Tensor> parts;
  for (int64_t start = 0; start < dataset.size(); start += batch_size) {
    std::vector<int64_t> idx;
    for (int64_t i = start; i < std::min(dataset.size(), start + batch_size); ++i) idx.push_back(i);
    const data::Batch b = dataset.collate(idx);
    parts.push_back(model.features(b));
  }
  return cat(parts, 0);
}

}  // namespace

nlohmann::json FinetuneResult::to_json() const {
  return nlohmann::json{{"test", test},
                        {"validation", validation},
                        {"train_examples", train_examples},
                        {"validation_examples", validation_examples},
                        {"test_examples", test_examples},
                        {"parameters", parameters},
                        {"trainable_parameters", trainable_parameters},
                        {"steps", steps},
                        {"stopped_early", stopped_early},
                        {"seconds", seconds}};
}

namespace {

// Under mpirun the launcher's rank (the process group comes later); -1 (a single process) writes too.
bool writes_run_files() { return train::distributed::ProcessGroup::environment_rank() <= 0; }

}  // namespace

void begin_run(const RunConfig& config) {
  const fs::path out = config.output_dir;
  if (fs::exists(out / "results.json") && !config.overwrite)
    throw ValueError("finetune: " + out.string() + " holds a finished run (results.json); choose another output_dir "
                     "or set overwrite");
  fs::create_directories(out);
  if (writes_run_files()) nn::write_file_atomic(out / "config.json", to_json(config).dump(2) + "\n");
  manual_seed(config.train.seed);
}

void end_run(const RunConfig& config, std::ostream& log) {
  const fs::path out = config.output_dir;
  try {
    write_learning_curves(out / "log.jsonl", out / "curves.svg");
  } catch (const Error& e) {
    log << "plot: no curves.svg (" << e.what() << ")\n";
  }
}

FinetuneResult run_finetune(const RunConfig& config, std::ostream& log) {
  if (config.model.type == "gru_forecaster") return run_forecast(config, log);
  const auto start = Clock::now();
  const fs::path out = config.output_dir;
  begin_run(config);

  // Data: the primary task, the other tasks, the target domain.
  Splits splits = load_splits(config.data, log);
  if (writes_run_files())
    nn::write_file_atomic(out / "labels.json", nlohmann::json(splits.labels.labels()).dump() + "\n");
  if (config.augment.copies > 0) {
    data::AugmentOptions a;
    a.copies = config.augment.copies;
    a.swap_alpha = config.augment.swap;
    a.insert_alpha = config.augment.insert;
    a.delete_p = config.augment.delete_p;
    splits.train = data::augment_examples(splits.train, a, config.augment.seed);
  }
  log << "data: " << splits.train.size() << " train (" << config.augment.copies << " augmented copies each), "
      << splits.validation.size() << " validation, " << splits.test.size() << " test; labels";
  for (const auto& l : splits.labels.labels()) log << " " << l;
  log << "\n";
  std::vector<Splits> other_splits;
  ExtraHeads extra;
  nlohmann::json task_labels = nlohmann::json::object();
  for (const TaskConfig& task : config.tasks) {
    other_splits.push_back(load_splits(task.data, log));
    const Splits& s = other_splits.back();
    extra.tasks.emplace_back(task.name, s.labels.size());
    task_labels[task.name] = s.labels.labels();
    log << "task " << task.name << ": " << s.train.size() << " train, " << s.validation.size() << " validation, "
        << s.test.size() << " test from " << task.data.path << "; loss weight " << task.loss_weight << "\n";
  }
  if (!config.tasks.empty() && writes_run_files())
    nn::write_file_atomic(out / "task_labels.json", task_labels.dump() + "\n");
  const TargetDomain target = config.domain_adaptation.enabled ? load_target_domain(config, splits.labels, log)
                                                               : TargetDomain{};
  extra.domain_classifier = config.domain_adaptation.enabled;

  const data::BertTokenizer tokenizer = data::BertTokenizer::from_pretrained(config.model.path);
  const bool special = config.model.type == "bert";  // a GRU reads the words alone
  auto tokens = [&](const data::TextExamples& e) { return encode(tokenizer, e, config.model.max_length, special); };
  data::PadOptions pad;
  pad.pad_id = tokenizer.pad_id();
  const std::vector<int64_t> train_labels = data::label_ids(splits.train, splits.labels);
  data::SequenceDataset train_set(tokens(splits.train), train_labels, pad);
  data::SequenceDataset validation_set(tokens(splits.validation), data::label_ids(splits.validation, splits.labels), pad);
  data::SequenceDataset test_set(tokens(splits.test), data::label_ids(splits.test, splits.labels), pad);

  // Model and what trains.
  const int64_t num_labels = splits.labels.size();
  Model model = prepare_model(config, tokenizer, num_labels, extra, /*load_pretrained=*/true, log);
  const std::string& strategy = config.strategy.type;
  const std::set<const TensorImpl*> trainable = model.trainable;

  CrossEntropyOptions loss_options;
  loss_options.weight = class_weights(config.train, train_labels, num_labels);
  loss_options.label_smoothing = config.train.label_smoothing;

  // Feature extraction trains the head alone, on features computed once.
  std::shared_ptr<nn::Module> trained = model.module;
  std::unique_ptr<data::Dataset> train_data, validation_data, test_data;
  train::ForwardFn forward;
  if (strategy == "feature_extraction") {
    auto features = [&](const data::SequenceDataset& d, const std::vector<int64_t>& y) {
      return std::make_unique<data::TensorDataset>(std::map<std::string, Tensor>{
          {"features", backbone_features(model, d, config.train.eval_batch_size)},
          {"labels", from_vector<int64_t>(y, {static_cast<int64_t>(y.size())})}});
    };
    train_data = features(train_set, train_labels);
    validation_data = features(validation_set, data::label_ids(splits.validation, splits.labels));
    test_data = features(test_set, data::label_ids(splits.test, splits.labels));
    log << "feature_extraction: backbone features cached for " << train_set.size() + validation_set.size() + test_set.size()
        << " examples in " << std::chrono::duration<double>(Clock::now() - start).count() << " s\n";
    if (model.bert) trained = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{model.bert->dropout, model.bert->classifier});
    else trained = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{model.gru->dropout, model.gru->head});
    forward = [&](const data::Batch& b, bool) {
      Tensor logits = trained->forward(b.at("features"));
      return train::StepOutput{cross_entropy(logits, b.at("labels"), loss_options), logits};
    };
  } else {
    forward = [&](const data::Batch& b, bool) {
      Tensor logits = model.primary_head(model.features(b));
      return train::StepOutput{cross_entropy(logits, b.at("labels"), loss_options), logits};
    };
  }

  // Other heads: one dataset mixing every task's (and the target domain's) training rows, and
  // evaluation sets per task.
  MultiHeadForward heads;
  std::vector<std::unique_ptr<MultiHeadDataset>> head_sets;  // owned here, referenced below
  struct TaskEval {
    std::string name;
    int64_t task;
    const data::Dataset* validation;
    const data::Dataset* test;
  };
  std::vector<TaskEval> evals;
  auto head_set = [&](std::vector<HeadRows> blocks) -> const data::Dataset* {
    head_sets.push_back(std::make_unique<MultiHeadDataset>(std::move(blocks), pad));
    return head_sets.back().get();
  };
  if (model.multi) {
    heads.features = [&](const data::Batch& b) { return model.features(b); };
    heads.heads.push_back([&](const Tensor& f) { return model.primary_head(f); });
    heads.num_classes.push_back(num_labels);
    heads.weights.push_back(config.task.loss_weight);
    heads.losses.push_back(loss_options);
    std::vector<HeadRows> train_blocks{{tokens(splits.train), train_labels, 0, kSourceDomain}};
    auto task_sets = [&](const Splits& s, int64_t task) {
      return std::pair{head_set({{tokens(s.validation), data::label_ids(s.validation, s.labels), task, kSourceDomain}}),
                       head_set({{tokens(s.test), data::label_ids(s.test, s.labels), task, kSourceDomain}})};
    };
    auto [primary_validation, primary_test] = task_sets(splits, 0);
    evals.push_back({config.task.name, 0, primary_validation, primary_test});
    for (size_t k = 0; k < config.tasks.size(); ++k) {
      const Splits& s = other_splits[k];
      const auto task = static_cast<int64_t>(k + 1);
      const std::shared_ptr<nn::Module> head = model.multi->task_head(config.tasks[k].name);
      heads.heads.push_back([head](const Tensor& f) { return head->forward(f); });
      heads.num_classes.push_back(s.labels.size());
      heads.weights.push_back(config.tasks[k].loss_weight);
      CrossEntropyOptions options;
      options.label_smoothing = config.train.label_smoothing;
      heads.losses.push_back(options);
      train_blocks.push_back({tokens(s.train), data::label_ids(s.train, s.labels), task, kSourceDomain});
      auto [validation, test] = task_sets(s, task);
      evals.push_back({config.tasks[k].name, task, validation, test});
    }
    if (config.domain_adaptation.enabled) {
      heads.domain_classifier = model.multi->domain_classifier();
      heads.domain_weight = config.domain_adaptation.loss_weight;
      train_blocks.push_back({tokens(target.train), {}, kNoTask, kTargetDomain});
      // Source against target rows the model has not trained on: can the classifier tell them apart?
      auto domain_set = [&](const data::TextExamples& source, const data::TextExamples& target_rows) {
        return head_set({{tokens(source), {}, kNoTask, kSourceDomain}, {tokens(target_rows), {}, kNoTask, kTargetDomain}});
      };
      evals.push_back({"domain", kNoTask, domain_set(splits.validation, target.validation),
                       domain_set(splits.test, target.test)});
      if (target.labelled) {
        auto labelled = [&](const data::TextExamples& rows) {
          return head_set({{tokens(rows), data::label_ids(rows, splits.labels), 0, kTargetDomain}});
        };
        evals.push_back({"target", 0, labelled(target.validation), labelled(target.test)});
      }
    }
    train_data = std::make_unique<MultiHeadDataset>(std::move(train_blocks), pad);
    validation_data = std::make_unique<MultiHeadDataset>(std::vector<HeadRows>{}, pad);  // a placeholder: see evaluate
    forward = [&](const data::Batch& b, bool training) { return heads(b, training); };
  }
  // Per-task metrics as "<task>.<metric>"; the plain keys are the mean over the tasks (the primary's
  // alone when there is one task), so metric_for_best means the same with and without other tasks.
  auto evaluate_heads = [&](bool test) {
    train::Metrics metrics;
    std::map<std::string, double> sums;
    const auto tasks = static_cast<double>(config.tasks.size() + 1);
    for (const TaskEval& e : evals) {
      const train::Metrics m = heads.evaluate(*(test ? e.test : e.validation), e.task, config.train.eval_batch_size);
      const bool task = e.name != "domain" && e.name != "target";
      for (const auto& [key, value] : m) {
        if (!task || !config.tasks.empty()) metrics[e.name + "." + key] = value;
        if (task && (key == "accuracy" || key == "macro_f1" || key == "loss")) sums[key] += value / tasks;
      }
    }
    for (const auto& [key, value] : sums) metrics[key] = value;
    return metrics;
  };

  const int64_t train_size = train_data ? train_data->size() : train_set.size();
  std::unique_ptr<optim::Optimizer> optimizer =
      make_optimizer(config, *model.module, [&](const std::string& name) { return model.depth(name); }, trainable);
  std::unique_ptr<optim::LRScheduler> scheduler =
      make_scheduler(config.schedule, *optimizer, total_steps(config.train, train_size));

  train::TrainerOptions options = trainer_options(config);
  options.num_classes = num_labels;
  // Length buckets cut padding, most of the speed on a CPU; but DANN's domain classifier needs both
  // domains in a batch, and buckets would split them wherever their lengths differ.
  options.group_by_length = strategy != "feature_extraction" && !config.domain_adaptation.enabled;
  // Under mpirun / srun with several processes: data-parallel training over them; train.batch_size
  // stays the global batch (the same steps and schedule as one process), split over the processes.
  // Only rank 0 writes the run's files.
  if (train::distributed::ProcessGroup::launched_with_several_processes())
    options.process_group = train::distributed::ProcessGroup::create();
  if (options.process_group && options.process_group->world_size() == 1) options.process_group.reset();
  if (options.process_group) {
    const int world = options.process_group->world_size();
    if (config.train.batch_size % world != 0)
      throw ValueError("train.batch_size (" + std::to_string(config.train.batch_size) + ") must be a multiple of the " +
                       std::to_string(world) + " processes it is split over");
    options.batch_size = config.train.batch_size / world;
  }
  const bool main_rank = !options.process_group || options.process_group->is_main();
  if (model.multi) options.evaluate = [&] { return evaluate_heads(false); };
  train::Trainer trainer(*trained, *optimizer, scheduler.get(), forward, options);
  if (strategy == "gradual_unfreezing" && !config.lora.enabled)
    trainer.add_callback(std::make_shared<GradualUnfreezing>(model, log));
  if (config.domain_adaptation.enabled)
    trainer.add_callback(std::make_shared<ReversalSchedule>(*model.multi->reversal(), config.domain_adaptation.lambda,
                                                            config.domain_adaptation.lambda_schedule == "dann"));

  const data::Dataset& train_ref = train_data ? *train_data : static_cast<const data::Dataset&>(train_set);
  const data::Dataset& validation_ref = validation_data ? *validation_data : static_cast<const data::Dataset&>(validation_set);
  const data::Dataset& test_ref = test_data ? *test_data : static_cast<const data::Dataset&>(test_set);
  const train::TrainResult fit = trainer.fit(train_ref, &validation_ref);

  FinetuneResult result;
  if (model.multi) {
    result.validation = trainer.evaluate_with([&] { return evaluate_heads(false); });
    result.test = trainer.evaluate_with([&] { return evaluate_heads(true); });
  } else {
    result.validation = trainer.evaluate(validation_ref);
    result.test = trainer.evaluate(test_ref);
  }
  result.train_examples = static_cast<int64_t>(splits.train.size());
  result.validation_examples = static_cast<int64_t>(splits.validation.size());
  result.test_examples = static_cast<int64_t>(splits.test.size());
  result.parameters = model.module->num_parameters();
  result.trainable_parameters = static_cast<int64_t>(std::accumulate(
      trainable.begin(), trainable.end(), int64_t{0},
      [](int64_t n, const TensorImpl* impl) { return n + shape_numel(impl->shape); }));
  result.steps = fit.state.global_step;
  result.stopped_early = fit.stopped_early;

  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (main_rank) {
    nn::save_weights(*model.module, out / "model.safetensors");  // adapters included, under their names
    if (config.lora.enabled) nn::save_lora(*model.module, out / "adapter.safetensors");
    nn::write_file_atomic(out / "results.json", result.to_json().dump(2) + "\n");
    end_run(config, log);
  }
  if (options.process_group) options.process_group->barrier();  // the files are there for every rank
  log << "test: accuracy " << result.test.at("accuracy") << ", macro_f1 " << result.test.at("macro_f1") << " ("
      << result.test_examples << " examples; " << result.trainable_parameters << " of " << result.parameters
      << " parameters trained; " << result.seconds << " s)\n";
  if (model.multi) {
    log << "test, per head:";
    for (const auto& [key, value] : result.test)
      if (key.find('.') != std::string::npos) log << " " << key << " " << value;
    log << "\n";
  }
  return result;
}

std::string describe_run(const RunConfig& config) {
  if (config.model.type == "gru_forecaster") return describe_forecast(config);
  std::ostringstream log;
  const data::BertTokenizer tokenizer = data::BertTokenizer::from_pretrained(config.model.path);
  // Label counts from the config (data.labels), or from the data file when it lists none.
  auto count = [](const DataConfig& d) {
    if (!d.labels.empty()) return static_cast<int64_t>(d.labels.size());
    const data::Table table = data::read_table(d.path);
    return data::LabelVocab::from_examples(data::to_examples(table, {d.text_column, d.text_pair_column, d.label_column})).size();
  };
  ExtraHeads extra;
  for (const TaskConfig& task : config.tasks) extra.tasks.emplace_back(task.name, count(task.data));
  extra.domain_classifier = config.domain_adaptation.enabled;
  Model model = prepare_model(config, tokenizer, count(config.data), extra, /*load_pretrained=*/false, log);
  std::ostringstream out;
  out << model.module->summary() << "\n" << log.str();
  // What model.dropout set: every Dropout module's p, counted.
  std::map<std::string, int64_t> dropouts;
  for (const auto& [name, module] : model.module->named_modules())
    if (module->type_name() == "Dropout") ++dropouts[module->extra_repr()];
  out << "dropout:";
  for (const auto& [p, n] : dropouts) out << " " << n << " x Dropout(" << p << ")";
  out << "\n";
  out << "strategy " << config.strategy.type << (config.lora.enabled ? " + LoRA" : "") << ": layer groups\n"
      << describe_layer_groups(
             config, *model.module, [&](const std::string& name) { return model.depth(name); }, model.trainable,
             [](int64_t d) { return d == 0 ? std::string(" (head)") : std::string(); });
  return out.str();
}

struct TrainedRun::State {
  RunConfig config;
  std::vector<std::string> labels;
  std::unique_ptr<data::BertTokenizer> tokenizer;
  Model model;
};

TrainedRun::TrainedRun(const fs::path& run_dir) : state_(std::make_unique<State>()) {
  for (const char* file : {"config.json", "labels.json", "model.safetensors"})
    if (!fs::exists(run_dir / file))
      throw IOError("graft: " + (run_dir / file).string() + " is missing (is " + run_dir.string() +
                    " the output_dir of a finished `graft finetune`?)");
  state_->config = read_run_config(ConfigDocument::load((run_dir / "config.json").string()));
  if (state_->config.model.type == "gru_forecaster")
    throw ValueError("graft: " + run_dir.string() + " is a forecaster run; predict and eval read text runs");
  std::ifstream labels_in(run_dir / "labels.json");
  try {
    state_->labels = nlohmann::json::parse(labels_in).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError((run_dir / "labels.json").string() + ": expected a JSON array of label strings (" + e.what() + ")");
  }
  // The other heads, so the saved weights load strictly; predict and eval use the primary head.
  ExtraHeads extra;
  extra.domain_classifier = state_->config.domain_adaptation.enabled;
  if (!state_->config.tasks.empty()) {
    std::ifstream tasks_in(run_dir / "task_labels.json");
    try {
      const nlohmann::json task_labels = nlohmann::json::parse(tasks_in);
      for (const TaskConfig& task : state_->config.tasks)
        extra.tasks.emplace_back(task.name, static_cast<int64_t>(task_labels.at(task.name).size()));
    } catch (const nlohmann::json::exception& e) {
      throw FormatError((run_dir / "task_labels.json").string() + ": expected {task name: [labels]} for every task (" +
                        e.what() + ")");
    }
  }
  state_->tokenizer = std::make_unique<data::BertTokenizer>(data::BertTokenizer::from_pretrained(state_->config.model.path));
  std::ostringstream quiet;
  state_->model = prepare_model(state_->config, *state_->tokenizer, static_cast<int64_t>(state_->labels.size()), extra,
                                /*load_pretrained=*/false, quiet);
  nn::WeightsOptions strict;
  nn::load_weights(*state_->model.module, run_dir / "model.safetensors", strict);
  state_->model.module->eval();
}

TrainedRun::~TrainedRun() = default;
TrainedRun::TrainedRun(TrainedRun&&) noexcept = default;

const std::vector<std::string>& TrainedRun::labels() const { return state_->labels; }
const RunConfig& TrainedRun::config() const { return state_->config; }

namespace {

Tensor run_logits(const Model& model, const data::Batch& b) { return model.primary_head(model.features(b)); }

}  // namespace

std::vector<TrainedRun::Prediction> TrainedRun::predict(const std::vector<std::string>& texts) const {
  const RunConfig& c = state_->config;
  data::TextExamples examples;
  for (const auto& t : texts) examples.push_back({t, "", ""});
  data::PadOptions pad;
  pad.pad_id = state_->tokenizer->pad_id();
  data::SequenceDataset dataset(encode(*state_->tokenizer, examples, c.model.max_length, c.model.type == "bert"),
                                std::vector<int64_t>{}, pad);
  std::vector<Prediction> out;
  NoGradGuard no_grad;
  for (int64_t start = 0; start < dataset.size(); start += c.train.eval_batch_size) {
    std::vector<int64_t> idx;
    for (int64_t i = start; i < std::min(dataset.size(), start + c.train.eval_batch_size); ++i) idx.push_back(i);
    const std::vector<float> probs = softmax(run_logits(state_->model, dataset.collate(idx)), -1).to_vector<float>();
    const size_t C = state_->labels.size();
    for (size_t row = 0; row < idx.size(); ++row) {
      Prediction p;
      p.probabilities.assign(probs.begin() + static_cast<std::ptrdiff_t>(row * C),
                             probs.begin() + static_cast<std::ptrdiff_t>((row + 1) * C));
      p.label = state_->labels[static_cast<size_t>(
          std::max_element(p.probabilities.begin(), p.probabilities.end()) - p.probabilities.begin())];
      out.push_back(std::move(p));
    }
  }
  return out;
}

train::Metrics TrainedRun::evaluate(const std::string& split, const std::string& data_path) const {
  RunConfig c = state_->config;
  c.data.labels = state_->labels;
  data::TextExamples examples;
  std::ostringstream quiet;
  if (!data_path.empty()) {
    c.data.path = data_path;
    const data::Table table = data::read_table(data_path);
    examples = data::to_examples(table, {c.data.text_column, c.data.text_pair_column, c.data.label_column});
  } else {
    c.augment.copies = 0;
    Splits splits = load_splits(c.data, quiet);
    if (split == "validation") examples = splits.validation;
    else if (split == "test") examples = splits.test;
    else throw ValueError("graft eval: --split must be validation or test, got \"" + split + "\"");
  }
  const data::LabelVocab vocab(state_->labels);
  data::PadOptions pad;
  pad.pad_id = state_->tokenizer->pad_id();
  data::SequenceDataset dataset(encode(*state_->tokenizer, examples, c.model.max_length, c.model.type == "bert"),
                                data::label_ids(examples, vocab), pad);
  train::MetricAccumulator metrics(train::MetricAccumulator::Task::classification,
                                   static_cast<int64_t>(state_->labels.size()));
  NoGradGuard no_grad;
  for (int64_t start = 0; start < dataset.size(); start += c.train.eval_batch_size) {
    std::vector<int64_t> idx;
    for (int64_t i = start; i < std::min(dataset.size(), start + c.train.eval_batch_size); ++i) idx.push_back(i);
    const data::Batch b = dataset.collate(idx);
    const Tensor logits = run_logits(state_->model, b);
    metrics.add(logits, b.at("labels"));
    metrics.add_loss(cross_entropy(logits, b.at("labels")).item() * static_cast<double>(idx.size()),
                     static_cast<int64_t>(idx.size()));
  }
  return metrics.compute();
}

}  // namespace graft::cli
