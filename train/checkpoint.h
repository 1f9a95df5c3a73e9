// Checkpoints: everything a run needs to continue as if it had never stopped, in one safetensors
// file: the model's state dict ("model/<key>"), the optimizer's buffers ("optimizer/<key>"), and
// in the metadata the optimizer's and scheduler's JSON state, the default generator's (seed,
// offset) and the trainer's own state (data position, best metric, patience counters).
//
// Saving goes through write_file_atomic: a crash mid-save leaves the previous checkpoint intact.
// Loading treats the file as untrusted and changes nothing unless every part loads: the model, the
// optimizer, the scheduler and the generator are restored together or not at all.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/module.h"
#include "train/optim/optimizer.h"
#include "train/optim/scheduler.h"

namespace graft::train {

inline constexpr const char* kCheckpointFormat = "graft-checkpoint";
inline constexpr int kCheckpointVersion = 1;

// optimizer and scheduler may be null (an inference checkpoint, or a run without a scheduler).
void save_checkpoint(const std::filesystem::path& path, const nn::Module& model, const optim::Optimizer* optimizer,
                     const optim::LRScheduler* scheduler, const nlohmann::json& trainer_state = nlohmann::json::object());

// Restores what save_checkpoint wrote and returns the trainer state. FormatError for a file that is
// not a graft checkpoint (or is corrupt or truncated), ShapeError/ValueError when it does not fit
// the model, optimizer or scheduler; in every error case nothing has changed.
nlohmann::json load_checkpoint(const std::filesystem::path& path, nn::Module& model, optim::Optimizer* optimizer,
                               optim::LRScheduler* scheduler, bool restore_rng = true);

// The trainer state of a checkpoint alone, read and checked (FormatError) without touching a
// model: what a resume looks at before it decides to change anything.
nlohmann::json read_trainer_state(const std::filesystem::path& path);

// A run directory's checkpoints: checkpoint-<step>.safetensors files plus checkpoints.json (written
// atomically) that lists them with their metric and names the best. Keeps the newest keep_last
// and, when tracked, the best one (even if older), deleting the rest after each save.
class CheckpointManager {
 public:
  struct Entry {
    int64_t step = 0;
    std::string file;                 // relative to the directory
    std::optional<double> metric;
  };

  CheckpointManager(std::filesystem::path directory, int64_t keep_last = 2);
  // Saves and rotates; `metric` (when given) is compared with the best so far by greater_is_better.
  std::filesystem::path save(int64_t step, const nn::Module& model, const optim::Optimizer* optimizer,
                             const optim::LRScheduler* scheduler, const nlohmann::json& trainer_state,
                             std::optional<double> metric = std::nullopt, bool greater_is_better = false);
  std::optional<std::filesystem::path> latest() const;
  std::optional<std::filesystem::path> best() const;
  const std::vector<Entry>& entries() const { return entries_; }
  const std::filesystem::path& directory() const { return directory_; }

 private:
  std::filesystem::path directory_;
  int64_t keep_last_;
  std::vector<Entry> entries_;
  std::optional<size_t> best_;
};

}  // namespace graft::train
