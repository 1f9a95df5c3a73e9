// Runs with more than one head on one encoder: multi-task learning (config `tasks`) and
// domain-adversarial training (config `domain_adaptation`, DANN).
//
//   batch rows (mixed tasks) -> encoder -> pooled features [B, P]
//       rows of task k        -> head k -> cross-entropy, weighted by the task's loss_weight
//       every row (DANN)      -> gradient reversal -> domain classifier -> cross-entropy on source/target
//
// The encoder runs once per batch whatever the mix of tasks. The loss of a batch is
//   sum_k w_k * (sum of task k's row losses) / B  +  w_domain * mean domain loss,
// so with every weight 1 each labelled row counts the same, and a task's share of the gradient is
// its share of the training rows times its weight.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "nn/gradient_reversal.h"
#include "nn/module.h"
#include "train/data/collate.h"
#include "train/metrics.h"
#include "train/trainer.h"

namespace graft::cli {

// Row kinds: task k >= 0 is read by head k (0 = the primary task, the config's data section);
// kNoTask rows (unlabelled target-domain texts) train only the domain classifier.
inline constexpr int64_t kNoTask = -1;
inline constexpr int64_t kSourceDomain = 0, kTargetDomain = 1;

// One block of rows: token sequences, their labels under `task` (empty for kNoTask), their domain.
struct HeadRows {
  std::vector<std::vector<int64_t>> sequences;
  std::vector<int64_t> labels;
  int64_t task = 0;
  int64_t domain = kSourceDomain;
};

// Token sequences of several tasks and domains in one Dataset. collate gives SequenceDataset's
// columns ("input_ids", "attention_mask", "lengths", "labels"; -100 where a row has no label) plus
// "task" [B] and "domain" [B] (i64). length() is the token count, for length bucketing.
class MultiHeadDataset : public data::Dataset {
 public:
  MultiHeadDataset(std::vector<HeadRows> blocks, data::PadOptions pad);
  int64_t size() const override { return tokens_->size(); }
  data::Batch collate(const std::vector<int64_t>& indices) const override;
  int64_t length(int64_t index) const override { return tokens_->length(index); }

 private:
  std::unique_ptr<data::SequenceDataset> tokens_;
  std::vector<int64_t> task_, domain_;
};

// The root module of a multi-head run: the base model's children under their own names (so
// parameter names, layer groups and saved weights stay the base model's), then
//   "task_heads.<name>"  Sequential(Dropout, Linear(P, C_name)) for every task after the primary
//   "domain_classifier"  Sequential(GradientReversal, Linear(P, P), ReLU, Linear(P, 2))   (DANN)
// Its forward is not used: a run calls features() and the heads through MultiHeadForward.
class MultiHeadModel : public nn::Module {
 public:
  explicit MultiHeadModel(const nn::Module& base);
  void add_task_head(const std::string& name, int64_t in_features, int64_t num_classes, double dropout);
  void add_domain_classifier(int64_t in_features);

  Tensor forward(const Tensor& input) override;  // NotImplementedError: see above
  std::shared_ptr<nn::Module> task_head(const std::string& name) const;
  std::shared_ptr<nn::Module> domain_classifier() const { return domain_classifier_; }
  nn::GradientReversal* reversal() const { return reversal_.get(); }

 private:
  std::shared_ptr<nn::Module> task_heads_;
  std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>> heads_;
  std::shared_ptr<nn::Module> domain_classifier_;
  std::shared_ptr<nn::GradientReversal> reversal_;
};

// The loss of a mixed batch (see the top of this file) and the heads for evaluation.
struct MultiHeadForward {
  std::function<Tensor(const data::Batch&)> features;          // pooled features [B, P]
  std::vector<std::function<Tensor(const Tensor&)>> heads;     // per task: features -> logits
  std::vector<int64_t> num_classes;                            // per task
  std::vector<double> weights;                                 // per task
  std::vector<CrossEntropyOptions> losses;                     // per task (class weights, smoothing)
  std::shared_ptr<nn::Module> domain_classifier;               // null: no DANN
  double domain_weight = 1.0;
  Device device = Device::cpu();                               // the model's: evaluate moves batches there

  // A training step's loss. outputs: the logits when every row is of one task (train accuracy).
  train::StepOutput operator()(const data::Batch& batch, bool training) const;
  // Metrics of head `task` on a dataset of that task's rows (accuracy, macro_f1, ..., loss), or of
  // the domain classifier (task = kNoTask) on a dataset whose rows carry their domain.
  train::Metrics evaluate(const data::Dataset& dataset, int64_t task, int64_t batch_size) const;
};

// DANN's lambda over training: lambda * (2 / (1 + exp(-10 p)) - 1) at p = step / total steps
// ("dann"), or lambda throughout ("constant").
class ReversalSchedule : public train::Callback {
 public:
  ReversalSchedule(nn::GradientReversal& reversal, double lambda, bool ramp)
      : reversal_(reversal), lambda_(lambda), ramp_(ramp) {}
  void on_train_begin(train::Trainer&, train::TrainerState& state) override { update(state); }
  void on_step_end(train::Trainer&, train::TrainerState& state) override { update(state); }

 private:
  void update(const train::TrainerState& state);
  nn::GradientReversal& reversal_;
  double lambda_;
  bool ramp_;
};

}  // namespace graft::cli
