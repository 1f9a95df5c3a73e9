// Metrics against values computed by hand (and by scikit-learn for the same inputs).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "tensor/factory.h"
#include "train/metrics.h"
#include "train/progress.h"

using namespace graft;
using namespace graft::train;

TEST(Metrics, ClassificationReportMatchesSklearn) {
  // sklearn.metrics.f1_score([0,1,2,0,1,2], [0,2,1,0,0,1], average="macro") == 0.2666...
  auto report = classification_report({0, 2, 1, 0, 0, 1}, {0, 1, 2, 0, 1, 2});
  EXPECT_NEAR(report.accuracy, 2.0 / 6, 1e-12);
  EXPECT_NEAR(report.macro_f1, 0.8 / 3, 1e-12);
  EXPECT_NEAR(report.macro_precision, (2.0 / 3) / 3, 1e-12);
  EXPECT_NEAR(report.macro_recall, 1.0 / 3, 1e-12);
  EXPECT_EQ(report.support, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(report.confusion[1][0], 1);
  EXPECT_EQ(report.confusion[1][2], 1);
  EXPECT_THROW(classification_report({0, 1}, {0}), ShapeError);
  EXPECT_THROW(classification_report({0, 3}, {0, 1}, 3), IndexError);
}

TEST(Metrics, MacroAveragesOverClassesInPlayAsSklearn) {
  // Perfect on classes 1 and 4; ids 0, 2, 3 never appear. sklearn (labels=None): macro_f1 = 1.
  auto inferred = classification_report({1, 4, 4}, {1, 4, 4});
  EXPECT_DOUBLE_EQ(inferred.macro_f1, 1.0);
  // With num_classes given, every class counts (sklearn's labels=range(5)): 2 of 5.
  auto fixed = classification_report({1, 4, 4}, {1, 4, 4}, 5);
  EXPECT_DOUBLE_EQ(fixed.macro_f1, 0.4);
}

TEST(Metrics, RegressionReport) {
  auto report = regression_report({1.0, 2.0, 4.0}, {1.0, 3.0, 2.0});
  EXPECT_DOUBLE_EQ(report.mse, 5.0 / 3);
  EXPECT_DOUBLE_EQ(report.mae, 1.0);
  EXPECT_DOUBLE_EQ(report.rmse, std::sqrt(5.0 / 3));
}

TEST(Metrics, AccumulatorTakesLogitsAndSkipsIgnoredLabels) {
  MetricAccumulator accumulator(MetricAccumulator::Task::classification, 2);
  accumulator.add(from_vector<float>({2, 1, 0, 3, 5, 1}, {3, 2}), from_vector<int64_t>({0, 1, -100}));
  accumulator.add(from_vector<int64_t>({1}), from_vector<int64_t>({0}));
  accumulator.add_loss(3.0, 2);
  accumulator.add_loss(1.0, 2);
  Metrics metrics = accumulator.compute();
  EXPECT_EQ(accumulator.count(), 3);
  EXPECT_NEAR(metrics.at("accuracy"), 2.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(metrics.at("loss"), 1.0);
  MetricAccumulator regression(MetricAccumulator::Task::regression);
  regression.add(from_vector<float>({1, 2}, {2, 1}), from_vector<float>({1, 4}));
  EXPECT_DOUBLE_EQ(regression.compute().at("mse"), 2.0);
  EXPECT_THROW(regression.add(from_vector<float>({1, 2}), from_vector<float>({1})), ShapeError);
}

TEST(Progress, PlainLinesWhenNotATerminal) {
  char* buffer = nullptr;
  size_t size = 0;
  FILE* stream = open_memstream(&buffer, &size);
  {
    ProgressBar bar(10, {.enabled = true, .plain_every = 5, .stream = stream, .force_terminal = 0});
    for (int64_t step = 1; step <= 10; ++step) bar.update(step, 0.5, 1e-3, 32);
    bar.message("eval at step 10: accuracy=0.9");
    bar.finish();
  }
  std::fclose(stream);
  const std::string text(buffer, size);
  std::free(buffer);
  EXPECT_NE(text.find("step 5/10  loss 0.5000  lr 0.001"), std::string::npos) << text;
  EXPECT_NE(text.find("step 10/10"), std::string::npos) << text;
  EXPECT_EQ(text.find("step 4/10"), std::string::npos) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos) << text;
  EXPECT_NE(text.find("eval at step 10"), std::string::npos);
  EXPECT_EQ(ProgressBar::format_duration(185), "3m05s");
  EXPECT_EQ(ProgressBar::format_duration(3720), "1h02m");
}
