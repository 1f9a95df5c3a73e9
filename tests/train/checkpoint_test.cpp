// Checkpoints: bit-exact resume, crash-safe saves, and bad files that change nothing.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "autograd/ops.h"
#include "nn/atomic_file.h"
#include "nn/safetensors.h"
#include "train/checkpoint.h"
#include "train/optim/adam.h"
#include "train/optim/scheduler.h"
#include "train/optim/sgd.h"
#include "train/run_log.h"
#include "train/trainer.h"
#include "trainer_fixtures.h"

using namespace graft;
using namespace graft::train;
using graft::test::blobs;
using graft::test::make_mlp;
using graft::test::TempDir;

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// A run with every source of state: dropout (the generator), shuffling, AdamW's moments, a
// warmup + decay schedule and gradient accumulation.
struct ResumableRun {
  std::shared_ptr<nn::Sequential> model;
  std::unique_ptr<optim::AdamW> optimizer;
  std::unique_ptr<optim::LinearWithWarmupLR> scheduler;
  std::unique_ptr<Trainer> trainer;

  ResumableRun(const std::filesystem::path& dir, int64_t max_steps) {
    manual_seed(11);
    model = make_mlp(2, 16, 3, /*dropout=*/0.3);
    optim::AdamWOptions adamw;
    adamw.lr = 1e-2;
    optimizer = std::make_unique<optim::AdamW>(model->parameters(), adamw);
    scheduler = std::make_unique<optim::LinearWithWarmupLR>(*optimizer, 3, 12);
    TrainerOptions options;
    options.progress = false;
    options.max_steps = max_steps;
    options.batch_size = 8;
    options.accumulation_steps = 2;
    options.save_every_steps = 3;
    options.keep_last = 5;
    options.output_dir = dir;
    options.seed = 3;
    trainer = std::make_unique<Trainer>(*model, *optimizer, scheduler.get(),
                                        [this](const data::Batch& batch, bool) {
                                          Tensor logits = model->forward(batch.at("features"));
                                          return StepOutput{cross_entropy(logits, batch.at("labels")), logits};
                                        },
                                        options);
  }
};

}  // namespace

TEST(Checkpoint, ResumedRunReproducesTheUninterruptedLossesBitForBit) {
  auto [train_set, val_set] = blobs(72, 9, 7);  // 9 batches: 5 steps an epoch, the last one short
  TempDir full_dir, resumed_dir;
  ResumableRun whole(full_dir.path(), 12);
  TrainResult uninterrupted = whole.trainer->fit(train_set);
  ASSERT_EQ(uninterrupted.step_losses.size(), 12u);

  // A second run is cut off after step 7 (as if killed); a fresh setup resumes from its step-6
  // checkpoint, saved mid-epoch (epoch 1, 2 of 9 batches done), and must replay steps 7..12 exactly.
  ResumableRun first(resumed_dir.path(), 12);
  struct StopAt : Callback {
    void on_step_end(Trainer&, TrainerState& state) override { state.should_stop = state.global_step == 7; }
  };
  first.trainer->add_callback(std::make_shared<StopAt>());
  first.trainer->fit(train_set);
  ASSERT_TRUE(std::filesystem::exists(resumed_dir.path() / "checkpoints" / "checkpoint-6.safetensors"));

  ResumableRun second(resumed_dir.path(), 12);
  manual_seed(999);  // the resume must restore the generator itself
  TrainResult resumed =
      second.trainer->fit(train_set, nullptr, resumed_dir.path() / "checkpoints" / "checkpoint-6.safetensors");
  ASSERT_EQ(resumed.step_losses.size(), 6u);
  for (size_t i = 0; i < resumed.step_losses.size(); ++i) {
    EXPECT_EQ(resumed.step_losses[i], uninterrupted.step_losses[6 + i]) << "step " << 7 + i;
  }
  auto a = whole.model->parameters(), b = second.model->parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(allclose(a[i], b[i], 0, 0));
  EXPECT_EQ(second.scheduler->last_lr(), whole.scheduler->last_lr());
}

TEST(Checkpoint, SaveInterruptedBeforeRenameLeavesTheLastGoodCheckpoint) {
  TempDir dir;
  auto model = make_mlp(2, 4, 3);
  optim::SGD optimizer(model->parameters(), {.lr = 0.1, .momentum = 0.9});
  const auto path = dir.path() / "checkpoint.safetensors";
  save_checkpoint(path, *model, &optimizer, nullptr, {{"note", "good"}});
  const std::string good = read_file(path);
  // The crash: new bytes fully written to the temp file, then no rename.
  EXPECT_THROW(nn::write_file_atomic(path, "half of something else", {.fail_before_rename = true}), IOError);
  EXPECT_EQ(read_file(path), good);
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename(), "checkpoint.safetensors") << "temp file left behind";
  }
  auto other = make_mlp(2, 4, 3);
  optim::SGD other_optimizer(other->parameters(), {.lr = 0.1, .momentum = 0.9});
  auto trainer_state = load_checkpoint(path, *other, &other_optimizer, nullptr);
  EXPECT_EQ(trainer_state["note"], "good");
  EXPECT_TRUE(allclose(other->parameters()[0], model->parameters()[0], 0, 0));
}

TEST(Checkpoint, TruncatedAndCorruptFilesAreFormatErrorsAndChangeNothing) {
  TempDir dir;
  auto model = make_mlp(2, 4, 3);
  optim::SGD optimizer(model->parameters(), {.lr = 0.1});
  const auto path = dir.path() / "checkpoint.safetensors";
  save_checkpoint(path, *model, &optimizer, nullptr);
  const std::string bytes = read_file(path);

  auto target = make_mlp(2, 4, 3);
  optim::SGD target_optimizer(target->parameters(), {.lr = 0.1});
  const Tensor before = target->parameters()[0].clone();
  const auto broken = dir.path() / "broken.safetensors";
  for (size_t cut : {size_t{0}, size_t{5}, size_t{8}, size_t{40}, bytes.size() / 2, bytes.size() - 1}) {
    write_file(broken, bytes.substr(0, cut));
    EXPECT_THROW(load_checkpoint(broken, *target, &target_optimizer, nullptr), FormatError) << "cut at " << cut;
  }
  std::string corrupt = bytes;
  corrupt[12] = '!';  // inside the JSON header
  write_file(broken, corrupt);
  EXPECT_THROW(load_checkpoint(broken, *target, &target_optimizer, nullptr), FormatError);
  // A plain safetensors file (say, a model's weights) is not a checkpoint.
  nn::save_safetensors(broken, model->state_dict());
  EXPECT_THROW(load_checkpoint(broken, *target, &target_optimizer, nullptr), FormatError);
  EXPECT_THROW(load_checkpoint(dir.path() / "missing.safetensors", *target, &target_optimizer, nullptr), IOError);
  EXPECT_TRUE(allclose(target->parameters()[0], before, 0, 0));
}

TEST(Checkpoint, WrongShapesOrOptimizerChangeNothing) {
  TempDir dir;
  manual_seed(1);
  auto model = make_mlp(2, 4, 3);
  optim::SGD optimizer(model->parameters(), {.lr = 0.1, .momentum = 0.9});
  // One step so that the optimizer has buffers.
  cross_entropy(model->forward(randn({5, 2})), from_vector<int64_t>({0, 1, 2, 0, 1})).backward();
  optimizer.step();
  const auto path = dir.path() / "checkpoint.safetensors";
  save_checkpoint(path, *model, &optimizer, nullptr);

  auto wider = make_mlp(2, 5, 3);
  optim::SGD wider_optimizer(wider->parameters(), {.lr = 0.1, .momentum = 0.9});
  const Tensor wider_before = wider->parameters()[0].clone();
  try {
    load_checkpoint(path, *wider, &wider_optimizer, nullptr);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("0.weight: expected [5, 2], got [4, 2]"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(allclose(wider->parameters()[0], wider_before, 0, 0));

  // Same model, other optimizer: the model part would load, the optimizer refuses; the model is rolled back.
  auto same = make_mlp(2, 4, 3);
  optim::Adam adam(same->parameters(), {.lr = 0.1});
  const Tensor same_before = same->parameters()[0].clone();
  EXPECT_THROW(load_checkpoint(path, *same, &adam, nullptr), Error);
  EXPECT_TRUE(allclose(same->parameters()[0], same_before, 0, 0));
  EXPECT_EQ(adam.steps_taken(), 0);

  // A scheduler the checkpoint does not hold.
  optim::SGD plain(same->parameters(), {.lr = 0.1, .momentum = 0.9});
  optim::StepLR step_lr(plain, 1, 0.5);
  EXPECT_THROW(load_checkpoint(path, *same, &plain, &step_lr), ValueError);
  EXPECT_TRUE(allclose(same->parameters()[0], same_before, 0, 0));
}

TEST(Checkpoint, ManagerKeepsTheLastKAndTheBest) {
  TempDir dir;
  auto model = make_mlp(2, 4, 3);
  CheckpointManager manager(dir.path(), 2);
  const std::vector<double> metrics{0.5, 0.9, 0.6, 0.7, 0.8};
  for (size_t i = 0; i < metrics.size(); ++i) {
    manager.save(static_cast<int64_t>(i + 1), *model, nullptr, nullptr, {}, metrics[i], /*greater_is_better=*/true);
  }
  std::vector<int64_t> steps;
  for (const auto& entry : manager.entries()) steps.push_back(entry.step);
  EXPECT_EQ(steps, (std::vector<int64_t>{2, 4, 5}));
  EXPECT_EQ(manager.best()->filename(), "checkpoint-2.safetensors");
  EXPECT_EQ(manager.latest()->filename(), "checkpoint-5.safetensors");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "checkpoint-1.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "checkpoint-3.safetensors"));
  CheckpointManager reopened(dir.path(), 2);  // reads checkpoints.json
  EXPECT_EQ(reopened.entries().size(), 3u);
  EXPECT_EQ(reopened.best()->filename(), "checkpoint-2.safetensors");
  write_file(dir.path() / "checkpoints.json", "{\"checkpoints\": [{\"step\": 1, \"file\": \"../../etc/passwd\"}]}");
  EXPECT_THROW(CheckpointManager(dir.path(), 2), FormatError);
}

namespace {

// A classifier run whose validation loss follows a script, one value per evaluation.
struct ScriptedRun {
  std::shared_ptr<nn::Sequential> model;
  std::unique_ptr<optim::SGD> optimizer;
  std::unique_ptr<Trainer> trainer;
  std::vector<double> script;
  int64_t evaluations = 0;

  ScriptedRun(const std::filesystem::path& dir, int64_t epochs, std::vector<double> losses, int64_t batch_size = 10)
      : script(std::move(losses)) {
    manual_seed(2);
    model = make_mlp(2, 4, 3);
    optimizer = std::make_unique<optim::SGD>(model->parameters(), optim::SGDOptions{.lr = 0.1});
    TrainerOptions options;
    options.progress = false;
    options.batch_size = batch_size;
    options.epochs = epochs;
    options.output_dir = dir;
    options.early_stopping.patience = 5;
    trainer = std::make_unique<Trainer>(*model, *optimizer, nullptr,
                                        [this](const data::Batch& batch, bool training) {
                                          Tensor logits = model->forward(batch.at("features"));
                                          if (training) return StepOutput{cross_entropy(logits, batch.at("labels")), logits};
                                          return StepOutput{full({}, script.at(static_cast<size_t>(evaluations++))), Tensor()};
                                        },
                                        options);
  }
};

std::filesystem::path latest(const std::filesystem::path& dir) {
  return *CheckpointManager(dir / "checkpoints", 2).latest();
}

}  // namespace

TEST(Checkpoint, ResumeAfterAnEpochEndDoesNotEvaluateItAgain) {
  TempDir dir;
  auto [train_set, val_set] = blobs(40, 4, 2);
  ScriptedRun first(dir.path(), 1, {0.5});
  first.trainer->fit(train_set, &val_set);
  ScriptedRun second(dir.path(), 2, {0.4});
  TrainResult result = second.trainer->fit(train_set, &val_set, latest(dir.path()));
  EXPECT_EQ(second.evaluations, 1);  // only the end of epoch 2
  EXPECT_EQ(result.state.global_step, 8);
  EXPECT_EQ(result.state.evaluations_without_improvement, 0);
  EXPECT_FLOAT_EQ(result.state.best_metric.value(), 0.4);
}

TEST(Checkpoint, BestWeightsAreRestoredFromTheirCheckpointAfterAResume) {
  TempDir dir;
  auto [train_set, val_set] = blobs(40, 4, 2);
  ScriptedRun first(dir.path(), 2, {0.5, 0.9});  // best after epoch 1 (step 4)
  first.trainer->fit(train_set, &val_set);
  // restore_best put the step-4 weights back in the first run: they are the reference.
  const Tensor best_weights = first.model->parameters()[0].clone();
  ScriptedRun second(dir.path(), 3, {0.95});
  TrainResult result = second.trainer->fit(train_set, &val_set, latest(dir.path()));
  EXPECT_EQ(result.state.best_step, 4);
  EXPECT_TRUE(allclose(second.model->parameters()[0], best_weights, 0, 0));
}

TEST(Checkpoint, ResumeWithOtherBatchesIsRefusedBeforeAnythingChanges) {
  TempDir dir;
  auto [train_set, val_set] = blobs(40, 4, 2);
  ScriptedRun first(dir.path(), 1, {0.5});
  first.trainer->fit(train_set, &val_set);
  ScriptedRun other(dir.path(), 2, {0.4}, /*batch_size=*/8);
  const Tensor before = other.model->parameters()[0].clone();
  try {
    other.trainer->fit(train_set, &val_set, latest(dir.path()));
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("batch_size"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(allclose(other.model->parameters()[0], before, 0, 0));
  EXPECT_EQ(other.optimizer->steps_taken(), 0);
}

TEST(Checkpoint, AnEvaluationMetricReachesACheckpointAlreadySavedAtThatStep) {
  TempDir dir;
  auto [train_set, val_set] = blobs(40, 4, 2);
  auto model = make_mlp(2, 4, 3);
  optim::SGD optimizer(model->parameters(), {.lr = 0.1});
  TrainerOptions options;
  options.progress = false;
  options.batch_size = 10;
  options.epochs = 2;
  options.save_every_steps = 4;  // lands on the epoch ends, where the evaluations are
  options.output_dir = dir.path();
  Trainer trainer(*model, optimizer, nullptr, [&](const data::Batch& batch, bool) {
    Tensor logits = model->forward(batch.at("features"));
    return StepOutput{cross_entropy(logits, batch.at("labels")), logits};
  }, options);
  trainer.fit(train_set, &val_set);
  CheckpointManager manager(dir.path() / "checkpoints", 2);
  for (const auto& entry : manager.entries()) EXPECT_TRUE(entry.metric.has_value()) << entry.file;
  EXPECT_TRUE(manager.best().has_value());
}

TEST(Checkpoint, RunLogEndsAFragmentLeftByACrash) {
  TempDir dir;
  const auto path = dir.path() / "log.jsonl";
  write_file(path, "{\"event\": \"step\", \"step\": 1}\n{\"event\": \"st");
  {
    RunLog log(path, /*append=*/true);
    log.write({{"event", "step"}, {"step", 2}});
  }
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(nlohmann::json::parse(lines[2])["step"], 2);
}
