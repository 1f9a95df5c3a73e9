// Distributed training under `mpirun -np N` (CTest runs N = 2, and N = 1): the process group's
// collectives, the distributed sampler, DataParallel's bucketed gradient averaging, and the
// Trainer: N ranks with batch B take the same steps as one process with batch N * B.
// Every test also runs the one-process reference itself, so each rank checks the equivalence.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "autograd/ops.h"
#include "nn/linear.h"
#include "train/distributed/data_parallel.h"
#include "train/distributed/process_group.h"
#include "train/distributed/sampler.h"
#include "train/optim/adam.h"
#include "train/optim/sgd.h"
#include "train/trainer.h"
#include "../trainer_fixtures.h"
#include "dist_test_models.h"
#include "dist_test_world.h"

using namespace graft;
using namespace graft::train;
using graft::test::blobs;
using graft::test::make_mlp;
using graft::test::world;
using graft::test::Tied;
using graft::test::TwoHeads;
namespace dist = graft::train::distributed;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  auto x = a.to(DType::f64).reshape({-1}).to_vector<double>();
  auto y = b.to(DType::f64).reshape({-1}).to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  return worst;
}

double max_param_diff(const nn::Module& a, const nn::Module& b) {
  auto pa = a.named_parameters();
  auto pb = b.named_parameters();
  EXPECT_EQ(pa.size(), pb.size());
  double worst = 0;
  for (size_t i = 0; i < pa.size(); ++i) worst = std::max(worst, max_abs_diff(pa[i].second, pb[i].second));
  return worst;
}

ForwardFn classify(nn::Module& model) {
  return [&model](const data::Batch& batch, bool) {
    Tensor logits = model.forward(batch.at("features"));
    return StepOutput{cross_entropy(logits, batch.at("labels")), logits};
  };
}

// The same path on every rank (rank 0's temporary directory).
std::filesystem::path shared_temp_dir(const std::string& name) {
  std::string path;
  if (world()->rank() == 0) {
    path = (std::filesystem::temp_directory_path() /
            ("graft-dist-test-" + std::to_string(::getpid()) + "-" + name)).string();
    std::filesystem::remove_all(path);
  }
  return world()->broadcast_bytes(path, 0);
}


}  // namespace

// --- ProcessGroup ---

TEST(ProcessGroup, RankWorldAndLocalRank) {
  auto& g = world();
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (size) EXPECT_EQ(g->world_size(), std::atoi(size));
  EXPECT_GE(g->rank(), 0);
  EXPECT_LT(g->rank(), g->world_size());
  EXPECT_GE(g->local_rank(), 0);
  EXPECT_LT(g->local_rank(), g->local_size());
  EXPECT_LE(g->local_size(), g->world_size());
  EXPECT_TRUE(dist::ProcessGroup::available());
}

TEST(ProcessGroup, AllReduceSumAndAverageF32AndF64) {
  auto& g = world();
  const int w = g->world_size(), r = g->rank();
  for (DType dtype : {DType::f32, DType::f64}) {
    Tensor t = full({3, 5}, static_cast<double>(r + 1), dtype);
    g->all_reduce(t, dist::ReduceOp::sum);
    for (double v : t.to(DType::f64).reshape({-1}).to_vector<double>()) EXPECT_EQ(v, w * (w + 1) / 2.0);
    Tensor a = full({7}, static_cast<double>(r + 1), dtype);
    g->all_reduce(a, dist::ReduceOp::avg);
    for (double v : a.to(DType::f64).to_vector<double>()) EXPECT_DOUBLE_EQ(v, (w + 1) / 2.0);
  }
  std::vector<double> values{static_cast<double>(r), 1.0};
  g->all_reduce(values);
  EXPECT_EQ(values[0], w * (w - 1) / 2.0);
  EXPECT_EQ(values[1], w);
}

TEST(ProcessGroup, AsyncAllReduceCompletes) {
  auto& g = world();
  Tensor a = full({1000}, 1.0, DType::f32);
  Tensor b = full({10}, 2.0, DType::f64);
  auto wa = g->all_reduce_async(a);
  auto wb = g->all_reduce_async(b);
  wb->wait();
  wa->wait();
  EXPECT_TRUE(wa->test());
  EXPECT_EQ(a.to_vector<float>()[999], static_cast<float>(g->world_size()));
  EXPECT_EQ(b.to_vector<double>()[0], 2.0 * g->world_size());
}

TEST(ProcessGroup, BroadcastAndGather) {
  auto& g = world();
  const int r = g->rank(), w = g->world_size();
  Tensor t = r == 0 ? arange(0.0, 6.0, 1.0, DType::f32).reshape({2, 3}) : zeros({2, 3});
  g->broadcast(t, 0);
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  Tensor ids = r == 0 ? from_vector<int64_t>({7, 8, 9}) : zeros({3}, DType::i64);
  g->broadcast(ids, 0);  // any dtype: bytes
  EXPECT_EQ(ids.to_vector<int64_t>(), (std::vector<int64_t>{7, 8, 9}));
  EXPECT_EQ(g->broadcast_bytes(r == 0 ? "from rank 0" : "", 0), "from rank 0");
  // Lengths differ by rank.
  std::vector<double> mine(static_cast<size_t>(r + 1), static_cast<double>(r));
  auto all = g->all_gather(mine);
  ASSERT_EQ(all.size(), static_cast<size_t>(w));
  for (int k = 0; k < w; ++k) EXPECT_EQ(all[static_cast<size_t>(k)], std::vector<double>(static_cast<size_t>(k + 1), k));
  auto bytes = g->all_gather_bytes(std::string(static_cast<size_t>(r), 'x'));
  for (int k = 0; k < w; ++k) EXPECT_EQ(bytes[static_cast<size_t>(k)], std::string(static_cast<size_t>(k), 'x'));
  g->barrier();
}

TEST(ProcessGroup, RejectsWhatMpiCannotReduce) {
  auto& g = world();
  Tensor ints = zeros({4}, DType::i64);
  EXPECT_THROW(g->all_reduce(ints), DTypeError);
  Tensor strided = zeros({4, 4}).t();
  EXPECT_THROW(g->all_reduce(strided), ValueError);
  EXPECT_THROW(g->broadcast_bytes("x", g->world_size()), ValueError);
  EXPECT_THROW(g->set_timeout_s(0), ValueError);
}

// --- DistributedBatchSampler ---

TEST(DistributedSampler, ShardsAreDisjointCoverEveryGlobalBatchAndMatchOneProcess) {
  for (int w : {1, 2, 3}) {
    data::BatchSamplerOptions options;
    options.batch_size = 4;
    options.seed = 11;
    // 24 examples: every global batch is full, so the shards are exactly one process's batches.
    dist::DistributedBatchSampler sampler(24, options, 0, w);
    data::BatchSamplerOptions one = options;
    one.batch_size = 4 * w;
    data::BatchSampler reference(24, one);
    for (int64_t epoch : {0, 1}) {
      auto per_rank = sampler.all_batches(epoch);
      auto global = reference.batches(epoch);
      ASSERT_EQ(static_cast<int64_t>(global.size()), sampler.batches_per_epoch());
      for (size_t b = 0; b < global.size(); ++b) {
        std::vector<int64_t> joined;
        for (int r = 0; r < w; ++r) {
          const auto& shard = per_rank[static_cast<size_t>(r)][b];
          EXPECT_EQ(shard.size(), 4u);
          joined.insert(joined.end(), shard.begin(), shard.end());
        }
        EXPECT_EQ(joined, global[b]) << "world " << w << " epoch " << epoch << " batch " << b;
      }
      // Deterministic: asking again gives the same shards; another epoch another order.
      EXPECT_EQ(sampler.all_batches(epoch), per_rank);
    }
    if (w > 1) EXPECT_NE(sampler.all_batches(0), sampler.all_batches(1));
  }
}

TEST(DistributedSampler, ShortLastBatchIsPaddedToEqualShards) {
  data::BatchSamplerOptions options;
  options.batch_size = 4;
  options.shuffle = false;
  dist::DistributedBatchSampler sampler(11, options, 1, 2);  // global batches of 8: 8 + 3
  auto all = sampler.all_batches(0);
  ASSERT_EQ(all[0].size(), 2u);
  EXPECT_EQ(all[0][1], (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(all[1][1], (std::vector<int64_t>{10, 8}));  // padded with the batch's first example
  EXPECT_EQ(sampler.batches(0), all[1]);
  std::set<int64_t> seen;
  for (const auto& rank : all)
    for (const auto& batch : rank) seen.insert(batch.begin(), batch.end());
  EXPECT_EQ(seen.size(), 11u);  // every example
  EXPECT_THROW(dist::DistributedBatchSampler(11, options, 2, 2), ValueError);
}

TEST(DistributedSampler, EvaluationShardsAreContiguousAndCovering) {
  for (int w : {1, 2, 3, 7}) {
    int64_t next = 0;
    for (int r = 0; r < w; ++r) {
      auto [begin, end] = dist::evaluation_shard(10, r, w);
      EXPECT_EQ(begin, next);
      EXPECT_LE(end - begin, 10 / w + 1);
      next = end;
    }
    EXPECT_EQ(next, 10);
  }
}

// --- DataParallel ---

TEST(DataParallel, BroadcastsRankZeroWeightsAtStart) {
  auto& g = world();
  manual_seed(100 + static_cast<uint64_t>(g->rank()));  // a different init on every rank
  auto model = make_mlp(3, 5, 2);
  dist::DataParallel dp(*model, g);
  for (const auto& [name, p] : model->named_parameters()) {
    Tensor mine = p.detach().clone();
    Tensor rank0 = p.detach().clone();
    g->broadcast(rank0, 0);
    EXPECT_EQ(max_abs_diff(mine, rank0), 0.0) << name;
  }
}

TEST(DataParallel, GradientIsTheFullBatchGradientWithSeveralBuckets) {
  auto& g = world();
  const int w = g->world_size(), r = g->rank();
  manual_seed(3);
  auto model = make_mlp(2, 16, 3);
  manual_seed(3);
  auto reference = make_mlp(2, 16, 3);
  dist::DataParallelOptions options;
  options.bucket_bytes = 100;  // a few parameters per bucket: several all-reduces in flight
  dist::DataParallel dp(*model, g, options);
  EXPECT_GE(dp.num_buckets(), 3);
  int64_t in_buckets = 0;
  for (int64_t n : dp.bucket_sizes()) in_buckets += n;
  EXPECT_EQ(in_buckets, 4);

  auto [set, unused] = blobs(8 * w, 3, 5);
  const int64_t b = 8;
  Tensor x = set.collate([&] {
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < b; ++i) idx.push_back(r * b + i);
    return idx;
  }()).at("features");
  Tensor y = set.collate([&] {
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < b; ++i) idx.push_back(r * b + i);
    return idx;
  }()).at("labels");
  cross_entropy(model->forward(x), y).backward();
  dp.finish();
  // Every bucket got all its gradients during backward, so every all-reduce started there.
  EXPECT_EQ(dp.buckets_started_in_backward(), dp.num_buckets());

  std::vector<int64_t> all(static_cast<size_t>(b * w));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  auto full_batch = set.collate(all);
  cross_entropy(reference->forward(full_batch.at("features")), full_batch.at("labels")).backward();
  auto mine = model->named_parameters();
  auto ref = reference->named_parameters();
  for (size_t i = 0; i < mine.size(); ++i) {
    ASSERT_TRUE(mine[i].second.grad().defined()) << mine[i].first;
    EXPECT_LT(max_abs_diff(mine[i].second.grad(), ref[i].second.grad()), 1e-6) << mine[i].first;
  }
}

TEST(DataParallel, TwoRanksWithBatchBEqualOneProcessWithBatchTwoB) {
  // K optimizer steps of Adam: the ranks' shards of batch B against one process's 2B (W*B).
  auto& g = world();
  const int w = g->world_size(), r = g->rank();
  const int64_t b = 6, steps = 8;
  auto [set, unused] = blobs(b * w * steps, 3, 9);
  manual_seed(21);
  auto model = make_mlp(2, 24, 3);
  manual_seed(21);
  auto reference = make_mlp(2, 24, 3);
  optim::AdamOptions adam;
  adam.lr = 1e-2;
  optim::Adam opt(model->parameters(), adam);
  optim::Adam ref_opt(reference->parameters(), adam);
  dist::DataParallelOptions options;
  options.bucket_bytes = 256;
  dist::DataParallel dp(*model, g, options);
  for (int64_t k = 0; k < steps; ++k) {
    std::vector<int64_t> global, shard;
    for (int64_t i = 0; i < b * w; ++i) global.push_back(k * b * w + i);
    shard.assign(global.begin() + r * b, global.begin() + (r + 1) * b);
    auto batch = set.collate(shard);
    cross_entropy(model->forward(batch.at("features")), batch.at("labels")).backward();
    dp.finish();
    opt.step();
    opt.zero_grad();
    auto ref_batch = set.collate(global);
    cross_entropy(reference->forward(ref_batch.at("features")), ref_batch.at("labels")).backward();
    ref_opt.step();
    ref_opt.zero_grad();
  }
  EXPECT_LT(max_param_diff(*model, *reference), 2e-5);
  EXPECT_GT(max_abs_diff(model->parameters()[0], reference->parameters()[0]), -1.0);
}

TEST(DataParallel, TiedWeightGetsAllItsGradientParts) {
  // The inner weight's gradient arrives in two parts; with one parameter per bucket its bucket
  // starts after the first part, so the second is reduced late, in finish().
  auto& g = world();
  const int w = g->world_size(), r = g->rank();
  manual_seed(5);
  Tied model;
  manual_seed(5);
  Tied reference;
  dist::DataParallelOptions options;
  options.bucket_bytes = 1;
  dist::DataParallel dp(model, g, options);
  EXPECT_EQ(dp.num_buckets(), 4);
  Tensor x_all = randn({4 * w, 4}, DType::f32, nullptr);
  g->broadcast(x_all, 0);
  Tensor y_all = from_vector<int64_t>(std::vector<int64_t>(static_cast<size_t>(4 * w), 1));
  cross_entropy(model.forward(x_all.narrow(0, 4 * r, 4)), y_all.narrow(0, 4 * r, 4)).backward();
  dp.finish();
  cross_entropy(reference.forward(x_all), y_all).backward();
  auto mine = model.named_parameters();
  auto ref = reference.named_parameters();
  for (size_t i = 0; i < mine.size(); ++i) {
    EXPECT_LT(max_abs_diff(mine[i].second.grad(), ref[i].second.grad()), 1e-6) << mine[i].first;
  }
}

TEST(DataParallel, UnusedParametersCountAsZeroAndUnusedEverywhereKeepNoGradient) {
  auto& g = world();
  const int w = g->world_size(), r = g->rank();
  manual_seed(8);
  TwoHeads model;
  dist::DataParallel dp(model, g);
  Tensor x = full({2, 2}, 1.0);
  // Only rank 0 uses the second head: its gradient is rank 0's divided by the world size.
  model.forward_with(x, r == 0).sum().backward();
  dp.finish();
  ASSERT_TRUE(model.second->parameters()[1].grad().defined());
  // d/d bias of sum(second(x)) over 2 rows and 3 outputs: 2 per element, on rank 0 only.
  for (double v : model.second->parameters()[1].grad().to(DType::f64).to_vector<double>()) EXPECT_DOUBLE_EQ(v, 2.0 / w);
  for (double v : model.first->parameters()[1].grad().to(DType::f64).to_vector<double>()) EXPECT_DOUBLE_EQ(v, 2.0);
  for (auto& p : model.parameters()) p.set_grad(Tensor());
  // No rank uses it: no gradient, as in one process (the optimizer then leaves it alone).
  model.forward_with(x, false).sum().backward();
  dp.finish();
  EXPECT_FALSE(model.second->parameters()[0].grad().defined());
  EXPECT_FALSE(model.second->parameters()[1].grad().defined());
  EXPECT_TRUE(model.first->parameters()[0].grad().defined());
}

TEST(DataParallel, NoSyncAccumulatesLocallyThenReducesTheSum) {
  auto& g = world();
  const int w = g->world_size(), r = g->rank();
  manual_seed(8);
  TwoHeads model;
  dist::DataParallel dp(model, g);
  Tensor x = full({1, 2}, 1.0);
  {
    dist::NoSync no_sync(dp);
    (model.forward_with(x, true).sum() * static_cast<double>(r + 1)).backward();
    dp.finish();  // a no-op without sync
    for (double v : model.first->parameters()[1].grad().to_vector<float>()) EXPECT_EQ(v, r + 1.0);
  }
  model.forward_with(x, true).sum().backward();
  dp.finish();
  // Each rank's sum is (r + 1) + 1; the average over ranks is (W + 1) / 2 + 1.
  for (double v : model.first->parameters()[1].grad().to_vector<float>()) EXPECT_DOUBLE_EQ(v, (w + 1) / 2.0 + 1.0);
}

// --- Trainer ---

namespace {

struct TrainerRun {
  std::shared_ptr<nn::Sequential> model;
  TrainResult result;
  Metrics eval;
};

TrainerRun run_trainer(const data::Dataset& train_set, const data::Dataset& val_set, TrainerOptions options,
                       std::optional<std::filesystem::path> resume = std::nullopt) {
  manual_seed(31);
  TrainerRun run;
  run.model = make_mlp(2, 16, 3);
  optim::AdamWOptions adamw;
  adamw.lr = 2e-2;
  optim::AdamW optimizer(run.model->parameters(), adamw);
  options.progress = false;
  Trainer trainer(*run.model, optimizer, nullptr, classify(*run.model), options);
  run.result = trainer.fit(train_set, &val_set, resume);
  run.eval = trainer.evaluate(val_set);
  return run;
}

}  // namespace

TEST(DistributedTrainer, SameStepsAndMetricsAsOneProcessWithTheGlobalBatch) {
  auto& g = world();
  const int w = g->world_size();
  auto [train_set, val_set] = blobs(96, 37, 2);  // 37: the evaluation shards differ in size
  TrainerOptions options;
  options.epochs = 2;
  options.batch_size = 8;             // per rank
  options.accumulation_steps = 2;     // micro-batches before the last do not reduce
  options.max_grad_norm = 1.0;
  options.eval_every_steps = 3;
  options.metric_for_best = "accuracy";
  options.bucket_bytes = 128;
  TrainerOptions distributed = options;
  distributed.process_group = g;
  TrainerOptions single = options;
  single.batch_size = 8 * w;
  TrainerRun a = run_trainer(train_set, val_set, distributed);
  TrainerRun b = run_trainer(train_set, val_set, single);
  EXPECT_EQ(a.result.state.global_step, b.result.state.global_step);
  ASSERT_EQ(a.result.step_losses.size(), b.result.step_losses.size());
  for (size_t i = 0; i < a.result.step_losses.size(); ++i) EXPECT_NEAR(a.result.step_losses[i], b.result.step_losses[i], 1e-5);
  EXPECT_LT(max_param_diff(*a.model, *b.model), 5e-5);
  ASSERT_EQ(a.result.evaluations.size(), b.result.evaluations.size());
  for (size_t i = 0; i < a.result.evaluations.size(); ++i) {
    for (const auto& [name, value] : b.result.evaluations[i].second) {
      EXPECT_NEAR(a.result.evaluations[i].second.at(name), value, 1e-5) << name;
    }
  }
  EXPECT_EQ(a.result.state.best_step, b.result.state.best_step);
  EXPECT_NEAR(a.eval.at("loss"), b.eval.at("loss"), 1e-5);
  EXPECT_EQ(a.eval.at("accuracy"), b.eval.at("accuracy"));
  // Every rank has the same metrics.
  std::vector<double> mine{a.eval.at("loss"), a.eval.at("accuracy")};
  for (const auto& other : g->all_gather(mine)) EXPECT_EQ(other, mine);
}

TEST(DistributedTrainer, OnlyRankZeroWritesAndResumeNeedsTheSameWorldSize) {
  auto& g = world();
  auto [train_set, val_set] = blobs(48, 12, 4);
  const std::filesystem::path dir = shared_temp_dir("writes");
  TrainerOptions options;
  options.epochs = 2;
  options.batch_size = 4;
  options.save_every_steps = 2;
  options.early_stopping.restore_best = false;  // the resumed run's best predates it
  options.output_dir = dir;
  options.process_group = g;
  TrainerRun full = run_trainer(train_set, val_set, options);
  g->barrier();
  EXPECT_TRUE(std::filesystem::exists(dir / "log.jsonl"));
  EXPECT_TRUE(std::filesystem::exists(dir / "checkpoints" / "checkpoints.json"));
  // Resume from the earliest checkpoint kept, on the same world: the same final weights.
  std::filesystem::path first;
  int64_t first_step = -1;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "checkpoints")) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("checkpoint-", 0) != 0 || entry.path().extension() != ".safetensors") continue;
    const int64_t step = std::stoll(name.substr(11));
    if (first_step < 0 || step < first_step) {
      first_step = step;
      first = entry.path();
    }
  }
  ASSERT_FALSE(first.empty());
  ASSERT_LT(first_step, full.result.state.global_step);
  g->barrier();
  TrainerOptions resumed_options = options;
  resumed_options.output_dir = shared_temp_dir("resumed");
  // The checkpoint lives in the first run's directory; copy it on rank 0 only.
  std::filesystem::path copy = resumed_options.output_dir.parent_path() / (resumed_options.output_dir.filename().string() + "-from.safetensors");
  if (g->rank() == 0) {
    std::filesystem::copy_file(first, copy, std::filesystem::copy_options::overwrite_existing);
  }
  g->barrier();
  TrainerRun resumed = run_trainer(train_set, val_set, resumed_options, copy);
  EXPECT_LT(max_param_diff(*full.model, *resumed.model), 1e-6);
  // One process cannot resume a distributed run's checkpoint (the shards would differ).
  TrainerOptions single;
  single.epochs = 2;
  single.batch_size = 4;
  EXPECT_THROW(run_trainer(train_set, val_set, single, copy), ValueError);
  g->barrier();
  if (g->rank() == 0) {
    std::filesystem::remove_all(dir);
    std::filesystem::remove_all(resumed_options.output_dir);
    std::filesystem::remove(copy);
  }
}

TEST(DistributedTrainer, AnExistingRunDirectoryIsAnErrorOnEveryRank) {
  auto& g = world();
  auto [train_set, val_set] = blobs(24, 6, 4);
  const std::filesystem::path dir = shared_temp_dir("existing");
  TrainerOptions options;
  options.batch_size = 4;
  options.output_dir = dir;
  options.process_group = g;
  run_trainer(train_set, val_set, options);
  g->barrier();
  EXPECT_THROW(run_trainer(train_set, val_set, options), ValueError);  // rank 0's error, everywhere
  g->barrier();
  if (g->rank() == 0) std::filesystem::remove_all(dir);
}

TEST(DistributedTrainer, EvaluationGathersRegressionAndSkipsIgnoredLabels) {
  auto& g = world();
  manual_seed(12);
  auto model = make_mlp(2, 8, 3);
  optim::SGD optimizer(model->parameters(), {.lr = 0.1});
  // Classification with some labels ignored (-100): every rank's metrics equal one process's.
  auto [set, unused] = blobs(23, 3, 6);
  std::vector<int64_t> labels = set.collate([] {
    std::vector<int64_t> all(23);
    for (int64_t i = 0; i < 23; ++i) all[static_cast<size_t>(i)] = i;
    return all;
  }()).at("labels").to_vector<int64_t>();
  for (size_t i = 0; i < labels.size(); i += 4) labels[i] = -100;
  data::TensorDataset masked({{"features", set.collate([] {
                                 std::vector<int64_t> all(23);
                                 for (int64_t i = 0; i < 23; ++i) all[static_cast<size_t>(i)] = i;
                                 return all;
                               }()).at("features")},
                              {"labels", from_vector<int64_t>(labels)}});
  auto forward = [&](const data::Batch& batch, bool) {
    Tensor logits = model->forward(batch.at("features"));
    return StepOutput{cross_entropy(logits, batch.at("labels")), logits};
  };
  TrainerOptions options;
  options.batch_size = 4;
  options.progress = false;
  Trainer single(*model, optimizer, nullptr, forward, options);
  options.process_group = g;
  Trainer distributed(*model, optimizer, nullptr, forward, options);
  const Metrics a = distributed.evaluate(masked), b = single.evaluate(masked);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, value] : b) EXPECT_NEAR(a.at(name), value, 1e-6) << name;

  // Regression: predictions [N, 1] against targets [N].
  Tensor x = randn({17, 2});
  g->broadcast(x, 0);
  Tensor y = randn({17});
  g->broadcast(y, 0);
  data::TensorDataset points({{"features", x}, {"labels", y}});
  auto head = std::make_shared<nn::Linear>(2, 1);
  for (auto& p : head->parameters()) {
    Tensor t = p.detach();
    g->broadcast(t, 0);
  }
  optim::SGD head_optimizer(head->parameters(), {.lr = 0.1});
  auto regress = [&](const data::Batch& batch, bool) {
    Tensor out = head->forward(batch.at("features"));
    return StepOutput{mse_loss(out.squeeze(1), batch.at("labels")), out};
  };
  TrainerOptions reg;
  reg.batch_size = 5;
  reg.progress = false;
  reg.task = MetricAccumulator::Task::regression;
  Trainer reg_single(*head, head_optimizer, nullptr, regress, reg);
  reg.process_group = g;
  Trainer reg_distributed(*head, head_optimizer, nullptr, regress, reg);
  const Metrics c = reg_distributed.evaluate(points), d = reg_single.evaluate(points);
  ASSERT_EQ(c.size(), d.size());
  for (const auto& [name, value] : d) EXPECT_NEAR(c.at(name), value, 1e-6) << name;
}

TEST(DistributedTrainer, ANonFiniteLossOnOneRankSkipsTheStepOnEveryRank) {
  // The last rank's loss is NaN at its third step. That rank skips its backward; its buckets go out
  // from finish() with what it has, so no rank waits on it, and the shared non-finite flag makes
  // every rank skip the step. The weights stay the same everywhere.
  auto& g = world();
  auto [train_set, val_set] = blobs(64, 16, 5);
  manual_seed(31);
  auto model = make_mlp(2, 16, 3);
  optim::AdamW optimizer(model->parameters(), optim::AdamWOptions{});
  TrainerOptions options;
  options.epochs = 1;
  options.batch_size = 4;
  options.progress = false;
  options.process_group = g;
  int calls = 0;
  const ForwardFn forward = [&](const data::Batch& batch, bool training) {
    StepOutput out = classify(*model)(batch, training);
    if (training && ++calls == 3 && g->rank() == g->world_size() - 1) out.loss = out.loss * NAN;
    return out;
  };
  Trainer trainer(*model, optimizer, nullptr, forward, options);
  const TrainResult result = trainer.fit(train_set, &val_set);
  EXPECT_EQ(result.state.skipped_steps, 1);
  std::vector<double> weights = model->parameters()[0].to(DType::f64).reshape({-1}).to_vector<double>();
  for (const auto& other : g->all_gather(weights)) EXPECT_EQ(other, weights);
}
