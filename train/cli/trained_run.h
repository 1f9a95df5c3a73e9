// A finished text run rebuilt from its directory, for `graft predict` and `graft eval`.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "train/cli/run_config.h"
#include "train/metrics.h"

namespace graft::cli {

// A finished run rebuilt from its directory (config.json, labels.json, model.safetensors), for
// `graft predict` and `graft eval`. IOError / FormatError naming a missing or malformed file.
class TrainedRun {
 public:
  explicit TrainedRun(const std::filesystem::path& run_dir);
  ~TrainedRun();
  TrainedRun(TrainedRun&&) noexcept;

  struct Prediction {
    std::string label;
    std::vector<double> probabilities;  // per label, in labels() order
  };
  std::vector<Prediction> predict(const std::vector<std::string>& texts) const;
  // Metrics (accuracy, macro_f1, loss, ...) on the run's own validation or test split, or on
  // another file with the config's columns (`data_path`), all of it.
  train::Metrics evaluate(const std::string& split, const std::string& data_path = "") const;

  const std::vector<std::string>& labels() const;
  const RunConfig& config() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace graft::cli
