#include "train/metrics.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace graft::train {

Metrics ClassificationReport::as_metrics() const {
  return {{"accuracy", accuracy}, {"macro_precision", macro_precision}, {"macro_recall", macro_recall},
          {"macro_f1", macro_f1}};
}

ClassificationReport classification_report(const std::vector<int64_t>& predicted, const std::vector<int64_t>& labels,
                                           int64_t num_classes) {
  if (predicted.size() != labels.size()) {
    throw ShapeError("classification_report: " + std::to_string(predicted.size()) + " predictions for " +
                     std::to_string(labels.size()) + " labels");
  }
  int64_t classes = num_classes;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || predicted[i] < 0) {
      throw ValueError("classification_report: negative class id at example " + std::to_string(i));
    }
    if (num_classes <= 0) classes = std::max({classes, labels[i] + 1, predicted[i] + 1});
    else if (labels[i] >= num_classes || predicted[i] >= num_classes) {
      throw IndexError("classification_report: class id " + std::to_string(std::max(labels[i], predicted[i])) +
                       " at example " + std::to_string(i) + " is out of range for " + std::to_string(num_classes) +
                       " classes");
    }
  }
  ClassificationReport report;
  const auto k = static_cast<size_t>(std::max<int64_t>(classes, 0));
  report.confusion.assign(k, std::vector<int64_t>(k, 0));
  int64_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    ++report.confusion[static_cast<size_t>(labels[i])][static_cast<size_t>(predicted[i])];
    correct += labels[i] == predicted[i];
  }
  report.accuracy = labels.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(labels.size());
  report.precision.assign(k, 0);
  report.recall.assign(k, 0);
  report.f1.assign(k, 0);
  report.support.assign(k, 0);
  for (size_t c = 0; c < k; ++c) {
    int64_t true_positive = report.confusion[c][c], predicted_c = 0, actual_c = 0;
    for (size_t other = 0; other < k; ++other) {
      predicted_c += report.confusion[other][c];
      actual_c += report.confusion[c][other];
    }
    report.support[c] = actual_c;
    report.precision[c] = predicted_c ? static_cast<double>(true_positive) / static_cast<double>(predicted_c) : 0.0;
    report.recall[c] = actual_c ? static_cast<double>(true_positive) / static_cast<double>(actual_c) : 0.0;
    const double sum = report.precision[c] + report.recall[c];
    report.f1[c] = sum > 0 ? 2 * report.precision[c] * report.recall[c] / sum : 0.0;
  }
  // Macro averages run over the classes in play: all num_classes when given (sklearn's
  // labels=range(k)), else the classes present in the labels or the predictions (sklearn's default).
  size_t averaged = 0;
  for (size_t c = 0; c < k; ++c) {
    int64_t predicted_c = 0;
    for (size_t other = 0; other < k; ++other) predicted_c += report.confusion[other][c];
    if (num_classes <= 0 && report.support[c] == 0 && predicted_c == 0) continue;
    report.macro_precision += report.precision[c];
    report.macro_recall += report.recall[c];
    report.macro_f1 += report.f1[c];
    ++averaged;
  }
  if (averaged > 0) {
    report.macro_precision /= static_cast<double>(averaged);
    report.macro_recall /= static_cast<double>(averaged);
    report.macro_f1 /= static_cast<double>(averaged);
  }
  return report;
}

Metrics RegressionReport::as_metrics() const { return {{"mse", mse}, {"mae", mae}, {"rmse", rmse}}; }

RegressionReport regression_report(const std::vector<double>& predicted, const std::vector<double>& targets) {
  if (predicted.size() != targets.size()) {
    throw ShapeError("regression_report: " + std::to_string(predicted.size()) + " predictions for " +
                     std::to_string(targets.size()) + " targets");
  }
  RegressionReport report;
  if (targets.empty()) return report;
  for (size_t i = 0; i < targets.size(); ++i) {
    const double error = predicted[i] - targets[i];
    report.mse += error * error;
    report.mae += std::abs(error);
  }
  report.mse /= static_cast<double>(targets.size());
  report.mae /= static_cast<double>(targets.size());
  report.rmse = std::sqrt(report.mse);
  return report;
}

void MetricAccumulator::add(const Tensor& outputs, const Tensor& labels) {
  NoGradGuard no_grad;
  if (task_ == Task::classification) {
    Tensor ids = outputs.dim() >= 2 ? argmax(outputs.reshape({-1, outputs.size(-1)}), 1) : outputs;
    auto predicted = ids.to(DType::i64).to_vector<int64_t>();
    auto truth = labels.to(DType::i64).reshape({-1}).to_vector<int64_t>();
    if (predicted.size() != truth.size()) {
      throw ShapeError("MetricAccumulator: outputs " + shape_str(outputs.shape()) + " give " +
                       std::to_string(predicted.size()) + " predictions for labels " + shape_str(labels.shape()));
    }
    for (size_t i = 0; i < truth.size(); ++i) {
      if (truth[i] == ignore_index_) continue;
      predicted_ids_.push_back(predicted[i]);
      label_ids_.push_back(truth[i]);
    }
  } else {
    auto predicted = outputs.to(DType::f64).reshape({-1}).to_vector<double>();
    auto truth = labels.to(DType::f64).reshape({-1}).to_vector<double>();
    if (predicted.size() != truth.size()) {
      throw ShapeError("MetricAccumulator: predictions " + shape_str(outputs.shape()) + " and targets " +
                       shape_str(labels.shape()) + " differ in size");
    }
    predicted_values_.insert(predicted_values_.end(), predicted.begin(), predicted.end());
    target_values_.insert(target_values_.end(), truth.begin(), truth.end());
  }
}

void MetricAccumulator::add_loss(double loss_sum, int64_t count) {
  loss_sum_ += loss_sum;
  loss_count_ += count;
}

int64_t MetricAccumulator::count() const {
  return static_cast<int64_t>(task_ == Task::classification ? label_ids_.size() : target_values_.size());
}

Metrics MetricAccumulator::compute() const {
  Metrics out = task_ == Task::classification
                    ? classification_report(predicted_ids_, label_ids_, num_classes_).as_metrics()
                    : regression_report(predicted_values_, target_values_).as_metrics();
  if (loss_count_ > 0) out["loss"] = loss_sum_ / static_cast<double>(loss_count_);
  return out;
}

}  // namespace graft::train
