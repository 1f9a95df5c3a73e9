#include "train/trainer.h"

#include <cmath>
#include <sstream>

#include "autograd/autocast.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tensor/factory.h"
#include "train/checkpoint.h"
#include "train/data/sampler.h"
#include "train/distributed/data_parallel.h"
#include "train/distributed/sampler.h"
#include "train/optim/clip.h"
#include "train/progress.h"
#include "train/run_log.h"

namespace graft::train {

// --- TrainerState ---

nlohmann::json TrainerState::to_json() const {
  nlohmann::json json{{"epoch", epoch},
                      {"batch_in_epoch", batch_in_epoch},
                      {"global_step", global_step},
                      {"total_steps", total_steps},
                      {"last_loss", std::isfinite(last_loss) ? nlohmann::json(last_loss) : nlohmann::json()},
                      {"best_step", best_step},
                      {"evaluations_without_improvement", evaluations_without_improvement},
                      {"skipped_steps", skipped_steps},
                      {"amp_skipped_steps", amp_skipped_steps},
                      {"last_eval_step", last_eval_step},
                      {"last_save_step", last_save_step}};
  json["best_metric"] = best_metric ? nlohmann::json(*best_metric) : nlohmann::json();
  return json;
}

TrainerState TrainerState::from_json(const nlohmann::json& json) {
  TrainerState state;
  try {
    state.epoch = json.at("epoch").get<int64_t>();
    state.batch_in_epoch = json.at("batch_in_epoch").get<int64_t>();
    state.global_step = json.at("global_step").get<int64_t>();
    state.total_steps = json.at("total_steps").get<int64_t>();
    if (json.at("last_loss").is_number()) state.last_loss = json["last_loss"].get<double>();
    if (json.at("best_metric").is_number()) state.best_metric = json["best_metric"].get<double>();
    state.best_step = json.at("best_step").get<int64_t>();
    state.evaluations_without_improvement = json.at("evaluations_without_improvement").get<int64_t>();
    state.skipped_steps = json.at("skipped_steps").get<int64_t>();
    state.amp_skipped_steps = json.value("amp_skipped_steps", int64_t{0});  // absent before mixed precision
    state.last_eval_step = json.at("last_eval_step").get<int64_t>();
    state.last_save_step = json.at("last_save_step").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("trainer state in checkpoint is incomplete: ") + e.what());
  }
  if (state.epoch < 0 || state.batch_in_epoch < 0 || state.global_step < 0) {
    throw FormatError("trainer state in checkpoint has a negative position");
  }
  return state;
}

const char* mixed_precision_name(MixedPrecision mode) {
  switch (mode) {
    case MixedPrecision::none: return "none";
    case MixedPrecision::bf16: return "bf16";
    case MixedPrecision::f16: return "f16";
  }
  return "unknown";
}

MixedPrecision parse_mixed_precision(const std::string& name) {
  for (MixedPrecision mode : {MixedPrecision::none, MixedPrecision::bf16, MixedPrecision::f16})
    if (name == mixed_precision_name(mode)) return mode;
  throw ValueError("mixed_precision: \"" + name + "\" is not one of none, bf16, f16");
}

// --- Trainer ---

namespace {

// The autocast dtype of a mixed-precision mode; nullopt for none.
std::optional<DType> autocast_for(MixedPrecision mode) {
  if (mode == MixedPrecision::bf16) return DType::bf16;
  if (mode == MixedPrecision::f16) return DType::f16;
  return std::nullopt;
}

std::string format_metrics(const Metrics& metrics) {
  std::ostringstream out;
  out.precision(4);
  bool first = true;
  for (const auto& [name, value] : metrics) {
    out << (first ? "" : "  ") << name << "=" << std::fixed << value;
    first = false;
  }
  return out.str();
}

std::vector<Tensor> trainable_parameters(const optim::Optimizer& optimizer) {
  std::vector<Tensor> params;
  for (const auto& group : optimizer.param_groups()) {
    for (const auto& p : group.params) {
      if (p.requires_grad()) params.push_back(p);
    }
  }
  return params;
}

}  // namespace

Trainer::Trainer(nn::Module& model, optim::Optimizer& optimizer, optim::LRScheduler* scheduler, ForwardFn forward,
                 TrainerOptions options)
    : model_(model), optimizer_(optimizer), scheduler_(scheduler), forward_(std::move(forward)),
      options_(std::move(options)) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw ValueError("Trainer: " + what);
  };
  require(static_cast<bool>(forward_), "forward function is empty");
  require(options_.batch_size > 0, "batch_size must be > 0, got " + std::to_string(options_.batch_size));
  require(options_.eval_batch_size >= 0, "eval_batch_size must be >= 0");
  require(options_.epochs >= 0, "epochs must be >= 0, got " + std::to_string(options_.epochs));
  require(options_.accumulation_steps >= 1, "accumulation_steps must be >= 1, got " +
                                                std::to_string(options_.accumulation_steps));
  require(options_.max_grad_norm >= 0 && options_.clip_value >= 0, "clipping thresholds must be >= 0");
  require(options_.early_stopping.patience >= 0, "early_stopping.patience must be >= 0");
  require(options_.keep_last >= 1, "keep_last must be >= 1");
  require(options_.log_every_steps >= 1, "log_every_steps must be >= 1");
  if (scheduler_ && &scheduler_->optimizer() != &optimizer_) {
    throw ValueError("Trainer: the scheduler is bound to another optimizer");
  }
  if (options_.device) model_.to(*options_.device);
  require(options_.mixed_precision == MixedPrecision::none || options_.mixed_precision == MixedPrecision::bf16 ||
              options_.mixed_precision == MixedPrecision::f16,
          "mixed_precision must be none, bf16 or f16");
  if (options_.mixed_precision == MixedPrecision::f16) {
    optim::GradScalerOptions scaler_options = options_.grad_scaler;
    scaler_options.enabled = true;
    scaler_ = std::make_unique<optim::GradScaler>(scaler_options);
  }
}

Trainer::~Trainer() = default;

void Trainer::on_main(const std::function<void()>& fn) {
  const auto& group = options_.process_group;
  if (!group || group->world_size() == 1) {
    fn();
    return;
  }
  // Rank 0 runs fn; its outcome ("" or a kind and a message) reaches every rank, which also makes
  // this a barrier: no rank goes on before rank 0 has written.
  std::string outcome;
  std::exception_ptr error;
  if (group->rank() == 0) {
    try {
      fn();
    } catch (const ValueError& e) {
      outcome = std::string("V") + e.what();
      error = std::current_exception();
    } catch (const IOError& e) {
      outcome = std::string("I") + e.what();
      error = std::current_exception();
    } catch (const std::exception& e) {
      outcome = std::string("E") + e.what();
      error = std::current_exception();
    }
  }
  outcome = group->broadcast_bytes(outcome, 0);
  if (error) std::rethrow_exception(error);
  if (outcome.empty()) return;
  const std::string message = outcome.substr(1);
  if (outcome[0] == 'V') throw ValueError(message);
  if (outcome[0] == 'I') throw IOError(message);
  throw distributed::DistributedError("rank 0 failed: " + message);
}

void Trainer::add_callback(std::shared_ptr<Callback> callback) {
  if (!callback) throw ValueError("Trainer::add_callback: null callback");
  callbacks_.push_back(std::move(callback));
}

bool Trainer::greater_is_better() const {
  if (options_.greater_is_better) return *options_.greater_is_better;
  const std::string& m = options_.metric_for_best;
  return !(m == "loss" || m == "mse" || m == "mae" || m == "rmse");
}

bool Trainer::is_better(double value, const std::optional<double>& best) const {
  if (!std::isfinite(value)) return false;
  if (!best) return true;
  return greater_is_better() ? value > *best : value < *best;
}

void Trainer::clear_gradients() {
  for (const auto& p : model_.parameters()) p.set_grad(Tensor());
  optimizer_.zero_grad();  // also parameters the optimizer holds outside the model
}

nlohmann::json Trainer::run_settings(const data::Dataset& train) const {
  nlohmann::json settings{{"examples", train.size()},         {"batch_size", options_.batch_size},
                          {"accumulation_steps", options_.accumulation_steps}, {"shuffle", options_.shuffle},
                          {"seed", options_.seed},            {"group_by_length", options_.group_by_length}};
  // Only distributed runs record it, so that checkpoints of one process stay as they were.
  if (options_.process_group) settings["world_size"] = options_.process_group->world_size();
  return settings;
}

Metrics Trainer::evaluate(const data::Dataset& dataset) {
  const bool was_training = model_.is_training();
  model_.eval();
  NoGradGuard no_grad;
  std::optional<AutocastGuard> autocast;  // evaluation computes as training does
  if (const auto dtype = autocast_for(options_.mixed_precision)) autocast.emplace(*dtype);
  data::BatchSamplerOptions sampler_options;
  sampler_options.batch_size = options_.eval_batch_size > 0 ? options_.eval_batch_size : options_.batch_size;
  sampler_options.shuffle = false;
  const auto& group = options_.process_group;
  const bool distributed = group && group->world_size() > 1;
  std::vector<int64_t> indices_here;  // distributed: this rank's contiguous share of the examples
  if (distributed) {
    const auto [begin, end] = distributed::evaluation_shard(dataset.size(), group->rank(), group->world_size());
    for (int64_t i = begin; i < end; ++i) indices_here.push_back(i);
  }
  MetricAccumulator accumulator(options_.task, options_.num_classes);
  bool has_outputs = false;
  // Distributed: what every rank needs to compute the same metrics, in dataset order: the loss
  // sum and count, then per batch the predictions (argmax ids, or values) and the labels.
  std::vector<double> shared{0.0, 0.0, 0.0};  // loss sum, loss count, has outputs
  try {
    if (!distributed || !indices_here.empty()) {
      data::BatchSampler sampler = distributed ? data::BatchSampler(indices_here, sampler_options)
                                               : data::BatchSampler(dataset.size(), sampler_options);
      for (const auto& indices : sampler.batches(0)) {
        data::Batch batch = on_device(dataset.collate(indices));
        StepOutput out = forward_(batch, false);
        const auto n = static_cast<int64_t>(indices.size());
        if (out.loss.defined()) {
          accumulator.add_loss(out.loss.item() * static_cast<double>(n), n);
          shared[0] += out.loss.item() * static_cast<double>(n);
          shared[1] += static_cast<double>(n);
        }
        auto labels = batch.find("labels");
        if (out.outputs.defined() && labels != batch.end()) {
          has_outputs = true;
          if (!distributed) {
            accumulator.add(out.outputs, labels->second);
            continue;
          }
          shared[2] = 1.0;
          Tensor predicted;
          if (options_.task == MetricAccumulator::Task::classification) {
            predicted = out.outputs.dim() >= 2 ? argmax(out.outputs.reshape({-1, out.outputs.size(-1)}), 1)
                                               : out.outputs;
          } else {
            predicted = out.outputs;
          }
          auto p = predicted.to(DType::f64).reshape({-1}).to_vector<double>();
          auto l = labels->second.to(DType::f64).reshape({-1}).to_vector<double>();
          if (p.size() != l.size()) {
            throw ShapeError("Trainer::evaluate: outputs " + shape_str(out.outputs.shape()) + " give " +
                             std::to_string(p.size()) + " predictions for labels " +
                             shape_str(labels->second.shape()));
          }
          shared.push_back(static_cast<double>(p.size()));
          shared.insert(shared.end(), p.begin(), p.end());
          shared.insert(shared.end(), l.begin(), l.end());
        }
      }
    }
  } catch (...) {
    model_.train(was_training);
    throw;
  }
  model_.train(was_training);
  if (distributed) {
    accumulator = MetricAccumulator(options_.task, options_.num_classes);
    has_outputs = false;
    const auto parts = group->all_gather(shared);
    for (const auto& part : parts) {
      if (part.size() < 3) throw distributed::DistributedError("Trainer::evaluate: a rank sent no evaluation");
      if (part[1] > 0) accumulator.add_loss(part[0], static_cast<int64_t>(part[1]));
      has_outputs = has_outputs || part[2] != 0;
      for (size_t k = 3; k < part.size();) {
        const auto n = static_cast<size_t>(part[k]);
        std::vector<double> p(part.begin() + static_cast<std::ptrdiff_t>(k + 1),
                              part.begin() + static_cast<std::ptrdiff_t>(k + 1 + n));
        std::vector<double> l(part.begin() + static_cast<std::ptrdiff_t>(k + 1 + n),
                              part.begin() + static_cast<std::ptrdiff_t>(k + 1 + 2 * n));
        const Shape shape{static_cast<int64_t>(n)};
        if (options_.task == MetricAccumulator::Task::classification) {
          std::vector<int64_t> pi(p.begin(), p.end()), li(l.begin(), l.end());
          accumulator.add(from_vector(pi, shape), from_vector(li, shape));
        } else {
          accumulator.add(from_vector(p, shape), from_vector(l, shape));
        }
        k += 1 + 2 * n;
      }
    }
  }
  if (!has_outputs) {
    Metrics metrics;
    Metrics all = accumulator.compute();
    if (all.count("loss")) metrics["loss"] = all["loss"];
    return metrics;
  }
  return accumulator.compute();
}

Metrics Trainer::evaluate_with(const std::function<Metrics()>& fn) {
  const bool was_training = model_.is_training();
  model_.eval();
  NoGradGuard no_grad;
  std::optional<AutocastGuard> autocast;
  if (const auto dtype = autocast_for(options_.mixed_precision)) autocast.emplace(*dtype);
  try {
    Metrics metrics = fn();
    model_.train(was_training);
    return metrics;
  } catch (...) {
    model_.train(was_training);
    throw;
  }
}

data::Batch Trainer::on_device(data::Batch batch) const {
  return options_.device ? data::to_device(batch, *options_.device) : batch;
}

StepOutput Trainer::run_forward(const data::Batch& batch, bool training) {
  std::optional<AutocastGuard> autocast;
  if (const auto dtype = autocast_for(options_.mixed_precision)) autocast.emplace(*dtype);
  return forward_(batch, training);
}

double Trainer::run_step(const data::Dataset& train, const std::vector<std::vector<int64_t>>& batches, size_t first,
                         size_t count, TrainerState& state, int64_t* samples, MetricAccumulator* metrics) {
  double loss_sum = 0;
  bool finite = true;
  if (data_parallel_) {
    // Which parameters train may change between steps (gradual unfreezing, on every rank alike):
    // then the buckets are rebuilt over the new set (the weights are already the same everywhere).
    std::vector<Tensor> params = model_.parameters();
    for (const auto& g : optimizer_.param_groups()) params.insert(params.end(), g.params.begin(), g.params.end());
    if (!data_parallel_->covers(params)) {
      distributed::DataParallelOptions dp_options;
      dp_options.bucket_bytes = options_.bucket_bytes;
      dp_options.broadcast_at_start = false;
      data_parallel_.reset();
      data_parallel_ = std::make_unique<distributed::DataParallel>(model_, params, options_.process_group, dp_options);
    }
  }
  distributed::DataParallel* dp = data_parallel_.get();
  try {
    for (size_t j = first; j < first + count; ++j) {
      // Distributed: the micro-batches before the last accumulate locally; the last one's
      // backward reduces the step's whole gradient.
      if (dp) dp->set_sync(j + 1 == first + count);
      data::Batch batch = on_device(train.collate(batches[j]));
      StepOutput out = run_forward(batch, true);
      if (!out.loss.defined() || out.loss.numel() != 1) {
        throw ShapeError("Trainer: the forward function must return a scalar loss, got " +
                         (out.loss.defined() ? shape_str(out.loss.shape()) : std::string("an undefined tensor")));
      }
      const double value = out.loss.item();
      *samples += static_cast<int64_t>(batches[j].size());
      // The step's training metrics (accuracy, or mse for regression), from outputs it computed anyway.
      if (auto labels = batch.find("labels"); out.outputs.defined() && labels != batch.end()) {
        NoGradGuard no_grad;
        metrics->add(out.outputs.detach(), labels->second);
      }
      loss_sum += value;
      if (!std::isfinite(value)) {
        finite = false;
        continue;  // its gradients would be NaN anyway
      }
      // Average over the batches actually in this step, so a short last step is not down-weighted.
      // f16: backward on the scaled loss, so that small gradients survive f16's range.
      const Tensor step_loss = out.loss / static_cast<double>(count);
      (scaler_ ? scaler_->scale(step_loss) : step_loss).backward();
    }
    if (dp) {
      dp->set_sync(true);
      dp->finish();  // every rank, every step: the averaged gradients
      // The step's loss and samples over all ranks, and whether any rank's loss was not finite
      // (so every rank takes the same decision).
      std::vector<double> totals{loss_sum, static_cast<double>(*samples), finite ? 0.0 : 1.0};
      options_.process_group->all_reduce(totals);
      loss_sum = totals[0] / static_cast<double>(options_.process_group->world_size());
      *samples = static_cast<int64_t>(totals[1]);
      finite = totals[2] == 0;
    }
  } catch (...) {
    if (dp) dp->set_sync(true);
    clear_gradients();  // no half-accumulated step survives into the next fit
    throw;
  }
  const double loss = loss_sum / static_cast<double>(count);
  const std::vector<Tensor> params = trainable_parameters(optimizer_);
  // f16: the true gradients from here on (clipping must see them). Gradients that overflowed at
  // this loss scale are the scaler's business, not an error: skip the step, back the scale off.
  if (finite && scaler_) {
    scaler_->unscale_(optimizer_);
    if (scaler_->found_inf(optimizer_)) {
      clear_gradients();
      scaler_->update();
      ++state.amp_skipped_steps;
      return loss;
    }
  }
  const bool grads_ok = finite && (scaler_ || optim::grads_are_finite(params));  // the scaler has checked
  if (!grads_ok) {
    const std::string what = std::string(finite ? "gradients are" : "loss is") + " not finite at step " +
                             std::to_string(state.global_step + 1) + " (loss " + std::to_string(loss) + ")";
    clear_gradients();
    if (options_.non_finite == NonFinitePolicy::stop) {
      throw NumericError("Trainer: " + what + "; stopping (non_finite = stop)");
    }
    ++state.skipped_steps;
    return loss;
  }
  if (options_.clip_value > 0) optim::clip_grad_value(params, options_.clip_value);
  if (options_.max_grad_norm > 0) optim::clip_grad_norm(params, options_.max_grad_norm);
  if (scaler_) {
    scaler_->step(optimizer_);  // the gradients are unscaled and finite: it steps
    scaler_->update();
  } else {
    optimizer_.step();
  }
  clear_gradients();
  return loss;
}

TrainResult Trainer::fit(const data::Dataset& train, const data::Dataset* validation,
                         const std::optional<std::filesystem::path>& resume_from) {
  if (train.size() == 0) throw ValueError("Trainer::fit: the training set is empty");
  if (scheduler_ && scheduler_->needs_metric() && !validation) {
    throw ValueError("Trainer::fit: " + scheduler_->name() + " steps on a validation metric; pass a validation set");
  }
  data::BatchSamplerOptions sampler_options;
  sampler_options.batch_size = options_.batch_size;
  sampler_options.shuffle = options_.shuffle;
  sampler_options.seed = options_.seed;
  if (options_.group_by_length) sampler_options.lengths = data::example_lengths(train);
  const auto& group = options_.process_group;
  const bool main_rank = is_main();
  // Distributed: this rank's shard of every global batch of batch_size * world_size examples.
  std::optional<data::BatchSampler> sampler;
  std::optional<distributed::DistributedBatchSampler> dist_sampler;
  if (group) {
    dist_sampler.emplace(train.size(), sampler_options, group->rank(), group->world_size());
  } else {
    sampler.emplace(train.size(), sampler_options);
  }
  const int64_t batches_per_epoch = group ? dist_sampler->batches_per_epoch() : sampler->batches_per_epoch();
  const int64_t steps_per_epoch = (batches_per_epoch + options_.accumulation_steps - 1) / options_.accumulation_steps;

  TrainResult result;
  TrainerState& state = result.state;
  if (resume_from) {
    // Everything about the trainer's side is checked before load_checkpoint changes anything.
    const nlohmann::json saved = read_trainer_state(*resume_from);
    state = TrainerState::from_json(saved);
    const nlohmann::json settings = run_settings(train);
    if (!saved.contains("run") || saved["run"] != settings) {
      throw ValueError("Trainer::fit: checkpoint " + resume_from->string() + " was written by a run with " +
                       (saved.contains("run") ? saved["run"].dump() : std::string("unknown settings")) +
                       "; this run has " + settings.dump() + " (the batches would not be the same)");
    }
    if (state.batch_in_epoch >= batches_per_epoch) {
      throw ValueError("Trainer::fit: checkpoint position (batch " + std::to_string(state.batch_in_epoch) +
                       ") is past this data set's " + std::to_string(batches_per_epoch) + " batches per epoch");
    }
    // The loss scale (f16) is checked before anything changes too, and set after the rest.
    std::optional<optim::GradScaler> scaler_state;
    if (scaler_ && saved.contains("grad_scaler")) {
      scaler_state.emplace(*scaler_);
      scaler_state->load_state_dict(saved["grad_scaler"]);
    }
    load_checkpoint(*resume_from, model_, &optimizer_, scheduler_);
    if (scaler_state) *scaler_ = *scaler_state;
  }
  // Distributed: rank 0's weights everywhere, and the gradient hooks for this fit.
  struct ResetOnExit {
    std::unique_ptr<distributed::DataParallel>& dp;
    ~ResetOnExit() { dp.reset(); }
  } reset_data_parallel{data_parallel_};
  if (group) {
    distributed::DataParallelOptions dp_options;
    dp_options.bucket_bytes = options_.bucket_bytes;
    std::vector<Tensor> extra;
    for (const auto& g : optimizer_.param_groups()) extra.insert(extra.end(), g.params.begin(), g.params.end());
    data_parallel_ = std::make_unique<distributed::DataParallel>(model_, extra, group, dp_options);
  }
  state.total_steps = options_.max_steps > 0 ? options_.max_steps : options_.epochs * steps_per_epoch;

  std::unique_ptr<CheckpointManager> checkpoints;
  RunLog log;
  const bool has_output = !options_.output_dir.empty();
  if (has_output) {
    on_main([&] {  // distributed: only rank 0 writes
      const auto checkpoint_dir = options_.output_dir / "checkpoints";
      if (!resume_from && std::filesystem::exists(checkpoint_dir / "checkpoints.json")) {
        if (!options_.overwrite_output_dir) {
          throw ValueError("Trainer::fit: " + checkpoint_dir.string() + " holds another run's checkpoints; resume "
                           "from one of them, choose another output_dir, or set overwrite_output_dir");
        }
        std::filesystem::remove_all(checkpoint_dir);
      }
      std::filesystem::create_directories(options_.output_dir);
      checkpoints = std::make_unique<CheckpointManager>(checkpoint_dir, options_.keep_last);
      log = RunLog(options_.output_dir / "log.jsonl", /*append=*/resume_from.has_value());
    });
  }
  ProgressBar progress(state.total_steps, {.enabled = options_.progress && main_rank});
  std::map<std::string, Tensor> best_weights;  // in memory, for restore_best
  int64_t best_weights_step = -1;
  bool last_save_had_metric = false;
  // Completed epochs as a fraction, as Hugging Face logs it.
  auto epoch_progress = [&] {
    return static_cast<double>(state.epoch) +
           static_cast<double>(state.batch_in_epoch) / static_cast<double>(batches_per_epoch);
  };

  auto save = [&](std::optional<double> metric) {
    // A step already saved is saved again only to attach an evaluation's metric to it.
    // (Decided the same on every rank: has_output, not whether this rank holds the checkpoints.)
    if (!has_output || (state.last_save_step == state.global_step && (last_save_had_metric || !metric))) return;
    state.last_save_step = state.global_step;
    nlohmann::json trainer_state = state.to_json();
    trainer_state["run"] = run_settings(train);
    if (scaler_) trainer_state["grad_scaler"] = scaler_->state_dict();
    on_main([&] {
      checkpoints->save(state.global_step, model_, &optimizer_, scheduler_, trainer_state, metric, greater_is_better());
    });
    last_save_had_metric = metric.has_value();
  };
  auto run_evaluation = [&]() {
    if (!validation || state.last_eval_step == state.global_step) return;
    state.last_eval_step = state.global_step;
    Metrics metrics = options_.evaluate ? evaluate_with(options_.evaluate) : evaluate(*validation);
    state.last_eval = metrics;
    result.evaluations.emplace_back(state.global_step, metrics);
    auto it = metrics.find(options_.metric_for_best);
    if (it == metrics.end()) {
      throw ValueError("Trainer: metric_for_best '" + options_.metric_for_best + "' is not among the evaluation's (" +
                       format_metrics(metrics) + ")");
    }
    const double value = it->second;
    if (scheduler_ && scheduler_->needs_metric()) scheduler_->step(value);
    // Patience: reset only by an improvement of more than min_delta over the best so far.
    const bool enough = is_better(value, state.best_metric) &&
                        (!state.best_metric || std::abs(value - *state.best_metric) > options_.early_stopping.min_delta);
    state.evaluations_without_improvement = enough ? 0 : state.evaluations_without_improvement + 1;
    if (is_better(value, state.best_metric)) {  // the best model is the strictly best one
      state.best_metric = value;
      state.best_step = state.global_step;
      if (options_.early_stopping.restore_best) {
        best_weights.clear();
        for (auto& [name, tensor] : model_.state_dict()) best_weights[name] = tensor.clone();
        best_weights_step = state.global_step;
      }
    }
    if (options_.early_stopping.patience > 0 &&
        state.evaluations_without_improvement >= options_.early_stopping.patience) {
      state.should_stop = true;
      result.stopped_early = true;
    }
    nlohmann::json record{{"event", "eval"}, {"step", state.global_step}, {"epoch", epoch_progress()}};
    for (const auto& [name, metric] : metrics) record[name] = metric;
    if (state.best_metric) record["best_" + options_.metric_for_best] = *state.best_metric;
    log.write(record);
    progress.message("eval at step " + std::to_string(state.global_step) + ": " + format_metrics(metrics));
    for (auto& callback : callbacks_) callback->on_evaluate(*this, state, metrics);
    save(value);
  };

  clear_gradients();  // gradients from before fit() must not leak into the first step
  model_.train();
  for (auto& callback : callbacks_) callback->on_train_begin(*this, state);
  while (!state.should_stop && state.global_step < state.total_steps &&
         (options_.max_steps > 0 || state.epoch < options_.epochs)) {
    const auto batches = group ? dist_sampler->batches(state.epoch) : sampler->batches(state.epoch);
    if (state.batch_in_epoch == 0) {
      for (auto& callback : callbacks_) callback->on_epoch_begin(*this, state);
    }
    while (state.batch_in_epoch < batches_per_epoch && !state.should_stop && state.global_step < state.total_steps) {
      const int64_t count = std::min(options_.accumulation_steps, batches_per_epoch - state.batch_in_epoch);
      int64_t samples = 0;
      const int64_t skipped_before = state.skipped_steps, amp_skipped_before = state.amp_skipped_steps;
      MetricAccumulator step_metrics(options_.task, options_.num_classes);
      const double loss = run_step(train, batches, static_cast<size_t>(state.batch_in_epoch),
                                   static_cast<size_t>(count), state, &samples, &step_metrics);
      const bool amp_skipped = state.amp_skipped_steps != amp_skipped_before;  // f16 overflow
      const bool skipped = state.skipped_steps != skipped_before || amp_skipped;
      state.batch_in_epoch += count;
      ++state.global_step;
      state.last_loss = loss;
      result.step_losses.push_back(loss);
      // As Hugging Face: a skipped optimizer step does not advance the schedule.
      if (scheduler_ && !scheduler_->needs_metric() && !skipped) scheduler_->step();
      const double lr = optimizer_.param_groups().empty() ? 0.0 : optimizer_.param_groups()[0].lr;
      if (state.global_step % options_.log_every_steps == 0 || skipped) {
        nlohmann::json lrs = nlohmann::json::array();
        for (const auto& group : optimizer_.param_groups()) lrs.push_back(group.lr);
        nlohmann::json record{{"event", "step"}, {"step", state.global_step}, {"epoch", epoch_progress()},
                              {"loss", loss}, {"lr", lrs}, {"samples", samples}};
        if (skipped)
          record["skipped"] = amp_skipped ? "f16 gradients overflowed; loss scale backed off"
                                          : "non-finite loss or gradients";
        if (scaler_) {
          record["amp_skipped"] = state.amp_skipped_steps;
          record["loss_scale"] = scaler_->get_scale();
        }
        if (step_metrics.count() > 0) {
          const Metrics m = step_metrics.compute();
          for (const char* key : {"accuracy", "mse"})
            if (m.count(key)) record[std::string("train_") + key] = m.at(key);
        }
        log.write(record);
      }
      if (amp_skipped) {
        progress.message("step " + std::to_string(state.global_step) + ": f16 gradients overflowed, step skipped, " +
                         "loss scale now " + std::to_string(scaler_->get_scale()));
      } else if (skipped) {
        progress.message("step " + std::to_string(state.global_step) + ": non-finite loss or gradients, step skipped");
      }
      progress.update(state.global_step, loss, lr, samples);
      for (auto& callback : callbacks_) callback->on_step_end(*this, state);
      const bool epoch_done = state.batch_in_epoch >= batches_per_epoch;
      if (epoch_done) {
        // Move to the next epoch before evaluating and saving, so a checkpoint written now
        // resumes at the start of the next epoch instead of replaying this one's end.
        for (auto& callback : callbacks_) callback->on_epoch_end(*this, state);
        ++state.epoch;
        state.batch_in_epoch = 0;
      }
      if (epoch_done || (options_.eval_every_steps > 0 && state.global_step % options_.eval_every_steps == 0)) {
        run_evaluation();
      }
      if (options_.save_every_steps > 0 && state.global_step % options_.save_every_steps == 0) save(std::nullopt);
      if (epoch_done) break;
    }
  }
  run_evaluation();  // a no-op when this step was just evaluated
  save(std::nullopt);
  progress.finish();

  if (options_.early_stopping.restore_best && validation && state.best_step >= 0 &&
      state.best_step != state.global_step) {
    std::string restored;
    if (best_weights_step == state.best_step) {
      model_.load_state_dict(best_weights);
      restored = "from memory";
    } else if (checkpoints) {
      // After a resume the best may predate this process: take it from its checkpoint.
      for (const auto& entry : checkpoints->entries()) {
        if (entry.step != state.best_step) continue;
        load_checkpoint(checkpoints->directory() / entry.file, model_, nullptr, nullptr, /*restore_rng=*/false);
        restored = entry.file;
      }
    }
    if (restored.empty()) {
      progress.message("could not restore the best weights (step " + std::to_string(state.best_step) +
                       "): they were neither kept in this process nor checkpointed; keeping the last weights");
      log.write({{"event", "restore_best_unavailable"}, {"step", state.best_step}});
    } else {
      progress.message("restored the weights of step " + std::to_string(state.best_step) + " (" +
                       options_.metric_for_best + " " + std::to_string(*state.best_metric) + ", " + restored + ")");
      log.write({{"event", "restore_best"}, {"step", state.best_step}, {options_.metric_for_best, *state.best_metric}});
    }
    // Distributed: rank 0 may have restored from its checkpoint; its weights everywhere.
    if (data_parallel_) data_parallel_->broadcast_parameters_and_buffers();
  }
  for (auto& callback : callbacks_) callback->on_train_end(*this, state);
  return result;
}

}  // namespace graft::train
