// `graft finetune`: one fine-tuning run from a RunConfig, start to finish.
//
//   data (CSV/TSV/JSONL) -> labels kept and numbered -> stratified train/validation/test split
//   -> augmentation of the training texts -> WordPiece (the model folder's vocab.txt)
//   -> model (BERT classifier or GRU classifier) -> strategy (what trains, at which lr)
//   -> optimizer (decay / no-decay groups per layer) + schedule -> Trainer (early stopping on the
//   validation split, best weights restored) -> test metrics.
//
// The run directory (config.output_dir) receives config.json (the resolved config), log.jsonl and
// checkpoints/ (the Trainer's), model.safetensors (or adapter.safetensors under LoRA) and
// results.json. Strategies:
//   feature_extraction  the backbone is frozen and run once over every split; only the head trains,
//                       on the cached features (so each epoch costs a head's forward, not a BERT's)
//   last_n              the top strategy.last_n encoder layers (and pooler) and the head train
//   full                everything trains
//   gradual_unfreezing  the head trains first; each later epoch unfreezes the next layer group from
//                       the top (ULMFiT); the optimizer holds every group from the start
// strategy.layer_lr_decay < 1 gives discriminative learning rates: the layer group k steps below
// the head gets lr * decay^k (BERT: pooler 1, top layer 1, ..., embeddings L + 1).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tensor/device.h"
#include "train/cli/run_config.h"
#include "train/metrics.h"

namespace graft::train {
struct TrainerOptions;
namespace distributed {
class ProcessGroup;
}
}  // namespace graft::train

namespace graft::cli {

struct FinetuneResult {
  train::Metrics test;         // accuracy, macro_f1, ..., loss on the test split (best weights)
  train::Metrics validation;   // the same on the validation split
  train::Metrics baseline;     // forecaster runs: the persistence baseline's metrics on the test split
  int64_t train_examples = 0, validation_examples = 0, test_examples = 0;
  int64_t parameters = 0, trainable_parameters = 0;
  int64_t steps = 0;
  bool stopped_early = false;
  double seconds = 0;          // wall time of the whole run
  nlohmann::json to_json() const;
};

// Runs it; progress and a summary go to `log`. Errors: those of the config, data and model
// loaders (typed, naming the file and field); nothing in an earlier run's directory is replaced
// unless config.overwrite.
FinetuneResult run_finetune(const RunConfig& config, std::ostream& log);

// What every run does first: refuses an output_dir that holds a finished run (results.json) unless
// config.overwrite (ValueError), creates it, writes the resolved config.json atomically, and seeds
// the default generator with train.seed.
void begin_run(const RunConfig& config);

// Where a run trains. Under mpirun / srun with several processes: the data-parallel process group
// (made here, before the model moves: with CUDA each process takes its local rank's GPU), else
// null; and the device, train.device or that GPU.
struct RunPlacement {
  std::shared_ptr<train::distributed::ProcessGroup> group;
  Device device = Device::cpu();
  bool main_rank() const;  // the process that writes the run's files (rank 0, or the only one)
};
RunPlacement place_run(const RunConfig& config);

// Hands the placement to the Trainer: its device, and with a group train.batch_size (the global
// batch: the same steps and schedule as one process) split over the processes (ValueError unless
// it divides evenly).
void place_trainer(train::TrainerOptions& options, const RunPlacement& placement, const RunConfig& config);

// After the main rank has written the run's files: every rank waits for them (no-op alone).
void wait_for_run_files(const RunPlacement& placement);

// What every run does last, after results.json: curves.svg from log.jsonl (train/cli/plot.h). A
// plot that fails is reported on `log` and does not fail the finished run.
void end_run(const RunConfig& config, std::ostream& log);

// `graft info`: the model a config describes, with its strategy applied: the module tree, then
// parameters and trainable parameters per layer group (depth 0 = the head), and the lr each gets.
std::string describe_run(const RunConfig& config);

}  // namespace graft::cli
