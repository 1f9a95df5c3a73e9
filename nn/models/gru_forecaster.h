// GruForecaster: the next k values of a series from a window of its past.
//   inputs [N, W, F] (batch_first) -> GRU -> the top layer's last hidden state [N, H]
//   -> Dropout -> Linear head -> [N, k]
// N batch, W window length, F features per step (F = 1 for a plain series; more for covariates),
// H hidden size, k horizon. The target is ONE series: the output is always [N, k], step j of a
// row predicting the value j + 1 steps after the window. (To forecast several series, train one
// forecaster per series, or fold them into k.)
//
// Children, in order: "gru", "dropout", "head".
//
// make_series_windows cuts a 1-D series into (window, next k) pairs as the columns of a
// data::TensorDataset ("inputs" [count, W, 1], "labels" [count, k]); nn stays below train/, so it
// returns the columns and the caller writes `data::TensorDataset dataset(windows.columns)`.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nn/dropout.h"
#include "nn/gru.h"
#include "nn/linear.h"
#include "nn/module.h"

namespace graft::nn {

struct GruForecasterOptions {
  int64_t input_size = 1;  // F
  int64_t hidden_size = 32;
  int64_t num_layers = 1;
  double gru_dropout = 0.0;  // between GRU layers
  double dropout = 0.0;      // on the last hidden state, before the head
  int64_t horizon = 1;       // k
};

class GruForecaster : public Module {
 public:
  explicit GruForecaster(GruForecasterOptions options);

  // inputs [N, W, F] floating, W >= 1 -> predictions [N, horizon].
  Tensor forward(const Tensor& inputs) override;

  std::string extra_repr() const override;  // "horizon=3"
  const GruForecasterOptions& options() const { return options_; }

  std::shared_ptr<GRU> gru;
  std::shared_ptr<Dropout> dropout;
  std::shared_ptr<Linear> head;

 private:
  GruForecasterOptions options_;
};

// z-scoring of a series with statistics fitted on its training part only (no look-ahead).
struct SeriesNormalization {
  double mean = 0.0;
  double std = 1.0;  // 1 when the fitted part is constant, so normalising never divides by zero

  // Mean and population std of the values; empty or non-finite values -> ValueError.
  static SeriesNormalization fit(const std::vector<float>& values);
  Tensor normalize(const Tensor& values) const;    // (x - mean) / std
  Tensor denormalize(const Tensor& values) const;  // x * std + mean: predictions back in the series' units
  float normalize(float value) const { return static_cast<float>((value - mean) / std); }
  float denormalize(float value) const { return static_cast<float>(value * std + mean); }
};

struct SeriesWindows {
  std::map<std::string, Tensor> columns;  // "inputs" [count, window, 1] f32, "labels" [count, horizon] f32
  SeriesNormalization normalization;      // what was applied (mean 0, std 1 when nothing was)
  int64_t count() const { return columns.empty() ? 0 : columns.at("inputs").size(0); }
};

// Every window of `window` consecutive values (starting every `stride` steps) with the `horizon`
// values that follow it, normalised with `normalization` when given (fit it on the training part
// and pass the same one for the validation part). A series shorter than window + horizon, a
// non-finite value, or window/horizon/stride < 1 -> ValueError.
SeriesWindows make_series_windows(const std::vector<float>& series, int64_t window, int64_t horizon = 1,
                                  std::optional<SeriesNormalization> normalization = std::nullopt, int64_t stride = 1);

// A chronological split: the first train_fraction of the series trains (its statistics normalise
// both parts when `normalize`), and the validation windows predict the values after it (their
// inputs may reach back into the training part, as at forecast time).
struct SeriesSplit {
  SeriesWindows train;
  SeriesWindows validation;
  SeriesNormalization normalization;
};
SeriesSplit split_series_windows(const std::vector<float>& series, int64_t window, int64_t horizon = 1,
                                 double train_fraction = 0.8, bool normalize = true);

}  // namespace graft::nn
