// Trainer: the loop a Hugging Face Trainer user expects, in C++. It owns no model: it drives a
// user's forward function over a Dataset with an Optimizer (and optionally a scheduler), with
// gradient accumulation, clipping, NaN/Inf policy, evaluation every N steps, metrics, early
// stopping with best-weights restore, checkpoints that resume bit for bit, a progress bar, a JSONL
// log and callbacks.
//
// Distributed (TrainerOptions::process_group, e.g. under mpirun): batch_size is per rank; each
// global batch of batch_size * world_size examples (data::BatchSampler's order, as one process
// with that batch) is split into the ranks' shards (distributed::DistributedBatchSampler), the
// gradients are averaged by distributed::DataParallel (bucketed all-reduce started during
// backward, reduced once per optimizer step: micro-batches before the last accumulate locally),
// and the model is broadcast from rank 0 at the start. The logged loss and samples are over all
// ranks; train_accuracy / train_mse in the step records are rank 0's shard. Evaluation splits the
// validation set across ranks and gathers predictions, labels and losses, so every rank computes
// the same metrics (hence the same best step and early stopping). A TrainerOptions::evaluate
// function runs on every rank over what it chooses. Only rank 0 writes log.jsonl and checkpoints
// and shows progress; the others wait for it. Resume needs the same world size (and the output
// directory visible to every rank).
//
// Step words: a *batch* is one forward/backward; an optimizer *step* is accumulation_steps batches
// (fewer at the end of an epoch; the loss is averaged over the batches actually in the step).
// global_step counts optimizer steps, as HF's does.
//
// Mixed precision (TrainerOptions::mixed_precision, autograd/autocast.h): the training forward and
// loss and every evaluation run under AutocastGuard, so GEMMs and attention compute in bf16 or f16
// while the parameters (master weights), their gradients and everything else stay f32. f16 also
// scales the loss (optim::GradScaler): backward runs on the scaled loss, the gradients are unscaled
// before clipping, and a step whose gradients overflowed is skipped (neither optimizer nor
// scheduler steps; TrainerState::amp_skipped_steps counts it, the log's step records carry
// amp_skipped and loss_scale) while the scale backs off. The scaler's state is checkpointed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/module.h"
#include "train/data/dataset.h"
#include "train/distributed/process_group.h"
#include "train/metrics.h"
#include "train/optim/grad_scaler.h"
#include "train/optim/optimizer.h"
#include "train/optim/scheduler.h"

namespace graft::train {

// What the user's forward returns for one batch: the loss to minimise (a scalar) and, for
// metrics, the outputs to compare with batch["labels"] (logits [N, C] or predictions [N]).
struct StepOutput {
  Tensor loss;
  Tensor outputs;
};
// `training` says whether this is a training batch (the module's train/eval mode is already set).
using ForwardFn = std::function<StepOutput(const data::Batch& batch, bool training)>;

enum class NonFinitePolicy {
  skip_step,  // drop this step's gradients, count it, log it, go on
  stop,       // throw NumericError naming the step
};

// As Hugging Face's EarlyStoppingCallback + load_best_model_at_end: the best evaluation is the
// strictly best metric seen; min_delta only decides whether an evaluation resets the patience
// counter (it must beat the best so far by more than min_delta).
struct EarlyStoppingOptions {
  int64_t patience = 0;        // evaluations without enough improvement before stopping; 0: off
  double min_delta = 0.0;
  bool restore_best = true;    // at the end, load the weights of the best evaluation
};

// What the training forward computes its GEMMs and attention in (see the top of this file).
enum class MixedPrecision { none, bf16, f16 };
const char* mixed_precision_name(MixedPrecision mode);  // "none", "bf16", "f16"
// ValueError naming the value and the allowed ones.
MixedPrecision parse_mixed_precision(const std::string& name);

struct TrainerOptions {
  int64_t epochs = 1;
  int64_t max_steps = -1;                // > 0: stop after this many optimizer steps (overrides epochs)
  int64_t batch_size = 32;
  int64_t eval_batch_size = 0;           // 0: batch_size
  int64_t accumulation_steps = 1;
  double max_grad_norm = 0.0;            // > 0: clip by global L2 norm
  double clip_value = 0.0;               // > 0: clip each gradient element to [-v, v]
  NonFinitePolicy non_finite = NonFinitePolicy::skip_step;
  int64_t eval_every_steps = 0;          // > 0: evaluate every N steps; and always at each epoch end
  MetricAccumulator::Task task = MetricAccumulator::Task::classification;
  int64_t num_classes = 0;               // for metrics; 0: inferred
  std::string metric_for_best = "loss";  // a key of the evaluation metrics
  std::optional<bool> greater_is_better; // default: false for loss/mse/mae/rmse, true otherwise
  EarlyStoppingOptions early_stopping;
  uint64_t seed = 0;                     // shuffling (with the epoch); the model's init is the user's
  bool shuffle = true;
  bool group_by_length = false;          // length bucketing (Dataset::length)
  std::filesystem::path output_dir;      // empty: no checkpoints and no log file
  bool overwrite_output_dir = false;     // a fresh run in a directory with checkpoints: error unless set
  int64_t save_every_steps = 0;          // > 0: checkpoint every N steps; and at every evaluation
  int64_t keep_last = 2;                 // checkpoints kept besides the best
  bool progress = true;
  int64_t log_every_steps = 1;           // JSONL step records (every step by default)
  // Replaces fit's evaluation of `validation` (which must still be given, as the signal to
  // evaluate): for metrics a single pass cannot give, such as one per task of a multi-task run.
  // It runs in eval mode under no-grad; metric_for_best must be among its keys.
  std::function<Metrics()> evaluate;
  // Data-parallel training over these processes (see the top of this file); null: one process.
  std::shared_ptr<distributed::ProcessGroup> process_group;
  int64_t bucket_bytes = 25 * 1024 * 1024;  // gradient all-reduce buckets (distributed)
  // Where training runs, as HF's TrainingArguments.device: the Trainer moves the model there when
  // it is constructed (in place: an optimizer made before keeps its parameters) and every batch
  // before the forward function sees it. Unset: the model and batches stay where they are.
  std::optional<Device> device;
  MixedPrecision mixed_precision = MixedPrecision::none;  // see the top of this file
  optim::GradScalerOptions grad_scaler;  // f16's loss scaling (its `enabled` is ignored: f16 always scales)
};

// Live state, visible to callbacks. Callbacks may set should_stop.
struct TrainerState {
  int64_t epoch = 0;              // current epoch (0-based)
  int64_t batch_in_epoch = 0;     // batches of this epoch already consumed
  int64_t global_step = 0;        // optimizer steps taken
  int64_t total_steps = 0;
  double last_loss = 0.0;
  std::optional<double> best_metric;
  int64_t best_step = -1;
  int64_t evaluations_without_improvement = 0;
  int64_t skipped_steps = 0;      // non-finite loss or gradients (neither optimizer nor scheduler stepped)
  int64_t amp_skipped_steps = 0;  // f16: gradients overflowed at the loss scale (skipped the same way)
  int64_t last_eval_step = -1;    // so a resumed run does not evaluate (or save) the same step twice
  int64_t last_save_step = -1;
  bool should_stop = false;
  Metrics last_eval;
  nlohmann::json to_json() const;
  static TrainerState from_json(const nlohmann::json& json);  // FormatError on missing fields
};

class Trainer;
namespace distributed { class DataParallel; }

class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(Trainer&, TrainerState&) {}
  virtual void on_epoch_begin(Trainer&, TrainerState&) {}
  virtual void on_step_end(Trainer&, TrainerState&) {}   // after each optimizer step
  virtual void on_evaluate(Trainer&, TrainerState&, const Metrics&) {}
  virtual void on_epoch_end(Trainer&, TrainerState&) {}
  virtual void on_train_end(Trainer&, TrainerState&) {}
};

struct TrainResult {
  TrainerState state;
  std::vector<double> step_losses;  // mean loss of every optimizer step run in this call
  std::vector<std::pair<int64_t, Metrics>> evaluations;  // (global_step, metrics)
  bool stopped_early = false;
};

class Trainer {
 public:
  // scheduler may be null. A ReduceLROnPlateau scheduler is stepped with metric_for_best after
  // each evaluation; the others after every optimizer step.
  Trainer(nn::Module& model, optim::Optimizer& optimizer, optim::LRScheduler* scheduler, ForwardFn forward,
          TrainerOptions options = {});
  ~Trainer();

  void add_callback(std::shared_ptr<Callback> callback);

  // Trains on `train`, evaluating on `validation` when given. With resume_from, the checkpoint's
  // model, optimizer, scheduler, generator and data position are restored first, and the run
  // continues exactly where that one stopped. The checkpoint must come from a run with the same
  // data size, batch size, accumulation, shuffling and seed (ValueError naming the difference,
  // before anything changes).
  TrainResult fit(const data::Dataset& train, const data::Dataset* validation = nullptr,
                  const std::optional<std::filesystem::path>& resume_from = std::nullopt);
  // One pass in eval mode and no-grad; the model's previous mode is restored.
  Metrics evaluate(const data::Dataset& dataset);
  // fn() in eval mode and no-grad (TrainerOptions::evaluate, or a run's own test evaluation).
  Metrics evaluate_with(const std::function<Metrics()>& fn);

  const TrainerOptions& options() const { return options_; }
  nn::Module& model() { return model_; }
  optim::Optimizer& optimizer() { return optimizer_; }
  // The loss scaler of mixed_precision f16; null otherwise.
  const optim::GradScaler* grad_scaler() const { return scaler_.get(); }

 private:
  data::Batch on_device(data::Batch batch) const;  // moved to options_.device, when set
  // forward_ under the autocast of options_.mixed_precision.
  StepOutput run_forward(const data::Batch& batch, bool training);
  double run_step(const data::Dataset& train, const std::vector<std::vector<int64_t>>& batches, size_t first,
                  size_t count, TrainerState& state, int64_t* samples, MetricAccumulator* metrics);
  bool is_better(double value, const std::optional<double>& best) const;
  bool greater_is_better() const;
  nlohmann::json run_settings(const data::Dataset& train) const;  // what a resume must match
  void clear_gradients();
  bool is_main() const { return !options_.process_group || options_.process_group->rank() == 0; }
  // fn on rank 0 only (everywhere in one process); its exception reaches every rank.
  void on_main(const std::function<void()>& fn);

  nn::Module& model_;
  optim::Optimizer& optimizer_;
  optim::LRScheduler* scheduler_;
  ForwardFn forward_;
  TrainerOptions options_;
  std::vector<std::shared_ptr<Callback>> callbacks_;
  std::unique_ptr<distributed::DataParallel> data_parallel_;  // during a distributed fit
  std::unique_ptr<optim::GradScaler> scaler_;                  // mixed_precision f16 only
};

}  // namespace graft::train
