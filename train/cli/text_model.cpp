#include "train/cli/text_model.h"

#include <filesystem>
#include <ostream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/lora.h"
#include "nn/safetensors.h"
#include "train/data/word_vectors.h"

namespace graft::cli {

namespace {

namespace fs = std::filesystem;

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
TextModel build_model(const RunConfig& config, const data::BertTokenizer& tokenizer, int64_t num_labels,
                  const ExtraHeads& extra, bool load_pretrained, std::ostream& log) {
  const fs::path dir = config.model.path;
  TextModel m;
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


}  // namespace

TextModel prepare_model(const RunConfig& config, const data::BertTokenizer& tokenizer, int64_t num_labels,
                    const ExtraHeads& extra, bool load_pretrained, std::ostream& log) {
  TextModel model = build_model(config, tokenizer, num_labels, extra, load_pretrained, log);
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

// Features of the frozen backbone for every example, computed once (feature_extraction).
Tensor backbone_features(const TextModel& model, const data::SequenceDataset& dataset, int64_t batch_size) {
  NoGradGuard no_grad;
  model.module->eval();
  std::vector<Tensor> parts;
  for (int64_t start = 0; start < dataset.size(); start += batch_size) {
    std::vector<int64_t> idx;
    for (int64_t i = start; i < std::min(dataset.size(), start + batch_size); ++i) idx.push_back(i);
    parts.push_back(model.features(data::to_device(dataset.collate(idx), model.device())));
  }
  return cat(parts, 0);
}

}  // namespace graft::cli
