// The Trainer end to end: training to a known accuracy, accumulation, clipping, NaN policy, early
// stopping with best restore, callbacks, logs, and bit-exact resume from a checkpoint.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "autograd/ops.h"
#include "nn/container.h"
#include "nn/activation.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "train/data/collate.h"
#include "train/optim/adam.h"
#include "train/optim/sgd.h"
#include "train/trainer.h"
#include "trainer_fixtures.h"

using namespace graft;
using namespace graft::train;
using graft::test::blobs;
using graft::test::make_mlp;
using graft::test::TempDir;

namespace {

ForwardFn classify(nn::Module& model) {
  return [&model](const data::Batch& batch, bool) {
    Tensor logits = model.forward(batch.at("features"));
    return StepOutput{cross_entropy(logits, batch.at("labels")), logits};
  };
}

TrainerOptions quiet(TrainerOptions options = {}) {
  options.progress = false;
  return options;
}

// Embedding -> mean over the attention mask -> Linear: the smallest text classifier.
class BagOfEmbeddings : public nn::Module {
 public:
  BagOfEmbeddings(int64_t vocab, int64_t dim, int64_t classes) : Module("BagOfEmbeddings") {
    embedding = register_module("embedding", std::make_shared<nn::Embedding>(vocab, dim, 0));
    head = register_module("head", std::make_shared<nn::Linear>(dim, classes));
  }
  Tensor forward_batch(const data::Batch& batch) {
    Tensor mask = batch.at("attention_mask").to(DType::f32).unsqueeze(-1);  // [B, L, 1]
    Tensor summed = sum(embedding->forward(batch.at("input_ids")) * mask, {1});
    return head->forward(summed / sum(mask, {1}));
  }
  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::Linear> head;
};

}  // namespace

TEST(Trainer, MlpLearnsBlobsToKnownAccuracy) {
  manual_seed(0);
  auto [train_set, val_set] = blobs(600, 200, /*seed=*/1);
  auto model = make_mlp(2, 32, 3);
  optim::AdamWOptions adamw;
  adamw.lr = 1e-2;
  optim::AdamW optimizer(model->parameters(), adamw);
  TrainerOptions options = quiet();
  options.epochs = 5;
  options.batch_size = 32;
  options.metric_for_best = "accuracy";
  Trainer trainer(*model, optimizer, nullptr, classify(*model), options);
  TrainResult result = trainer.fit(train_set, &val_set);
  EXPECT_EQ(result.state.global_step, 5 * 19);  // ceil(600 / 32) = 19 steps an epoch
  EXPECT_EQ(result.evaluations.size(), 5u);
  EXPECT_LT(result.step_losses.back(), result.step_losses.front() / 4);
  EXPECT_GE(trainer.evaluate(val_set).at("accuracy"), 0.95);
  EXPECT_GE(result.state.best_metric.value(), 0.95);
}

TEST(Trainer, TextClassifierLearnsTopicsToKnownAccuracy) {
  // Three topics: 70% of a sequence's tokens come from its topic's block of the vocabulary.
  manual_seed(0);
  Generator generator(5);
  auto make = [&](int64_t n) {
    std::vector<std::vector<int64_t>> sequences;
    std::vector<int64_t> labels;
    auto draws = rand({n, 40}, DType::f64, &generator).to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t topic = i % 3, length = 5 + static_cast<int64_t>(draws[i * 40] * 15);
      std::vector<int64_t> tokens;
      for (int64_t t = 0; t < length; ++t) {
        const double u = draws[i * 40 + 1 + t];
        tokens.push_back(u < 0.7 ? 1 + topic * 10 + static_cast<int64_t>(u / 0.7 * 10)
                                 : 1 + static_cast<int64_t>((u - 0.7) / 0.3 * 30));
      }
      sequences.push_back(tokens);
      labels.push_back(topic);
    }
    return data::SequenceDataset(sequences, labels, {.pad_id = 0});
  };
  data::SequenceDataset train_set = make(450), val_set = make(150);
  BagOfEmbeddings model(31, 16, 3);
  optim::Adam optimizer(model.parameters(), {.lr = 2e-2});
  TrainerOptions options = quiet();
  options.epochs = 4;
  options.batch_size = 16;
  options.group_by_length = true;
  options.metric_for_best = "macro_f1";
  Trainer trainer(model, optimizer, nullptr,
                  [&](const data::Batch& batch, bool) {
                    Tensor logits = model.forward_batch(batch);
                    return StepOutput{cross_entropy(logits, batch.at("labels")), logits};
                  },
                  options);
  TrainResult result = trainer.fit(train_set, &val_set);
  Metrics metrics = trainer.evaluate(val_set);
  EXPECT_GE(metrics.at("accuracy"), 0.95);
  EXPECT_GE(metrics.at("macro_f1"), 0.95);
  EXPECT_EQ(result.evaluations.back().second.count("macro_precision"), 1u);
}

TEST(Trainer, AccumulationEqualsOneLargerBatch) {
  auto [train_set, val_set] = blobs(64, 8, 2);
  auto run = [&](int64_t batch, int64_t accumulation) {
    manual_seed(3);
    auto model = make_mlp(2, 8, 3);
    optim::SGD optimizer(model->parameters(), {.lr = 0.1});
    TrainerOptions options = quiet();
    options.batch_size = batch;
    options.accumulation_steps = accumulation;
    options.shuffle = false;
    options.epochs = 2;
    Trainer trainer(*model, optimizer, nullptr, classify(*model), options);
    TrainResult result = trainer.fit(train_set);
    return std::make_pair(result, model->parameters()[0].clone());
  };
  auto [big, w_big] = run(16, 1);
  auto [small, w_small] = run(4, 4);
  ASSERT_EQ(big.step_losses.size(), small.step_losses.size());
  for (size_t i = 0; i < big.step_losses.size(); ++i) EXPECT_NEAR(big.step_losses[i], small.step_losses[i], 1e-5);
  EXPECT_TRUE(allclose(w_big, w_small, 1e-5, 1e-6));
}

TEST(Trainer, ShortLastStepAveragesOverItsOwnBatches) {
  // 5 batches with accumulation 2: steps of 2, 2 and 1 batches; 3 steps an epoch.
  auto [train_set, val_set] = blobs(20, 4, 2);
  auto model = make_mlp(2, 4, 3);
  optim::SGD optimizer(model->parameters(), {.lr = 0.0});
  TrainerOptions options = quiet();
  options.batch_size = 4;
  options.accumulation_steps = 2;
  Trainer trainer(*model, optimizer, nullptr, classify(*model), options);
  EXPECT_EQ(trainer.fit(train_set).state.global_step, 3);
}

TEST(Trainer, NonFiniteLossIsSkippedOrStops) {
  auto [train_set, val_set] = blobs(40, 4, 2);
  for (NonFinitePolicy policy : {NonFinitePolicy::skip_step, NonFinitePolicy::stop}) {
    auto model = make_mlp(2, 4, 3);
    optim::SGD optimizer(model->parameters(), {.lr = 0.1});
    TrainerOptions options = quiet();
    options.batch_size = 10;
    options.shuffle = false;
    options.non_finite = policy;
    int64_t calls = 0;
    Tensor before_bad_step;
    Trainer trainer(*model, optimizer, nullptr,
                    [&](const data::Batch& batch, bool) {
                      Tensor logits = model->forward(batch.at("features"));
                      Tensor loss = cross_entropy(logits, batch.at("labels"));
                      if (++calls == 3) {
                        before_bad_step = model->parameters()[0].clone();
                        loss = loss * std::nan("");
                      }
                      return StepOutput{loss, logits};
                    },
                    options);
    if (policy == NonFinitePolicy::stop) {
      try {
        trainer.fit(train_set);
        FAIL() << "expected NumericError";
      } catch (const NumericError& e) {
        EXPECT_NE(std::string(e.what()).find("step 3"), std::string::npos) << e.what();
      }
      continue;
    }
    Tensor after;
    struct Spy : Callback {
      Tensor* out;
      nn::Module* model;
      void on_step_end(Trainer&, TrainerState& state) override {
        if (state.global_step == 3) *out = model->parameters()[0].clone();
      }
    };
    auto spy = std::make_shared<Spy>();
    spy->out = &after;
    spy->model = model.get();
    trainer.add_callback(spy);
    TrainResult result = trainer.fit(train_set);
    EXPECT_EQ(result.state.skipped_steps, 1);
    EXPECT_EQ(result.state.global_step, 4);
    EXPECT_TRUE(allclose(after, before_bad_step, 0, 0));  // the bad step changed nothing
    EXPECT_FALSE(model->parameters()[0].grad().defined());
  }
}

TEST(Trainer, ClippingBoundsTheUpdate) {
  auto [train_set, val_set] = blobs(32, 4, 2);
  manual_seed(4);
  auto model = make_mlp(2, 4, 3);
  const Tensor before = model->parameters()[0].clone();
  optim::SGD optimizer(model->parameters(), {.lr = 1.0});
  TrainerOptions options = quiet();
  options.batch_size = 32;
  options.max_grad_norm = 1e-3;
  options.max_steps = 1;
  Trainer trainer(*model, optimizer, nullptr, classify(*model), options);
  trainer.fit(train_set);
  // With lr 1 the update of every parameter together has norm <= max_grad_norm.
  EXPECT_LE(std::sqrt(sum(square(model->parameters()[0] - before)).item()), 1e-3 + 1e-6);
}

TEST(Trainer, EarlyStoppingStopsAndRestoresTheBestWeights) {
  auto [train_set, val_set] = blobs(40, 8, 2);
  auto model = make_mlp(2, 4, 3);
  optim::SGD optimizer(model->parameters(), {.lr = 0.05});
  TrainerOptions options = quiet();
  options.batch_size = 10;
  options.epochs = 20;
  options.early_stopping = {.patience = 2, .min_delta = 0.01, .restore_best = true};
  // Scripted validation losses. 0.495 is the best (and its weights are restored), but it beats
  // 0.5 by less than min_delta, so it does not reset the patience counter; 0.7 then stops the run.
  const std::vector<double> script{1.0, 0.5, 0.495, 0.7, 0.2};
  int64_t evaluations = 0;
  std::vector<Tensor> weights_at_eval;
  Trainer trainer(*model, optimizer, nullptr,
                  [&](const data::Batch& batch, bool training) {
                    Tensor logits = model->forward(batch.at("features"));
                    if (training) return StepOutput{cross_entropy(logits, batch.at("labels")), logits};
                    return StepOutput{full({}, script[static_cast<size_t>(evaluations)]), Tensor()};
                  },
                  options);
  struct Count : Callback {
    int64_t* evaluations;
    std::vector<Tensor>* weights;
    nn::Module* model;
    void on_evaluate(Trainer&, TrainerState&, const Metrics&) override {
      ++*evaluations;
      weights->push_back(model->parameters()[0].clone());
    }
  };
  auto counter = std::make_shared<Count>();
  counter->evaluations = &evaluations;
  counter->weights = &weights_at_eval;
  counter->model = model.get();
  trainer.add_callback(counter);
  TrainResult result = trainer.fit(train_set, &val_set);
  EXPECT_TRUE(result.stopped_early);
  EXPECT_EQ(evaluations, 4);
  EXPECT_EQ(result.state.best_step, 12);  // 4 steps an epoch, best after epoch 3
  EXPECT_FLOAT_EQ(result.state.best_metric.value(), 0.495);
  EXPECT_TRUE(allclose(model->parameters()[0], weights_at_eval[2], 0, 0));
}

TEST(Trainer, CallbackCanStopAndLogsAreWritten) {
  TempDir dir;
  auto [train_set, val_set] = blobs(40, 8, 2);
  auto model = make_mlp(2, 4, 3);
  optim::SGD optimizer(model->parameters(), {.lr = 0.05});
  TrainerOptions options = quiet();
  options.batch_size = 10;
  options.epochs = 10;
  options.eval_every_steps = 3;
  options.output_dir = dir.path();
  struct StopAt : Callback {
    void on_step_end(Trainer&, TrainerState& state) override { state.should_stop = state.global_step == 7; }
  };
  Trainer trainer(*model, optimizer, nullptr, classify(*model), options);
  trainer.add_callback(std::make_shared<StopAt>());
  TrainResult result = trainer.fit(train_set, &val_set);
  EXPECT_EQ(result.state.global_step, 7);
  std::ifstream log(dir.path() / "log.jsonl");
  int64_t steps = 0, evals = 0;
  for (std::string line; std::getline(log, line);) {
    auto record = nlohmann::json::parse(line);
    if (record["event"] == "step") {
      ++steps;
      EXPECT_TRUE(record["loss"].is_number());
      EXPECT_EQ(record["lr"].size(), 1u);
    }
    if (record["event"] == "eval") {
      ++evals;
      EXPECT_TRUE(record.contains("accuracy"));
    }
  }
  EXPECT_EQ(steps, 7);
  EXPECT_EQ(evals, 4);  // steps 3, 4 (epoch end), 6, and the final one at 7
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "checkpoints" / "checkpoints.json"));
}

TEST(Trainer, BadArgumentsAreNamed) {
  auto model = make_mlp(2, 4, 3);
  optim::SGD optimizer(model->parameters(), {.lr = 0.1});
  TrainerOptions options = quiet();
  options.batch_size = 0;
  EXPECT_THROW(Trainer(*model, optimizer, nullptr, classify(*model), options), ValueError);
  options.batch_size = 4;
  options.metric_for_best = "bleu";
  auto [train_set, val_set] = blobs(8, 4, 2);
  Trainer trainer(*model, optimizer, nullptr, classify(*model), options);
  try {
    trainer.fit(train_set, &val_set);
    FAIL();
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("bleu"), std::string::npos);
  }
}

TEST(Trainer, PlateauSchedulerStepsOnTheValidationMetric) {
  auto [train_set, val_set] = blobs(40, 8, 2);
  auto model = make_mlp(2, 4, 3);
  optim::SGD optimizer(model->parameters(), {.lr = 0.1});
  optim::PlateauOptions plateau;
  plateau.patience = 0;
  plateau.factor = 0.5;
  optim::ReduceLROnPlateau scheduler(optimizer, plateau);
  TrainerOptions options = quiet();
  options.batch_size = 10;
  options.epochs = 3;
  // Validation loss 1.0, then 2.0 twice: no improvement after the first, so the lr halves twice.
  const std::vector<double> script{1.0, 2.0, 2.0};
  int64_t evaluations = 0;
  Trainer trainer(*model, optimizer, &scheduler,
                  [&](const data::Batch& batch, bool training) {
                    Tensor logits = model->forward(batch.at("features"));
                    if (training) return StepOutput{cross_entropy(logits, batch.at("labels")), logits};
                    return StepOutput{full({}, script[static_cast<size_t>(evaluations++)]), Tensor()};
                  },
                  options);
  trainer.fit(train_set, &val_set);
  EXPECT_EQ(evaluations, 3);
  EXPECT_DOUBLE_EQ(optimizer.param_groups()[0].lr, 0.025);
  EXPECT_THROW(trainer.fit(train_set), ValueError);  // no validation set to step on
}

TEST(Trainer, GradientsFromBeforeFitDoNotLeakIn) {
  auto [train_set, val_set] = blobs(30, 3, 2);
  auto run = [&](bool dirty) {
    manual_seed(5);
    auto model = make_mlp(2, 4, 3);
    optim::SGD optimizer(model->parameters(), {.lr = 0.1});
    if (dirty) model->forward(ones({1, 2})).sum().backward();  // a user's stray backward
    TrainerOptions options = quiet();
    options.batch_size = 10;
    options.shuffle = false;
    Trainer trainer(*model, optimizer, nullptr, classify(*model), options);
    trainer.fit(train_set);
    return model->parameters()[0].clone();
  };
  EXPECT_TRUE(allclose(run(true), run(false), 0, 0));
}

TEST(Trainer, SkippedStepDoesNotAdvanceTheSchedule) {
  auto [train_set, val_set] = blobs(40, 4, 2);
  auto model = make_mlp(2, 4, 3);
  optim::SGD optimizer(model->parameters(), {.lr = 1.0});
  optim::StepLR schedule(optimizer, 1, 0.5);
  TrainerOptions options = quiet();
  options.batch_size = 10;
  int64_t calls = 0;
  Trainer trainer(*model, optimizer, &schedule,
                  [&](const data::Batch& batch, bool) {
                    Tensor logits = model->forward(batch.at("features"));
                    Tensor loss = cross_entropy(logits, batch.at("labels"));
                    return StepOutput{++calls == 2 ? loss * std::nan("") : loss, logits};
                  },
                  options);
  TrainResult result = trainer.fit(train_set);
  EXPECT_EQ(result.state.global_step, 4);
  EXPECT_EQ(result.state.skipped_steps, 1);
  EXPECT_DOUBLE_EQ(optimizer.param_groups()[0].lr, 0.125);  // 3 real steps, 3 halvings
}

TEST(Trainer, FreshRunRefusesADirectoryWithAnotherRunsCheckpoints) {
  TempDir dir;
  auto [train_set, val_set] = blobs(20, 4, 2);
  auto model = make_mlp(2, 4, 3);
  optim::SGD optimizer(model->parameters(), {.lr = 0.1});
  TrainerOptions options = quiet();
  options.batch_size = 10;
  options.output_dir = dir.path();
  Trainer(*model, optimizer, nullptr, classify(*model), options).fit(train_set);
  EXPECT_THROW(Trainer(*model, optimizer, nullptr, classify(*model), options).fit(train_set), ValueError);
  options.overwrite_output_dir = true;
  EXPECT_NO_THROW(Trainer(*model, optimizer, nullptr, classify(*model), options).fit(train_set));
}
