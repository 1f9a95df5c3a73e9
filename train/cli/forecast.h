// `graft finetune` with model.type = gru_forecaster: a GRU that forecasts the next forecast.horizon
// values of one series from a window of its past, optionally starting from an earlier forecaster
// run's weights (transfer from another series).
//
//   data.path (CSV/TSV/JSONL), column forecast.column, in file order -> chronological split by
//   data.split (train | validation | test) -> windows: training windows inside the train part
//   (stride forecast.stride); validation and test windows (stride 1) predict values inside their
//   own part, their inputs may reach back -> normalised per forecast.normalize with statistics of
//   the train part alone (train: z-scored with its mean and std; window: each window relative to
//   its last value, scaled by the std of the train part's step-to-step changes)
//   -> GruForecaster (weights of forecast.init_from, when set) -> strategy (full | last_n |
//   feature_extraction) -> optimizer (decay / no-decay groups per layer) + schedule -> Trainer
//   (early stopping on validation, best weights restored) -> validation and test metrics.
//
// The loss is the MSE of normalised values (the "loss" metric); predictions are denormalised per
// window, so mse, mae and rmse are in the series' units. results.json adds "baseline_persistence"
// (next value = the window's last value) on validation and test, and "normalization" (mode and
// statistics); FinetuneResult::baseline holds persistence's test metrics. The run directory is
// laid out as a text run's: config.json, log.jsonl, checkpoints/, model.safetensors, results.json.
#pragma once

#include <iosfwd>
#include <string>

#include "train/cli/finetune.h"

namespace graft::cli {

// Runs it; progress and a summary go to `log`. FormatError for a missing column or a cell that is
// not a finite number (naming file, line and column); ValueError for a series too short for the
// split, or an init_from run whose model.type, gru_hidden, gru_layers or horizon differ.
FinetuneResult run_forecast(const RunConfig& config, std::ostream& log);

// `graft info` for a forecaster: the module tree, then parameters and trainable parameters per
// layer group (depth 0 = the head, depth k = GRU layer num_layers - k) and the lr each gets.
std::string describe_forecast(const RunConfig& config);

}  // namespace graft::cli
