#include "train/cli/finetune.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <ostream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/atomic_file.h"
#include "nn/lora.h"
#include "nn/models/bert.h"
#include "nn/weights.h"
#include "tensor/error.h"
#include "tensor/factory.h"
#include "train/cli/forecast.h"
#include "train/cli/multitask.h"
#include "train/cli/optimization.h"
#include "train/cli/plot.h"
#include "train/cli/text_data.h"
#include "train/cli/text_model.h"
#include "train/data/augment.h"
#include "train/data/collate.h"
#include "train/data/wordpiece.h"
#include "train/optim/scheduler.h"
#include "train/distributed/process_group.h"
#include "train/trainer.h"

namespace graft::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

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

bool RunPlacement::main_rank() const { return !group || group->is_main(); }

RunPlacement place_run(const RunConfig& config) {
  RunPlacement placement;
  if (train::distributed::ProcessGroup::launched_with_several_processes())
    placement.group = train::distributed::ProcessGroup::create();
  if (placement.group && placement.group->world_size() == 1) placement.group.reset();
  placement.device = parse_device(config.train.device);
  if (placement.group && placement.device.is_cuda()) placement.device = placement.group->device();
  return placement;
}

void place_trainer(train::TrainerOptions& options, const RunPlacement& placement, const RunConfig& config) {
  options.device = placement.device;
  options.process_group = placement.group;
  if (!placement.group) return;
  const int world = placement.group->world_size();
  if (config.train.batch_size % world != 0)
    throw ValueError("train.batch_size (" + std::to_string(config.train.batch_size) + ") must be a multiple of the " +
                     std::to_string(world) + " processes it is split over");
  options.batch_size = config.train.batch_size / world;
}

void wait_for_run_files(const RunPlacement& placement) {
  if (placement.group) placement.group->barrier();
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
  TextSplits splits = load_splits(config.data, log);
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
  std::vector<TextSplits> other_splits;
  ExtraHeads extra;
  nlohmann::json task_labels = nlohmann::json::object();
  for (const TaskConfig& task : config.tasks) {
    other_splits.push_back(load_splits(task.data, log));
    const TextSplits& s = other_splits.back();
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
  TextModel model = prepare_model(config, tokenizer, num_labels, extra, /*load_pretrained=*/true, log);
  // Under mpirun / srun with several processes: data-parallel training over them.
  const RunPlacement placement = place_run(config);
  const Device device = placement.device;
  // On its device from the start: feature extraction runs the backbone before the Trainer exists.
  model.module->to(device);
  if (device.is_cuda()) log << "device: " << device.str() << "\n";
  const std::string& strategy = config.strategy.type;
  const std::set<const TensorImpl*> trainable = model.trainable;

  CrossEntropyOptions loss_options;
  loss_options.weight = class_weights(config.train, train_labels, num_labels);
  if (loss_options.weight.defined()) loss_options.weight = loss_options.weight.to(device);
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
    heads.device = device;
    heads.heads.push_back([&](const Tensor& f) { return model.primary_head(f); });
    heads.num_classes.push_back(num_labels);
    heads.weights.push_back(config.task.loss_weight);
    heads.losses.push_back(loss_options);
    std::vector<HeadRows> train_blocks{{tokens(splits.train), train_labels, 0, kSourceDomain}};
    auto task_sets = [&](const TextSplits& s, int64_t task) {
      return std::pair{head_set({{tokens(s.validation), data::label_ids(s.validation, s.labels), task, kSourceDomain}}),
                       head_set({{tokens(s.test), data::label_ids(s.test, s.labels), task, kSourceDomain}})};
    };
    auto [primary_validation, primary_test] = task_sets(splits, 0);
    evals.push_back({config.task.name, 0, primary_validation, primary_test});
    for (size_t k = 0; k < config.tasks.size(); ++k) {
      const TextSplits& s = other_splits[k];
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
  // Data-parallel under mpirun: train.batch_size split over the processes; only rank 0 writes the
  // run's files.
  place_trainer(options, placement, config);
  const bool main_rank = placement.main_rank();
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
  wait_for_run_files(placement);  // the files are there for every rank
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
  TextModel model = prepare_model(config, tokenizer, count(config.data), extra, /*load_pretrained=*/false, log);
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


}  // namespace graft::cli
