// The Trainer's mixed precision on the CPU (autocast emulated): bf16 and f16 train a small model
// whose loss falls, with f32 master weights; forward and evaluation run under autocast; f16's loss
// scaler skips overflowed steps (counted, logged, not stepping the optimizer) and is checkpointed
// and restored on resume; the config key train.mixed_precision reaches the Trainer's options and a
// bad value is an error naming the key and the allowed values.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "autograd/autocast.h"
#include "autograd/ops.h"
#include "tensor/error.h"
#include "train/checkpoint.h"
#include "train/cli/config.h"
#include "train/cli/optimization.h"
#include "train/cli/run_config.h"
#include "train/optim/adam.h"
#include "train/trainer.h"
#include "trainer_fixtures.h"

using namespace graft;
using namespace graft::train;
using graft::test::blobs;
using graft::test::make_mlp;
using graft::test::TempDir;

namespace {

// The MLP's classifier forward, recording the autocast dtype it ran under (training, evaluation).
struct Recorded {
  std::optional<DType> training, evaluation;
};

ForwardFn classify(nn::Module& model, Recorded* seen) {
  return [&model, seen](const data::Batch& batch, bool training) {
    (training ? seen->training : seen->evaluation) = autocast_dtype();
    Tensor logits = model.forward(batch.at("features"));
    return StepOutput{cross_entropy(logits, batch.at("labels")), logits};
  };
}

TrainerOptions mixed(MixedPrecision mode) {
  TrainerOptions options;
  options.progress = false;
  options.epochs = 4;
  options.batch_size = 32;
  options.metric_for_best = "accuracy";
  options.mixed_precision = mode;
  return options;
}

}  // namespace

TEST(TrainerMixedPrecision, Bf16TrainsWithF32MasterWeights) {
  manual_seed(0);
  auto [train_set, val_set] = blobs(600, 200, /*seed=*/1);
  auto model = make_mlp(2, 32, 3);
  optim::AdamWOptions adamw;
  adamw.lr = 1e-2;
  optim::AdamW optimizer(model->parameters(), adamw);
  Recorded seen;
  Trainer trainer(*model, optimizer, nullptr, classify(*model, &seen), mixed(MixedPrecision::bf16));
  EXPECT_EQ(trainer.grad_scaler(), nullptr);  // bf16 needs no loss scaling
  TrainResult result = trainer.fit(train_set, &val_set);
  EXPECT_EQ(seen.training, DType::bf16);
  EXPECT_EQ(seen.evaluation, DType::bf16);
  EXPECT_FALSE(autocast_dtype().has_value());  // nothing leaks out of fit
  EXPECT_LT(result.step_losses.back(), result.step_losses.front() / 4);
  EXPECT_GE(result.state.best_metric.value(), 0.9);
  EXPECT_EQ(result.state.amp_skipped_steps, 0);
  for (const auto& p : model->parameters()) EXPECT_EQ(p.dtype(), DType::f32);
}

TEST(TrainerMixedPrecision, F16ScalesTheLossSkipsOverflowsAndLogsThem) {
  manual_seed(0);
  auto [train_set, val_set] = blobs(600, 200, /*seed=*/1);
  auto model = make_mlp(2, 32, 3);
  optim::AdamWOptions adamw;
  adamw.lr = 1e-2;
  optim::AdamW optimizer(model->parameters(), adamw);
  TempDir dir;
  TrainerOptions options = mixed(MixedPrecision::f16);
  options.output_dir = dir.path();
  options.log_every_steps = 5;
  options.max_grad_norm = 1.0;  // clipping sees the unscaled gradients
  // At 2^30 the scaled gradients overflow f16 (max 65504) at once: the first steps are skipped
  // while the scale backs off to where f16 holds them.
  options.grad_scaler.init_scale = std::ldexp(1.0, 30);
  Recorded seen;
  Trainer trainer(*model, optimizer, nullptr, classify(*model, &seen), options);
  ASSERT_NE(trainer.grad_scaler(), nullptr);
  TrainResult result = trainer.fit(train_set, &val_set);
  EXPECT_EQ(seen.training, DType::f16);
  EXPECT_EQ(seen.evaluation, DType::f16);

  const int64_t amp_skipped = result.state.amp_skipped_steps;
  EXPECT_GT(amp_skipped, 0);
  EXPECT_LT(amp_skipped, 30);
  EXPECT_EQ(result.state.skipped_steps, 0);  // overflows are not non-finite losses
  EXPECT_EQ(optimizer.steps_taken(), result.state.global_step - amp_skipped);
  EXPECT_LT(trainer.grad_scaler()->get_scale(), std::ldexp(1.0, 30));
  EXPECT_LT(result.step_losses.back(), result.step_losses.front() / 4);
  EXPECT_GE(result.state.best_metric.value(), 0.9);

  // Every step record of an f16 run carries the scale and the overflow count; every overflowed
  // step is logged (whatever log_every_steps) and says why it was skipped.
  std::ifstream log(dir.path() / "log.jsonl");
  int64_t skipped_records = 0, last_count = 0;
  for (std::string line; std::getline(log, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record["event"] != "step") continue;
    ASSERT_TRUE(record.contains("loss_scale"));
    ASSERT_TRUE(record.contains("amp_skipped"));
    last_count = record["amp_skipped"].get<int64_t>();
    if (record.contains("skipped")) ++skipped_records;
  }
  EXPECT_EQ(skipped_records, amp_skipped);
  EXPECT_EQ(last_count, amp_skipped);

  // The scaler's state is in the checkpoint, and a resume restores it.
  const auto latest = CheckpointManager(dir.path() / "checkpoints", options.keep_last).latest();
  ASSERT_TRUE(latest.has_value());
  const nlohmann::json saved = read_trainer_state(*latest);
  ASSERT_TRUE(saved.contains("grad_scaler"));
  EXPECT_EQ(saved["grad_scaler"]["scale"].get<double>(), trainer.grad_scaler()->get_scale());
  EXPECT_EQ(saved["amp_skipped_steps"].get<int64_t>(), amp_skipped);

  auto resumed_model = make_mlp(2, 32, 3);
  optim::AdamW resumed_optimizer(resumed_model->parameters(), adamw);
  Recorded seen_again;
  Trainer resumed(*resumed_model, resumed_optimizer, nullptr, classify(*resumed_model, &seen_again), options);
  EXPECT_EQ(resumed.grad_scaler()->get_scale(), std::ldexp(1.0, 30));
  TrainResult again = resumed.fit(train_set, &val_set, *latest);  // nothing left to train
  EXPECT_EQ(again.state.global_step, result.state.global_step);
  EXPECT_EQ(resumed.grad_scaler()->get_scale(), trainer.grad_scaler()->get_scale());
  EXPECT_EQ(resumed.grad_scaler()->growth_tracker(), trainer.grad_scaler()->growth_tracker());
}

TEST(TrainerMixedPrecision, BadGradScalerOptionsAreRejected) {
  auto model = make_mlp(2, 4, 3);
  optim::AdamW optimizer(model->parameters());
  Recorded seen;
  TrainerOptions options = mixed(MixedPrecision::f16);
  options.grad_scaler.backoff_factor = 2.0;
  EXPECT_THROW(Trainer(*model, optimizer, nullptr, classify(*model, &seen), options), ValueError);
}

TEST(TrainerMixedPrecision, ConfigKeyReachesTrainerOptions) {
  for (const auto& [value, mode] : {std::pair{"none", MixedPrecision::none}, std::pair{"bf16", MixedPrecision::bf16},
                                    std::pair{"f16", MixedPrecision::f16}}) {
    const auto doc = cli::ConfigDocument::parse(std::string(R"({"train": {"mixed_precision": ")") + value + "\"}}",
                                                "run.json");
    const cli::RunConfig config = cli::read_run_config(doc);
    EXPECT_EQ(config.train.mixed_precision, value);
    EXPECT_EQ(cli::trainer_options(config).mixed_precision, mode);
    EXPECT_EQ(cli::to_json(config)["train"]["mixed_precision"], value);  // recorded in config.json
  }
  EXPECT_EQ(cli::trainer_options(cli::read_run_config(cli::ConfigDocument::parse("{}", "run.json"))).mixed_precision,
            MixedPrecision::none);
}

TEST(TrainerMixedPrecision, BadConfigValueNamesKeyAndChoices) {
  const auto doc = cli::ConfigDocument::parse(R"({"train": {"mixed_precision": "fp8"}})", "run.json");
  try {
    cli::read_run_config(doc);
    FAIL() << "fp8 was accepted";
  } catch (const FormatError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("train.mixed_precision"), std::string::npos) << message;
    EXPECT_NE(message.find("fp8"), std::string::npos) << message;
    EXPECT_NE(message.find("none, bf16, f16"), std::string::npos) << message;
  }
  EXPECT_THROW(parse_mixed_precision("fp8"), ValueError);
  EXPECT_EQ(parse_mixed_precision("bf16"), MixedPrecision::bf16);
  EXPECT_STREQ(mixed_precision_name(MixedPrecision::f16), "f16");
}
