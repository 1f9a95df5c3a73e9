#include "train/cli/trained_run.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/weights.h"
#include "tensor/error.h"
#include "train/cli/config.h"
#include "train/cli/text_data.h"
#include "train/cli/text_model.h"
#include "train/data/reader.h"

namespace graft::cli {

namespace fs = std::filesystem;

struct TrainedRun::State {
  RunConfig config;
  std::vector<std::string> labels;
  std::unique_ptr<data::BertTokenizer> tokenizer;
  TextModel model;
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

Tensor run_logits(const TextModel& model, const data::Batch& b) { return model.primary_head(model.features(b)); }

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
    TextSplits splits = load_splits(c.data, quiet);
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
