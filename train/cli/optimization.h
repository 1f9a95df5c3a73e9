// How a `graft finetune` run trains, shared by text and forecaster runs: the optimizer, the
// schedule, the class weights, the number of optimizer steps and the Trainer's options.
// Parameters are grouped by (layer depth, decay or not): depth 0 is the head and gets
// strategy.head_lr (default optim.lr); depth k gets lr * strategy.layer_lr_decay^k (discriminative
// learning rates); biases, LayerNorm weights and other 1-D tensors form the no-decay groups.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "nn/module.h"
#include "train/cli/run_config.h"
#include "train/optim/optimizer.h"
#include "train/optim/scheduler.h"
#include "train/trainer.h"

namespace graft::cli {

// The lr of the layer group at `depth`.
double group_lr(const RunConfig& config, int64_t depth);

// One group per (depth, decay) over the parameters of `module` in `trainable`, deepest first.
// ValueError when nothing is trainable.
std::unique_ptr<optim::Optimizer> make_optimizer(const RunConfig& config, nn::Module& module,
                                                 const std::function<int64_t(const std::string&)>& depth,
                                                 const std::set<const TensorImpl*>& trainable);

// schedule.type over total_steps optimizer steps, with schedule.warmup_ratio of them warming up.
std::unique_ptr<optim::LRScheduler> make_scheduler(const ScheduleConfig& config, optim::Optimizer& optimizer,
                                                   int64_t total_steps);

// `graft info`'s table of layer groups: per depth (0 = the head), the parameters, how many train,
// and the lr; depth_name(d) may add a word after the number (" (head)", " (gru layer 0)").
std::string describe_layer_groups(const RunConfig& config, nn::Module& module,
                                  const std::function<int64_t(const std::string&)>& depth,
                                  const std::set<const TensorImpl*>& trainable,
                                  const std::function<std::string(int64_t)>& depth_name);

// Optimizer steps of the run: train.max_steps when set, else epochs x steps per epoch over
// `train_examples` in batches of train.batch_size, train.accumulation_steps batches a step.
int64_t total_steps(const TrainConfig& config, int64_t train_examples);

// The Trainer's options from the train section and output_dir (the task-specific ones, such as
// the metric task, num_classes and length bucketing, are the caller's).
train::TrainerOptions trainer_options(const RunConfig& config);

// train.class_weights as the loss's per-class weights [num_labels] (undefined for "none"):
// "balanced" is scikit-learn's n / (C * n_c) over the training labels; a list is taken as given.
// ValueError for a list of the wrong length or a class without training examples under balanced.
Tensor class_weights(const TrainConfig& config, const std::vector<int64_t>& train_labels, int64_t num_labels);

}  // namespace graft::cli
