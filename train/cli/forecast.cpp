#include "train/cli/forecast.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/atomic_file.h"
#include "nn/container.h"
#include "nn/models/gru_forecaster.h"
#include "nn/weights.h"
#include "tensor/error.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "train/cli/optimization.h"
#include "train/data/dataset.h"
#include "train/data/reader.h"
#include "train/trainer.h"

namespace graft::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ---- data ----

// The series: forecast.column of data.path, in file order.
std::vector<float> read_series(const RunConfig& config) {
  const data::Table table = data::read_table(config.data.path);
  if (table.column_index(config.forecast.column) < 0) {
    std::string present;
    for (const auto& c : table.columns) present += (present.empty() ? "\"" : ", \"") + c + "\"";
    throw FormatError("forecast: " + config.data.path + " has no column \"" + config.forecast.column +
                      "\" (forecast.column); columns present: " + present);
  }
  // Cells that are not finite numbers are a FormatError naming file, line and column.
  const std::vector<double> values = data::regression_targets(table, config.forecast.column);
  std::vector<float> series;
  series.reserve(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const auto v = static_cast<float>(values[i]);
    if (!std::isfinite(v))  // finite as a double, out of float's range
      throw FormatError("forecast: " + table.where(static_cast<int64_t>(i)) + ", column \"" + config.forecast.column +
                        "\": " + std::to_string(values[i]) + " does not fit a 32-bit float");
    series.push_back(v);
  }
  return series;
}

// How the model sees the series, one formula for both modes: v' = (v - c) / s for a window's inputs
// and targets, and predictions come back in the series' units as y = y' * s + c, where
//   train:  c = the training part's mean, s = its std;
//   window: c = the window's last value, s = the std of the training part's step-to-step changes
// (s is 1 where that std is 0). c is per window, so it travels with the batch (column "center").
struct Normalization {
  std::string mode;
  double mean = 0.0, scale = 1.0;  // mean: train mode only

  static Normalization fit(const std::vector<float>& train_part, const std::string& mode) {
    Normalization n;
    n.mode = mode;
    if (mode == "window") {
      std::vector<float> changes;
      for (size_t i = 1; i < train_part.size(); ++i) changes.push_back(train_part[i] - train_part[i - 1]);
      n.scale = nn::SeriesNormalization::fit(changes).std;
    } else {
      const nn::SeriesNormalization z = nn::SeriesNormalization::fit(train_part);
      n.mean = z.mean, n.scale = z.std;
    }
    return n;
  }
  double center(const float* window, int64_t length) const { return mode == "window" ? window[length - 1] : mean; }
  float normalize(float value, double c) const { return static_cast<float>((value - c) / scale); }
  Tensor denormalize(const Tensor& predicted, const Tensor& centers) const { return predicted * scale + centers; }
  nlohmann::json to_json() const {
    if (mode == "window") return {{"mode", mode}, {"std_of_changes", scale}};
    return {{"mode", mode}, {"mean", mean}, {"std", scale}};
  }
  std::string describe() const {
    std::ostringstream s;
    if (mode == "window")
      s << "each window relative to its last value, scaled by the train part's std of step-to-step changes " << scale;
    else
      s << "z-scored with the train part's mean " << mean << ", std " << scale;
    return s.str();
  }
};

// One split's windows: "inputs" and "targets" normalised (what the model sees and the loss
// compares), "center" [count, 1] (each window's c, to denormalise its predictions), "labels" in the
// series' units (what the Trainer's metrics compare with the denormalised outputs), and the
// persistence baseline's metrics on them.
struct Part {
  std::map<std::string, Tensor> columns;
  int64_t values = 0;  // of the series that this part's windows predict (or, train, lie in)
  train::Metrics persistence;
  int64_t count() const { return columns.at("inputs").size(0); }
};

Part make_part(const std::vector<float>& segment, int64_t values, const ForecastConfig& f, const Normalization& norm,
               int64_t stride) {
  const nn::SeriesWindows raw = nn::make_series_windows(segment, f.window, f.horizon, std::nullopt, stride);
  const std::vector<float> inputs = raw.columns.at("inputs").to_vector<float>();
  const std::vector<float> labels = raw.columns.at("labels").to_vector<float>();
  const int64_t n = raw.count(), w = f.window, k = f.horizon;
  std::vector<float> scaled_inputs(inputs.size()), targets(labels.size()), centers(static_cast<size_t>(n));
  std::vector<double> persistence_predicted, persistence_targets;
  for (int64_t i = 0; i < n; ++i) {
    const float* window = inputs.data() + i * w;
    const double c = norm.center(window, w);
    centers[static_cast<size_t>(i)] = static_cast<float>(c);
    for (int64_t t = 0; t < w; ++t) scaled_inputs[static_cast<size_t>(i * w + t)] = norm.normalize(window[t], c);
    for (int64_t t = 0; t < k; ++t) {
      const float label = labels[static_cast<size_t>(i * k + t)];
      targets[static_cast<size_t>(i * k + t)] = norm.normalize(label, c);
      // Persistence: every step of the horizon predicts the window's last value.
      persistence_predicted.push_back(window[w - 1]);
      persistence_targets.push_back(label);
    }
  }
  Part p;
  p.values = values;
  p.columns["inputs"] = from_vector(scaled_inputs, {n, w, 1});
  p.columns["targets"] = from_vector(targets, {n, k});
  p.columns["center"] = from_vector(centers, {n, 1});
  p.columns["labels"] = raw.columns.at("labels");
  p.persistence = train::regression_report(persistence_predicted, persistence_targets).as_metrics();
  return p;
}

struct Splits {
  Part train, validation, test;
  Normalization normalization;
};

// Chronological: [0, n_train) trains; validation windows predict [n_train, n_train + n_val), test
// windows the rest, each reading up to `window` values before its part.
Splits split_series(const std::vector<float>& series, const RunConfig& config) {
  const ForecastConfig& f = config.forecast;
  const auto n = static_cast<int64_t>(series.size());
  const auto& s = config.data.split;
  const double total = s[0] + s[1] + s[2];
  // Rounded, not floored: 600 * 0.8 / (0.8 + 0.1 + 0.1) is 479.99999999999994 in doubles.
  const int64_t n_train = std::llround(static_cast<double>(n) * s[0] / total);
  const int64_t n_seen = std::llround(static_cast<double>(n) * (s[0] + s[1]) / total);
  const int64_t n_val = n_seen - n_train, n_test = n - n_seen;
  if (n_train < f.window + f.horizon || n_val < f.horizon || n_test < f.horizon) {
    std::ostringstream m;
    m << "forecast: " << config.data.path << " has " << n << " values; data.split [" << s[0] << ", " << s[1] << ", "
      << s[2] << "] leaves " << n_train << " to train, " << n_val << " for validation and " << n_test
      << " for test, but window " << f.window << " + horizon " << f.horizon << " needs at least " << f.window + f.horizon
      << " to train and " << f.horizon << " in each of the others";
    throw ValueError(m.str());
  }
  auto segment = [&](int64_t from, int64_t to) { return std::vector<float>(series.begin() + from, series.begin() + to); };
  Splits out;
  out.normalization = Normalization::fit(segment(0, n_train), f.normalize);
  out.train = make_part(segment(0, n_train), n_train, f, out.normalization, f.stride);
  out.validation = make_part(segment(n_train - f.window, n_seen), n_val, f, out.normalization, 1);
  out.test = make_part(segment(n_seen - f.window, n), n_test, f, out.normalization, 1);
  return out;
}

// ---- model ----

// Layer groups: depth 0 is the head, GRU layer k has depth num_layers - k (the top layer is 1).
int64_t layer_depth(const std::string& name, int64_t layers) {
  if (name.rfind("gru.", 0) != 0) return 0;
  return layers - std::stoll(name.substr(name.rfind("_l") + 2));  // weight_ih_l{k}
}

struct Model {
  std::shared_ptr<nn::GruForecaster> module;
  std::set<const TensorImpl*> trainable;
  int64_t depth(const std::string& name) const { return layer_depth(name, module->options().num_layers); }
};

// An earlier forecaster run's config.json, checked against this run's architecture.
void check_init_from(const RunConfig& config) {
  const fs::path dir = config.forecast.init_from;
  for (const char* file : {"config.json", "model.safetensors"})
    if (!fs::exists(dir / file))
      throw IOError("forecast.init_from: " + (dir / file).string() + " is missing (is " + dir.string() +
                    " the output_dir of a finished gru_forecaster run?)");
  nlohmann::json earlier;
  try {
    std::ifstream in(dir / "config.json");
    earlier = nlohmann::json::parse(in);
    const std::string type = earlier.at("model").at("type").get<std::string>();
    if (type != "gru_forecaster")
      throw ValueError("forecast.init_from: " + dir.string() + " is a " + type + " run; a gru_forecaster run is needed");
    const std::pair<std::string, int64_t> keys[] = {{"model.gru_hidden", config.model.gru_hidden},
                                                    {"model.gru_layers", config.model.gru_layers},
                                                    {"forecast.horizon", config.forecast.horizon}};
    for (const auto& [key, ours] : keys) {
      const auto dot = key.find('.');
      const int64_t theirs = earlier.at(key.substr(0, dot)).at(key.substr(dot + 1)).get<int64_t>();
      if (theirs != ours)
        throw ValueError("forecast.init_from: " + dir.string() + " was trained with " + key + " " + std::to_string(theirs) +
                         ", this run has " + key + " " + std::to_string(ours) + "; they must agree");
    }
  } catch (const nlohmann::json::exception& e) {
    throw FormatError((dir / "config.json").string() + ": not a run config with model.type, model.gru_hidden, "
                      "model.gru_layers and forecast.horizon (" + e.what() + ")");
  }
}

// The model with its strategy applied (requires_grad false on what does not train); with
// load_init, forecast.init_from's weights replace the random ones first.
Model prepare_model(const RunConfig& config, bool load_init, std::ostream& log) {
  nn::GruForecasterOptions options;
  options.hidden_size = config.model.gru_hidden;
  options.num_layers = config.model.gru_layers;
  options.dropout = config.model.dropout.value_or(0.0);
  options.gru_dropout = options.num_layers > 1 ? options.dropout : 0.0;
  options.horizon = config.forecast.horizon;
  Model m;
  m.module = std::make_shared<nn::GruForecaster>(options);
  log << "model: GRU forecaster, " << options.num_layers << " layer(s) of " << options.hidden_size << ", window "
      << config.forecast.window << ", horizon " << options.horizon << ", dropout " << options.dropout << "\n";
  if (!config.forecast.init_from.empty()) {
    if (load_init) {
      check_init_from(config);
      nn::load_weights(*m.module, fs::path(config.forecast.init_from) / "model.safetensors");  // strict
    }
    log << "init_from: " << config.forecast.init_from << "\n";
  }
  const std::string& strategy = config.strategy.type;
  for (auto& [name, p] : m.module->named_parameters()) {
    const int64_t d = m.depth(name);
    if ((strategy == "feature_extraction" && d > 0) || (strategy == "last_n" && d > config.strategy.last_n))
      p.requires_grad_(false);
    if (p.requires_grad()) m.trainable.insert(p.impl());
  }
  return m;
}

// The frozen GRU's last hidden state for every window, computed once (feature_extraction).
Tensor gru_features(nn::GruForecaster& model, const Tensor& inputs, int64_t batch_size) {
  NoGradGuard no_grad;
  model.eval();
  const Device device = model.parameters().front().device();
  std::vector<Tensor> parts;
  for (int64_t start = 0; start < inputs.size(0); start += batch_size) {
    const Tensor batch = inputs.slice(0, start, std::min(inputs.size(0), start + batch_size)).to(device);
    const GruResult encoded = model.gru->forward(batch, Tensor());
    parts.push_back(encoded.h_n.select(0, encoded.h_n.size(0) - 1));
  }
  model.train();
  return cat(parts, 0);
}

std::string metric_line(const train::Metrics& m) {
  std::ostringstream s;
  s << "rmse " << m.at("rmse") << ", mae " << m.at("mae");
  return s.str();
}

}  // namespace

FinetuneResult run_forecast(const RunConfig& config, std::ostream& log) {
  const auto start = Clock::now();
  const fs::path out = config.output_dir;
  begin_run(config);

  // Data: the whole series is read before anything trains, so bad cells fail fast.
  const std::vector<float> series = read_series(config);
  const Splits splits = split_series(series, config);
  const Normalization& norm = splits.normalization;
  log << "data: " << config.data.path << " column " << config.forecast.column << ", " << series.size() << " values: "
      << splits.train.values << " train (" << splits.train.count() << " windows, stride " << config.forecast.stride
      << "), " << splits.validation.values << " validation (" << splits.validation.count() << " windows), "
      << splits.test.values << " test (" << splits.test.count() << " windows); " << norm.describe() << "\n";
  log << "baseline (persistence): validation " << metric_line(splits.validation.persistence) << "; test "
      << metric_line(splits.test.persistence) << "\n";

  Model model = prepare_model(config, /*load_init=*/true, log);
  // Under mpirun / srun with several processes: data-parallel training over them, as text runs.
  const RunPlacement placement = place_run(config);
  model.module->to(placement.device);  // before feature extraction runs the GRU
  const bool feature_extraction = config.strategy.type == "feature_extraction";

  // Feature extraction trains the head alone, on the frozen GRU's states computed once.
  std::shared_ptr<nn::Module> trained = model.module;
  std::map<std::string, Tensor> train_columns = splits.train.columns, validation_columns = splits.validation.columns,
                                test_columns = splits.test.columns;
  if (feature_extraction) {
    for (auto* columns : {&train_columns, &validation_columns, &test_columns}) {
      (*columns)["features"] = gru_features(*model.module, columns->at("inputs"), config.train.eval_batch_size);
      columns->erase("inputs");  // not collated again every batch
    }
    trained = std::make_shared<nn::Sequential>(
        std::initializer_list<std::shared_ptr<nn::Module>>{model.module->dropout, model.module->head});
  }
  const data::TensorDataset train_set(train_columns), validation_set(validation_columns), test_set(test_columns);

  std::unique_ptr<optim::Optimizer> optimizer =
      make_optimizer(config, *model.module, [&](const std::string& name) { return model.depth(name); }, model.trainable);
  std::unique_ptr<optim::LRScheduler> scheduler =
      make_scheduler(config.schedule, *optimizer, total_steps(config.train, train_set.size()));

  // The loss stays on normalised values; the outputs handed to the metrics are denormalised, so
  // mse / mae / rmse (and metric_for_best) are in the series' units.
  const train::ForwardFn forward = [&](const data::Batch& b, bool) {
    const Tensor predicted = feature_extraction ? trained->forward(b.at("features")) : model.module->forward(b.at("inputs"));
    const Tensor loss = mse_loss(predicted, b.at("targets"));
    NoGradGuard no_grad;
    return train::StepOutput{loss, norm.denormalize(predicted.detach(), b.at("center"))};
  };

  train::TrainerOptions options = trainer_options(config);
  options.task = train::MetricAccumulator::Task::regression;
  place_trainer(options, placement, config);
  train::Trainer trainer(*trained, *optimizer, scheduler.get(), forward, options);
  const train::TrainResult fit = trainer.fit(train_set, &validation_set);

  FinetuneResult result;
  result.validation = trainer.evaluate(validation_set);
  result.test = trainer.evaluate(test_set);
  result.train_examples = train_set.size();
  result.validation_examples = validation_set.size();
  result.test_examples = test_set.size();
  result.parameters = model.module->num_parameters();
  for (const auto& [name, p] : model.module->named_parameters())
    if (model.trainable.count(p.impl())) result.trainable_parameters += p.numel();
  result.steps = fit.state.global_step;
  result.stopped_early = fit.stopped_early;
  result.baseline = splits.test.persistence;

  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (placement.main_rank()) {  // only rank 0 writes the run's files
    nn::save_weights(*model.module, out / "model.safetensors");
    nlohmann::json results = result.to_json();
    results["baseline_persistence"] = {{"validation", splits.validation.persistence},
                                       {"test", splits.test.persistence}};
    results["normalization"] = norm.to_json();
    results["units"] = "mse, mae and rmse in the units of column " + config.forecast.column +
                       "; loss is the training loss, the MSE of normalised values (see normalization)";
    nn::write_file_atomic(out / "results.json", results.dump(2) + "\n");
    end_run(config, log);
  }
  wait_for_run_files(placement);
  log << "validation: " << metric_line(result.validation) << " (persistence " << metric_line(splits.validation.persistence)
      << ")\n";
  log << "test: " << metric_line(result.test) << " (persistence " << metric_line(splits.test.persistence) << "; "
      << result.test_examples << " windows; " << result.trainable_parameters << " of " << result.parameters
      << " parameters trained; " << result.steps << " steps; " << result.seconds << " s)\n";
  return result;
}

std::string describe_forecast(const RunConfig& config) {
  std::ostringstream log;
  const Model model = prepare_model(config, /*load_init=*/false, log);
  std::ostringstream out;
  out << model.module->summary() << "\n" << log.str();
  out << "strategy " << config.strategy.type << ": layer groups\n"
      << describe_layer_groups(
             config, *model.module, [&](const std::string& name) { return model.depth(name); }, model.trainable,
             [&](int64_t d) {
               return d == 0 ? std::string(" (head)")
                             : " (gru layer " + std::to_string(model.module->options().num_layers - d) + ")";
             });
  return out.str();
}

}  // namespace graft::cli
