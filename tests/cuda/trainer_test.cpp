// Training end to end on the GPU: the Trainer with TrainerOptions::device moves the model and every
// batch to CUDA, and the run follows the CPU run step for step (same seed, same batches). This
// exercises the whole backend at once: linear (cuBLASLt), ReLU, dropout, cross-entropy, the
// autograd engine's gradient sums, AdamW, clipping, and bf16 autocast.
#include <gtest/gtest.h>

#include "cuda_test_util.h"
#include "train/optim/adam.h"
#include "train/trainer.h"
#include "train/trainer_fixtures.h"

namespace graft {
namespace {

struct TrainedModel {
  std::vector<Tensor> params;  // on the CPU after training
  train::Metrics metrics;
};

TrainedModel train_on(std::optional<Device> device, train::MixedPrecision precision, double dropout) {
  manual_seed(7);
  auto [train_set, val_set] = test::blobs(600, 200, /*seed=*/3);
  auto model = test::make_mlp(2, 32, 3, dropout);
  optim::AdamW optimizer(model->parameters(), [] {
    optim::AdamWOptions o;
    o.lr = 1e-2;
    return o;
  }());
  train::TrainerOptions options;
  options.progress = false;
  options.epochs = 3;
  options.batch_size = 32;
  options.max_grad_norm = 1.0;
  options.metric_for_best = "accuracy";
  options.device = device;
  options.mixed_precision = precision;
  const train::ForwardFn forward = [&](const data::Batch& batch, bool) {
    Tensor logits = model->forward(batch.at("features"));
    return train::StepOutput{cross_entropy(logits, batch.at("labels")), logits};
  };
  train::Trainer trainer(*model, optimizer, nullptr, forward, options);
  trainer.fit(train_set, &val_set);
  TrainedModel run;
  run.metrics = trainer.evaluate(val_set);
  for (const Tensor& p : model->parameters()) {
    if (device) EXPECT_EQ(p.device(), *device);
    run.params.push_back(p.detach().to(Device::cpu()));
  }
  return run;
}

void expect_same_run(const TrainedModel& gpu, const TrainedModel& cpu, double rtol) {
  ASSERT_EQ(gpu.params.size(), cpu.params.size());
  for (size_t i = 0; i < gpu.params.size(); ++i)
    EXPECT_TRUE(testing::all_close(gpu.params[i], cpu.params[i], rtol, rtol)) << "parameter " << i;
  EXPECT_NEAR(gpu.metrics.at("accuracy"), cpu.metrics.at("accuracy"), 0.02);
  EXPECT_NEAR(gpu.metrics.at("loss"), cpu.metrics.at("loss"), 10 * rtol + 1e-3);
}

TEST(CudaTrainer, F32TrainingFollowsTheCpuRun) {
  GRAFT_REQUIRE_CUDA();
  const TrainedModel cpu = train_on(std::nullopt, train::MixedPrecision::none, 0.0);
  const TrainedModel gpu = train_on(Device::cuda(0), train::MixedPrecision::none, 0.0);
  EXPECT_GT(cpu.metrics.at("accuracy"), 0.9);
  expect_same_run(gpu, cpu, 1e-3);  // 57 Adam steps amplify f32 rounding differences a little
}

TEST(CudaTrainer, DropoutDrawsTheSameMasksOnBothDevices) {
  GRAFT_REQUIRE_CUDA();
  const TrainedModel cpu = train_on(std::nullopt, train::MixedPrecision::none, 0.3);
  const TrainedModel gpu = train_on(Device::cuda(0), train::MixedPrecision::none, 0.3);
  expect_same_run(gpu, cpu, 1e-3);
}

TEST(CudaTrainer, Bf16AutocastLearnsAsWellAsF32) {
  GRAFT_REQUIRE_CUDA();
  const TrainedModel f32 = train_on(Device::cuda(0), train::MixedPrecision::none, 0.0);
  const TrainedModel bf16 = train_on(Device::cuda(0), train::MixedPrecision::bf16, 0.0);
  for (const Tensor& p : bf16.params) EXPECT_EQ(p.dtype(), DType::f32);  // master weights stay f32
  EXPECT_NEAR(bf16.metrics.at("accuracy"), f32.metrics.at("accuracy"), 0.03);
}

TEST(CudaTrainer, F16WithLossScalingLearns) {
  GRAFT_REQUIRE_CUDA();
  const TrainedModel f16 = train_on(Device::cuda(0), train::MixedPrecision::f16, 0.0);
  EXPECT_GT(f16.metrics.at("accuracy"), 0.9);
}

}  // namespace
}  // namespace graft
