#include "train/cli/multitask.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "nn/activation.h"
#include "nn/container.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "tensor/error.h"
#include "tensor/factory.h"

namespace graft::cli {

namespace {

// A module that only names its children (the "task_heads" folder).
class NamedModules : public nn::Module {
 public:
  NamedModules() : Module("ModuleDict") {}
  void add(const std::string& name, std::shared_ptr<nn::Module> module) { register_module(name, std::move(module)); }
  Tensor forward(const Tensor&) override { throw NotImplementedError("ModuleDict has no forward; call its children"); }
};

Tensor rows_of(const std::vector<int64_t>& rows) {
  return from_vector<int64_t>(rows, {static_cast<int64_t>(rows.size())});
}

}  // namespace

MultiHeadDataset::MultiHeadDataset(std::vector<HeadRows> blocks, data::PadOptions pad) {
  std::vector<std::vector<int64_t>> sequences;
  std::vector<int64_t> labels;
  for (HeadRows& block : blocks) {
    if (block.task != kNoTask && block.labels.size() != block.sequences.size())
      throw ValueError("MultiHeadDataset: task " + std::to_string(block.task) + " has " +
                       std::to_string(block.sequences.size()) + " sequences and " + std::to_string(block.labels.size()) +
                       " labels");
    for (size_t i = 0; i < block.sequences.size(); ++i) {
      sequences.push_back(std::move(block.sequences[i]));
      labels.push_back(block.task == kNoTask ? -100 : block.labels[i]);
      task_.push_back(block.task);
      domain_.push_back(block.domain);
    }
  }
  tokens_ = std::make_unique<data::SequenceDataset>(std::move(sequences), std::move(labels), pad);
}

data::Batch MultiHeadDataset::collate(const std::vector<int64_t>& indices) const {
  data::Batch batch = tokens_->collate(indices);
  std::vector<int64_t> task, domain;
  for (int64_t i : indices) {
    task.push_back(task_[static_cast<size_t>(i)]);
    domain.push_back(domain_[static_cast<size_t>(i)]);
  }
  batch["task"] = rows_of(task);
  batch["domain"] = rows_of(domain);
  return batch;
}

MultiHeadModel::MultiHeadModel(const nn::Module& base) : Module("MultiHeadModel") {
  for (const auto& [name, child] : base.named_children()) register_module(name, child);
  task_heads_ = register_module("task_heads", std::make_shared<NamedModules>());
}

void MultiHeadModel::add_task_head(const std::string& name, int64_t in_features, int64_t num_classes, double dropout) {
  auto head = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Dropout>(dropout), std::make_shared<nn::Linear>(in_features, num_classes)});
  static_cast<NamedModules&>(*task_heads_).add(name, head);
  heads_.emplace_back(name, head);
}

void MultiHeadModel::add_domain_classifier(int64_t in_features) {
  reversal_ = std::make_shared<nn::GradientReversal>();
  domain_classifier_ = register_module(
      "domain_classifier", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                               reversal_, std::make_shared<nn::Linear>(in_features, in_features),
                               std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(in_features, 2)}));
}

Tensor MultiHeadModel::forward(const Tensor&) {
  throw NotImplementedError("MultiHeadModel: a multi-head run calls the encoder and each head itself");
}

std::shared_ptr<nn::Module> MultiHeadModel::task_head(const std::string& name) const {
  for (const auto& [n, head] : heads_)
    if (n == name) return head;
  throw ValueError("MultiHeadModel: no task head \"" + name + "\"");
}

train::StepOutput MultiHeadForward::operator()(const data::Batch& batch, bool) const {
  const Tensor features_all = features(batch);
  const std::vector<int64_t> task = batch.at("task").to_vector<int64_t>();
  const Tensor& labels = batch.at("labels");
  const auto B = static_cast<double>(task.size());
  Tensor loss;
  Tensor outputs;
  auto add = [&](const Tensor& term) { loss = loss.defined() ? loss + term : term; };
  for (size_t k = 0; k < heads.size(); ++k) {
    std::vector<int64_t> rows;
    for (size_t i = 0; i < task.size(); ++i)
      if (task[i] == static_cast<int64_t>(k)) rows.push_back(static_cast<int64_t>(i));
    if (rows.empty()) continue;
    const bool all = rows.size() == task.size();
    const Tensor index = all ? Tensor() : rows_of(rows).to(features_all.device());
    const Tensor logits = heads[k](all ? features_all : index_select(features_all, 0, index));
    CrossEntropyOptions options = losses[k];
    options.reduction = Reduction::sum;
    add(cross_entropy(logits, all ? labels : index_select(labels, 0, index), options) * (weights[k] / B));
    if (all && k == 0) outputs = logits;  // the Trainer's train accuracy is the primary task's
  }
  if (domain_classifier) {
    const Tensor logits = domain_classifier->forward(features_all);
    add(cross_entropy(logits, batch.at("domain")) * domain_weight);
  }
  if (!loss.defined()) throw ValueError("MultiHeadForward: a batch with no row any head reads");
  return {loss, outputs};
}

train::Metrics MultiHeadForward::evaluate(const data::Dataset& dataset, int64_t task, int64_t batch_size) const {
  NoGradGuard no_grad;
  train::MetricAccumulator metrics(train::MetricAccumulator::Task::classification,
                                   task == kNoTask ? 2 : num_classes[static_cast<size_t>(task)]);
  for (int64_t start = 0; start < dataset.size(); start += batch_size) {
    std::vector<int64_t> indices;
    for (int64_t i = start; i < std::min(dataset.size(), start + batch_size); ++i) indices.push_back(i);
    const data::Batch batch = data::to_device(dataset.collate(indices), device);
    const Tensor f = features(batch);
    const Tensor& target = task == kNoTask ? batch.at("domain") : batch.at("labels");
    const Tensor logits = task == kNoTask ? domain_classifier->forward(f) : heads[static_cast<size_t>(task)](f);
    metrics.add(logits, target);
    const auto n = static_cast<int64_t>(indices.size());
    CrossEntropyOptions options = task == kNoTask ? CrossEntropyOptions{} : losses[static_cast<size_t>(task)];
    metrics.add_loss(cross_entropy(logits, target, options).item() * static_cast<double>(n), n);
  }
  return metrics.compute();
}

void ReversalSchedule::update(const train::TrainerState& state) {
  const double progress =
      state.total_steps > 0 ? std::min(1.0, static_cast<double>(state.global_step) / static_cast<double>(state.total_steps))
                            : 1.0;
  reversal_.set_lambda(ramp_ ? lambda_ * nn::dann_lambda(progress) : lambda_);
}

}  // namespace graft::cli
