// Evaluation metrics, computed from predictions gathered over a whole split (never averaged per
// batch, which would weight small last batches wrongly). Macro averages weight every class equally,
// as scikit-learn's average="macro": over all num_classes when given, else over the classes present
// in the labels or predictions; a class with no predictions has precision 0 (zero_division=0).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace graft::train {

using Metrics = std::map<std::string, double>;

struct ClassificationReport {
  double accuracy = 0;
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
  std::vector<double> precision, recall, f1;  // per class
  std::vector<int64_t> support;               // true examples per class
  std::vector<std::vector<int64_t>> confusion; // [true][predicted]
  Metrics as_metrics() const;  // accuracy, macro_precision, macro_recall, macro_f1
};

// num_classes <= 0: one more than the largest label or prediction seen.
ClassificationReport classification_report(const std::vector<int64_t>& predicted,
                                           const std::vector<int64_t>& labels, int64_t num_classes = 0);

struct RegressionReport {
  double mse = 0, mae = 0, rmse = 0;
  Metrics as_metrics() const;  // mse, mae, rmse
};
RegressionReport regression_report(const std::vector<double>& predicted, const std::vector<double>& targets);

// Accumulates batches of model outputs for one evaluation pass. Classification: logits [N, C]
// (argmax taken) or predicted ids [N]; labels [N] integer. Regression: predictions and targets of
// equal numel. Labels equal to ignore_index (default -100, as cross_entropy) are left out.
class MetricAccumulator {
 public:
  enum class Task { classification, regression };
  explicit MetricAccumulator(Task task, int64_t num_classes = 0, int64_t ignore_index = -100)
      : task_(task), num_classes_(num_classes), ignore_index_(ignore_index) {}
  void add(const Tensor& outputs, const Tensor& labels);
  void add_loss(double loss_sum, int64_t count);  // the mean loss over the pass, weighted by examples
  Metrics compute() const;  // metrics above, plus "loss" when losses were added
  int64_t count() const;

 private:
  Task task_;
  int64_t num_classes_, ignore_index_;
  std::vector<int64_t> predicted_ids_, label_ids_;
  std::vector<double> predicted_values_, target_values_;
  double loss_sum_ = 0;
  int64_t loss_count_ = 0;
};

}  // namespace graft::train
