// A text run's model (BERT or GRU classifier, with the other tasks' heads and DANN's domain
// classifier), how it is cut into layer groups for discriminative learning rates and unfreezing,
// and the strategy applied to it (what trains).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "nn/models/bert.h"
#include "nn/models/gru_classifier.h"
#include "train/cli/multitask.h"
#include "train/cli/run_config.h"
#include "train/data/collate.h"
#include "train/data/wordpiece.h"
#include "train/trainer.h"

namespace graft::cli {

// The model and how it is cut into layer groups: depth 0 is the head, larger depths lie deeper.
struct TextModel {
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
  Device device() const { return module->parameters().front().device(); }

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

// The model with its strategy applied: LoRA adapters attached, and requires_grad false on what
// does not train now (gradual unfreezing: what does not train yet). `trainable` is what the
// optimizer holds.
// load_pretrained false: the architecture alone (a finished run's own weights are loaded next).
TextModel prepare_model(const RunConfig& config, const data::BertTokenizer& tokenizer, int64_t num_labels,
                        const ExtraHeads& extra, bool load_pretrained, std::ostream& log);

// ULMFiT's gradual unfreezing: at the start of epoch e, the layer groups down to depth e train.
class GradualUnfreezing : public train::Callback {
 public:
  GradualUnfreezing(const TextModel& model, std::ostream& log) : model_(model), log_(log) {}
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
  const TextModel& model_;
  std::ostream& log_;
};

// Features of the frozen backbone for every example, computed once (feature_extraction).
Tensor backbone_features(const TextModel& model, const data::SequenceDataset& dataset, int64_t batch_size);

}  // namespace graft::cli
