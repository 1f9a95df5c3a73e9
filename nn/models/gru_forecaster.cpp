#include "nn/models/gru_forecaster.h"

#include <cmath>

#include "autograd/ops.h"

namespace graft::nn {

GruForecaster::GruForecaster(GruForecasterOptions options) : Module("GruForecaster"), options_(options) {
  const std::pair<const char*, int64_t> sizes[] = {{"input_size", options.input_size},
                                                   {"hidden_size", options.hidden_size},
                                                   {"num_layers", options.num_layers},
                                                   {"horizon", options.horizon}};
  for (const auto& [name, value] : sizes)
    if (value < 1) throw ValueError(std::string("GruForecaster: ") + name + " must be >= 1, got " + std::to_string(value));
  GRUOptions gru_options;
  gru_options.input_size = options.input_size;
  gru_options.hidden_size = options.hidden_size;
  gru_options.num_layers = options.num_layers;
  gru_options.batch_first = true;
  gru_options.dropout = options.gru_dropout;
  gru = register_module("gru", std::make_shared<GRU>(gru_options));
  dropout = register_module("dropout", std::make_shared<Dropout>(options.dropout));
  head = register_module("head", std::make_shared<Linear>(options.hidden_size, options.horizon));
}

Tensor GruForecaster::forward(const Tensor& inputs) {
  if (!inputs.defined() || inputs.dim() != 3 || inputs.size(1) < 1 || inputs.size(2) != options_.input_size ||
      !is_floating(inputs.dtype())) {
    throw ShapeError("GruForecaster: expected inputs [N, W, " + std::to_string(options_.input_size) +
                     "] floating with W >= 1, got " +
                     (inputs.defined() ? shape_str(inputs.shape()) + " " + dtype_name(inputs.dtype())
                                       : std::string("undefined")));
  }
  const GruResult encoded = gru->forward(inputs, Tensor());
  const Tensor last = encoded.h_n.select(0, encoded.h_n.size(0) - 1);  // the top layer, [N, H]
  return head->forward(dropout->forward(last));
}

std::string GruForecaster::extra_repr() const { return "horizon=" + std::to_string(options_.horizon); }

// ---- series windows ----

namespace {

void check_finite(const std::vector<float>& values, const char* op) {
  for (size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      throw ValueError(std::string(op) + ": value " + std::to_string(i) + " of the series is not finite");
}

}  // namespace

SeriesNormalization SeriesNormalization::fit(const std::vector<float>& values) {
  if (values.empty()) throw ValueError("SeriesNormalization::fit: the series is empty");
  check_finite(values, "SeriesNormalization::fit");
  double sum = 0.0;
  for (float v : values) sum += v;
  const double mean = sum / static_cast<double>(values.size());
  double squares = 0.0;
  for (float v : values) squares += (v - mean) * (v - mean);
  const double std = std::sqrt(squares / static_cast<double>(values.size()));
  return {mean, std > 0.0 ? std : 1.0};
}

Tensor SeriesNormalization::normalize(const Tensor& values) const { return (values - mean) / std; }
Tensor SeriesNormalization::denormalize(const Tensor& values) const { return values * std + mean; }

SeriesWindows make_series_windows(const std::vector<float>& series, int64_t window, int64_t horizon,
                                  std::optional<SeriesNormalization> normalization, int64_t stride) {
  const char* op = "make_series_windows";
  if (window < 1 || horizon < 1 || stride < 1) {
    throw ValueError(std::string(op) + ": window, horizon and stride must be >= 1, got " + std::to_string(window) +
                     ", " + std::to_string(horizon) + ", " + std::to_string(stride));
  }
  const auto length = static_cast<int64_t>(series.size());
  if (length < window + horizon) {
    throw ValueError(std::string(op) + ": a series of " + std::to_string(length) + " values is too short for window " +
                     std::to_string(window) + " + horizon " + std::to_string(horizon));
  }
  check_finite(series, op);
  if (normalization && !(normalization->std > 0.0 && std::isfinite(normalization->std) && std::isfinite(normalization->mean)))
    throw ValueError(std::string(op) + ": the normalization's std must be finite and > 0, got " + std::to_string(normalization->std));
  const SeriesNormalization applied = normalization.value_or(SeriesNormalization{});

  const int64_t count = (length - window - horizon) / stride + 1;
  std::vector<float> inputs, labels;
  inputs.reserve(static_cast<size_t>(count * window));
  labels.reserve(static_cast<size_t>(count * horizon));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t start = i * stride;
    for (int64_t t = 0; t < window; ++t) inputs.push_back(applied.normalize(series[static_cast<size_t>(start + t)]));
    for (int64_t t = 0; t < horizon; ++t)
      labels.push_back(applied.normalize(series[static_cast<size_t>(start + window + t)]));
  }
  SeriesWindows out;
  out.columns["inputs"] = from_vector(inputs, {count, window, 1});
  out.columns["labels"] = from_vector(labels, {count, horizon});
  out.normalization = applied;
  return out;
}

SeriesSplit split_series_windows(const std::vector<float>& series, int64_t window, int64_t horizon,
                                 double train_fraction, bool normalize) {
  if (!(train_fraction > 0.0 && train_fraction < 1.0))
    throw ValueError("split_series_windows: train_fraction must be in (0, 1), got " + std::to_string(train_fraction));
  const auto length = static_cast<int64_t>(series.size());
  const auto split = static_cast<int64_t>(std::floor(static_cast<double>(length) * train_fraction));
  if (window < 1 || split < window + horizon || length - split < horizon) {
    throw ValueError("split_series_windows: " + std::to_string(length) + " values split at " + std::to_string(split) +
                     " leave too few for window " + std::to_string(window) + " + horizon " + std::to_string(horizon) +
                     " on both sides");
  }
  const std::vector<float> train(series.begin(), series.begin() + split);
  const std::vector<float> validation(series.begin() + (split - window), series.end());
  SeriesSplit out;
  if (normalize) out.normalization = SeriesNormalization::fit(train);
  const auto used = normalize ? std::optional(out.normalization) : std::nullopt;
  out.train = make_series_windows(train, window, horizon, used);
  out.validation = make_series_windows(validation, window, horizon, used);
  return out;
}

}  // namespace graft::nn
