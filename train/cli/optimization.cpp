#include "train/cli/optimization.h"

#include <cmath>
#include <map>
#include <sstream>
#include <vector>

#include "tensor/error.h"
#include "tensor/factory.h"
#include "train/optim/adam.h"
#include "train/optim/param_groups.h"
#include "train/optim/sgd.h"

namespace graft::cli {

double group_lr(const RunConfig& config, int64_t depth) {
  const double base = depth == 0 ? config.strategy.head_lr.value_or(config.optim.lr) : config.optim.lr;
  return base * std::pow(config.strategy.layer_lr_decay, static_cast<double>(depth));
}

std::unique_ptr<optim::Optimizer> make_optimizer(const RunConfig& config, nn::Module& module,
                                                 const std::function<int64_t(const std::string&)>& depth,
                                                 const std::set<const TensorImpl*>& trainable) {
  std::map<std::pair<int64_t, bool>, optim::ParamGroup> groups;  // keyed by (-depth, decay): deepest first
  for (const auto& [name, p] : module.named_parameters()) {
    if (!trainable.count(p.impl())) continue;
    const int64_t d = depth(name);
    const bool decay = !optim::is_no_decay_name(name) && p.dim() > 1;
    optim::ParamGroup& g = groups[{-d, decay}];
    if (g.params.empty()) {
      g.name = "depth" + std::to_string(d) + (decay ? ".decay" : ".no_decay");
      g.lr = group_lr(config, d);
      g.weight_decay = decay ? config.optim.weight_decay : 0.0;
      g.l1 = decay ? config.optim.l1 : 0.0;
      g.beta1 = config.optim.beta1, g.beta2 = config.optim.beta2, g.eps = config.optim.eps;
      g.momentum = config.optim.momentum;
    }
    g.params.push_back(p);
    g.param_names.push_back(name);
  }
  std::vector<optim::ParamGroup> list;
  for (auto& [key, g] : groups) list.push_back(std::move(g));
  if (list.empty()) throw ValueError("finetune: nothing to train (every parameter is frozen)");
  if (config.optim.name == "adamw") return std::make_unique<optim::AdamW>(std::move(list));
  if (config.optim.name == "adam") return std::make_unique<optim::Adam>(std::move(list));
  return std::make_unique<optim::SGD>(std::move(list));
}

std::unique_ptr<optim::LRScheduler> make_scheduler(const ScheduleConfig& config, optim::Optimizer& optimizer,
                                                   int64_t total_steps) {
  const auto warmup = static_cast<int64_t>(std::llround(config.warmup_ratio * static_cast<double>(total_steps)));
  if (config.type == "linear") return std::make_unique<optim::LinearWithWarmupLR>(optimizer, warmup, total_steps);
  if (config.type == "cosine") return std::make_unique<optim::CosineWithWarmupLR>(optimizer, warmup, total_steps);
  if (config.type == "constant") return std::make_unique<optim::ConstantLR>(optimizer, warmup);
  if (config.type == "slanted_triangular")
    return std::make_unique<optim::SlantedTriangularLR>(optimizer, total_steps,
                                                        config.warmup_ratio > 0 ? config.warmup_ratio : 0.1);
  optim::OneCycleOptions options;
  options.total_steps = total_steps + 1;  // the scheduler also steps after the last optimizer step
  if (config.warmup_ratio > 0) options.pct_start = config.warmup_ratio;
  return std::make_unique<optim::OneCycleLR>(optimizer, options);
}

std::string describe_layer_groups(const RunConfig& config, nn::Module& module,
                                  const std::function<int64_t(const std::string&)>& depth,
                                  const std::set<const TensorImpl*>& trainable,
                                  const std::function<std::string(int64_t)>& depth_name) {
  std::map<int64_t, std::pair<int64_t, int64_t>> per_depth;  // depth -> (parameters, trainable)
  for (const auto& [name, p] : module.named_parameters()) {
    auto& [all, trained] = per_depth[depth(name)];
    all += p.numel();
    if (trainable.count(p.impl())) trained += p.numel();
  }
  std::ostringstream out;
  for (const auto& [d, counts] : per_depth)
    out << "  depth " << d << depth_name(d) << ": " << counts.first << " parameters, " << counts.second
        << " trainable, lr " << group_lr(config, d) << "\n";
  return out.str();
}

int64_t total_steps(const TrainConfig& config, int64_t train_examples) {
  if (config.max_steps > 0) return config.max_steps;
  const int64_t batches = (train_examples + config.batch_size - 1) / config.batch_size;
  return config.epochs * ((batches + config.accumulation_steps - 1) / config.accumulation_steps);
}

train::TrainerOptions trainer_options(const RunConfig& config) {
  train::TrainerOptions options;
  options.epochs = config.train.epochs;
  options.max_steps = config.train.max_steps;
  options.batch_size = config.train.batch_size;
  options.eval_batch_size = config.train.eval_batch_size;
  options.accumulation_steps = config.train.accumulation_steps;
  options.max_grad_norm = config.train.max_grad_norm;
  options.eval_every_steps = config.train.eval_every_steps;
  options.metric_for_best = config.train.metric_for_best;
  options.early_stopping.patience = config.train.early_stopping_patience;
  options.early_stopping.restore_best = config.train.restore_best;
  options.seed = config.train.seed;
  options.output_dir = config.output_dir;
  options.overwrite_output_dir = config.overwrite;
  options.progress = config.train.progress;
  options.mixed_precision = train::parse_mixed_precision(config.train.mixed_precision);
  options.device = parse_device(config.train.device);
  return options;
}

Tensor class_weights(const TrainConfig& config, const std::vector<int64_t>& train_labels, int64_t num_labels) {
  if (config.class_weights == "none") return Tensor();
  std::vector<float> w(static_cast<size_t>(num_labels));
  if (config.class_weights == "values") {
    if (static_cast<int64_t>(config.class_weight_values.size()) != num_labels)
      throw ValueError("train.class_weights: " + std::to_string(config.class_weight_values.size()) +
                       " weights for " + std::to_string(num_labels) + " labels");
    for (size_t c = 0; c < w.size(); ++c) w[c] = static_cast<float>(config.class_weight_values[c]);
  } else {  // balanced, as scikit-learn: n / (C * n_c)
    std::vector<int64_t> count(static_cast<size_t>(num_labels), 0);
    for (int64_t y : train_labels) ++count[static_cast<size_t>(y)];
    for (size_t c = 0; c < w.size(); ++c) {
      if (count[c] == 0) throw ValueError("train.class_weights balanced: label " + std::to_string(c) + " has no training example");
      w[c] = static_cast<float>(static_cast<double>(train_labels.size()) / (static_cast<double>(num_labels) * count[c]));
    }
  }
  return from_vector<float>(w, {num_labels});
}

}  // namespace graft::cli
