// Learning curves of a run as an SVG, from its log.jsonl, with no plotting library: what
// `graft finetune` leaves in the run directory (curves.svg) and `graft plot` draws on demand.
// Two panels over the optimizer step: the loss (training: moving average of the step losses;
// validation: one dot per evaluation) and the metric (accuracy, or rmse for forecasters; training
// accuracy as a moving average of each step's batch accuracy, when the log has it). For several
// runs side by side as PNG, scripts/plot-runs.sh (matplotlib) reads the same logs.
#pragma once

#include <filesystem>

namespace graft::cli {

// Reads log_jsonl and writes out_svg atomically. IOError when the log cannot be read; FormatError
// naming the line when a record is not JSON; ValueError when the log has no step record.
void write_learning_curves(const std::filesystem::path& log_jsonl, const std::filesystem::path& out_svg);

}  // namespace graft::cli
