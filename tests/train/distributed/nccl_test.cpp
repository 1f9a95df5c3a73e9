// NCCL for CUDA tensors, under `mpirun -np N` with one GPU per rank (the distributed suite's
// binary; CTest runs N = 2 and N = 1): the collectives of CUDA tensors against the expected sums,
// and DataParallel on CUDA against one process with the global batch. Every test skips, on every
// rank alike, when the build has no NCCL or a machine has fewer GPUs than ranks. Only the public
// API is used, so the file compiles in builds without CUDA or NCCL.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "nn/linear.h"
#include "train/distributed/data_parallel.h"
#include "train/distributed/process_group.h"
#include "train/optim/adam.h"
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

// Why these tests cannot run here ("" when they can), the same on every rank: a rank that skipped
// while the others ran a collective would hang them. Decided once, by a collective.
const std::string& nccl_skip_reason() {
  static const std::string reason = [] {
    auto& g = world();
    if (!dist::ProcessGroup::nccl_available()) {
      return std::string("this build has no NCCL (it needs GRAFT_CUDA and GRAFT_MPI on and NCCL found at configure time)");
    }
    const int gpus = cuda_device_count();
    std::vector<double> short_of{gpus < g->local_size() ? 1.0 : 0.0};
    g->all_reduce(short_of);
    if (short_of[0] > 0) {
      return "fewer GPUs than ranks on some machine (here " + std::to_string(gpus) + " GPUs for " +
             std::to_string(g->local_size()) + " ranks): NCCL needs one GPU per process";
    }
    return std::string();
  }();
  return reason;
}

#define GRAFT_REQUIRE_NCCL()                                             \
  do {                                                                   \
    if (!nccl_skip_reason().empty()) GTEST_SKIP() << nccl_skip_reason(); \
  } while (0)

std::vector<double> values(const Tensor& t) {
  return t.to(Device::cpu()).to(DType::f64).reshape({-1}).to_vector<double>();
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  auto x = values(a);
  auto y = values(b);
  EXPECT_EQ(x.size(), y.size());
  double worst = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  return worst;
}

double tolerance(DType dtype) {
  switch (dtype) {
    case DType::f64: return 1e-12;
    case DType::f32: return 1e-6;
    case DType::bf16: return 1e-2;
    default: return 1e-3;  // f16
  }
}


}  // namespace

TEST(ProcessGroupNccl, DeviceIsTheLocalRanksGpu) {
  GRAFT_REQUIRE_NCCL();
  auto& g = world();
  EXPECT_EQ(g->device(), Device::cuda(g->local_rank() % cuda_device_count()));
  g->init_nccl();  // eager creation; the later collectives reuse it
  g->init_nccl();
}

TEST(ProcessGroupNccl, AllReduceSumAndAverageOfCudaTensors) {
  GRAFT_REQUIRE_NCCL();
  auto& g = world();
  const int w = g->world_size(), r = g->rank();
  const Device dev = g->device();
  for (DType dtype : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    Tensor t = full({3, 5}, static_cast<double>(r + 1), TensorOptions(dtype).with_device(dev));
    g->all_reduce(t, dist::ReduceOp::sum);
    EXPECT_EQ(t.device(), dev);
    for (double v : values(t)) EXPECT_EQ(v, w * (w + 1) / 2.0) << dtype_name(dtype);
    Tensor a = full({7}, static_cast<double>(r + 1), TensorOptions(dtype).with_device(dev));
    g->all_reduce(a, dist::ReduceOp::avg);
    const double want = (w + 1) / 2.0;
    for (double v : values(a)) EXPECT_NEAR(v, want, tolerance(dtype) * want) << dtype_name(dtype);
  }
  // A CPU all-reduce between CUDA ones: MPI and NCCL side by side.
  std::vector<double> ranks{static_cast<double>(r)};
  g->all_reduce(ranks);
  EXPECT_EQ(ranks[0], w * (w - 1) / 2.0);
}

TEST(ProcessGroupNccl, AsyncAllReduceIsOrderedWithTheKernelsAroundIt) {
  GRAFT_REQUIRE_NCCL();
  auto& g = world();
  const int w = g->world_size(), r = g->rank();
  const Device dev = g->device();
  // Produced by a kernel just before (no host wait), doubled by a kernel just after.
  Tensor a = full({100000}, 1.0, TensorOptions(DType::f32).with_device(dev)) * static_cast<double>(r + 1);
  Tensor b = full({10}, 2.0, TensorOptions(DType::f64).with_device(dev));
  auto wa = g->all_reduce_async(a);
  auto wb = g->all_reduce_async(b);
  Tensor doubled = a * 2.0;
  wb->wait();
  wa->wait();
  EXPECT_TRUE(wa->test());
  EXPECT_TRUE(wb->test());
  const double sum = w * (w + 1) / 2.0;
  auto av = values(a);
  EXPECT_EQ(av.front(), sum);
  EXPECT_EQ(av.back(), sum);
  EXPECT_EQ(values(doubled).back(), 2 * sum);
  EXPECT_EQ(values(b)[0], 2.0 * w);
}

TEST(ProcessGroupNccl, BroadcastOfCudaTensorsOfAnyDtype) {
  GRAFT_REQUIRE_NCCL();
  auto& g = world();
  const int w = g->world_size(), r = g->rank();
  const Device dev = g->device();
  const int root = w - 1;
  Tensor t = full({2, 3}, 10.0 + r, TensorOptions(DType::f32).with_device(dev));
  g->broadcast(t, root);
  for (double v : values(t)) EXPECT_EQ(v, 10.0 + root);
  Tensor ids = r == root ? from_vector<int64_t>({7, 8, 9}).to(dev) : zeros({3}, TensorOptions(DType::i64).with_device(dev));
  g->broadcast(ids, root);
  EXPECT_EQ(ids.to(Device::cpu()).to_vector<int64_t>(), (std::vector<int64_t>{7, 8, 9}));
}

TEST(ProcessGroupNccl, RejectsWhatNcclCannotReduce) {
  GRAFT_REQUIRE_NCCL();
  auto& g = world();
  const Device dev = g->device();
  // Local checks before any collective: every rank throws alike.
  Tensor ints = zeros({4}, TensorOptions(DType::i32).with_device(dev));
  EXPECT_THROW(g->all_reduce(ints), DTypeError);
  Tensor strided = zeros({4, 4}, TensorOptions(DType::f32).with_device(dev)).t();
  EXPECT_THROW(g->all_reduce(strided), ValueError);
  if (cuda_device_count() > 1) {
    Tensor elsewhere = zeros({4}, TensorOptions(DType::f32).with_device(Device::cuda((dev.index + 1) % cuda_device_count())));
    EXPECT_THROW(g->all_reduce(elsewhere), DeviceError);
  }
}

TEST(DataParallelNccl, SameParametersAsOneProcessWithTheGlobalBatch) {
  // K Adam steps on CUDA: the ranks' shards of batch B against one process's W*B on the same GPU.
  GRAFT_REQUIRE_NCCL();
  auto& g = world();
  const int w = g->world_size(), r = g->rank();
  const Device dev = g->device();
  const int64_t b = 6, steps = 8;
  auto [set, unused] = blobs(b * w * steps, 3, 9);
  manual_seed(21);
  auto model = make_mlp(2, 24, 3);
  manual_seed(21);
  auto reference = make_mlp(2, 24, 3);
  model->to(dev);
  reference->to(dev);
  optim::AdamOptions adam;
  adam.lr = 1e-2;
  optim::Adam opt(model->parameters(), adam);
  optim::Adam ref_opt(reference->parameters(), adam);
  dist::DataParallelOptions options;
  options.bucket_bytes = 256;  // several buckets in flight
  dist::DataParallel dp(*model, g, options);
  EXPECT_GE(dp.num_buckets(), 2);
  for (int64_t k = 0; k < steps; ++k) {
    std::vector<int64_t> global, shard;
    for (int64_t i = 0; i < b * w; ++i) global.push_back(k * b * w + i);
    shard.assign(global.begin() + r * b, global.begin() + (r + 1) * b);
    auto batch = set.collate(shard);
    cross_entropy(model->forward(batch.at("features").to(dev)), batch.at("labels").to(dev)).backward();
    dp.finish();
    EXPECT_EQ(dp.buckets_started_in_backward(), dp.num_buckets());
    for (const auto& p : model->parameters()) {
      ASSERT_TRUE(p.grad().defined());
      EXPECT_EQ(p.grad().device(), dev);
    }
    opt.step();
    opt.zero_grad();
    auto ref_batch = set.collate(global);
    cross_entropy(reference->forward(ref_batch.at("features").to(dev)), ref_batch.at("labels").to(dev)).backward();
    ref_opt.step();
    ref_opt.zero_grad();
  }
  auto mine = model->named_parameters();
  auto ref = reference->named_parameters();
  ASSERT_EQ(mine.size(), ref.size());
  for (size_t i = 0; i < mine.size(); ++i) {
    EXPECT_EQ(mine[i].second.device(), dev);
    EXPECT_LT(max_abs_diff(mine[i].second, ref[i].second), 2e-5) << mine[i].first;
  }
}

TEST(DataParallelNccl, TiedWeightGetsAllItsGradientPartsOnCuda) {
  // One parameter per bucket: the inner weight's second part arrives after its bucket started and
  // is reduced late, in finish().
  GRAFT_REQUIRE_NCCL();
  auto& g = world();
  const int w = g->world_size(), r = g->rank();
  const Device dev = g->device();
  manual_seed(5);
  Tied model;
  manual_seed(5);
  Tied reference;
  model.to(dev);
  reference.to(dev);
  dist::DataParallelOptions options;
  options.bucket_bytes = 1;
  dist::DataParallel dp(model, g, options);
  EXPECT_EQ(dp.num_buckets(), 4);
  Tensor x_all = randn({4 * w, 4}, DType::f32, nullptr).to(dev);
  g->broadcast(x_all, 0);
  Tensor y_all = from_vector<int64_t>(std::vector<int64_t>(static_cast<size_t>(4 * w), 1)).to(dev);
  cross_entropy(model.forward(x_all.narrow(0, 4 * r, 4)), y_all.narrow(0, 4 * r, 4)).backward();
  dp.finish();
  cross_entropy(reference.forward(x_all), y_all).backward();
  auto mine = model.named_parameters();
  auto ref = reference.named_parameters();
  for (size_t i = 0; i < mine.size(); ++i) {
    ASSERT_TRUE(mine[i].second.grad().defined()) << mine[i].first;
    EXPECT_LT(max_abs_diff(mine[i].second.grad(), ref[i].second.grad()), 1e-6) << mine[i].first;
  }
}

TEST(DataParallelNccl, UnusedParametersOnCuda) {
  GRAFT_REQUIRE_NCCL();
  auto& g = world();
  const int w = g->world_size(), r = g->rank();
  const Device dev = g->device();
  manual_seed(8);
  TwoHeads model;
  model.to(dev);
  dist::DataParallel dp(model, g);
  Tensor x = full({2, 2}, 1.0, TensorOptions(DType::f32).with_device(dev));
  // Only rank 0 uses the second head: its gradient is rank 0's divided by the world size.
  model.forward_with(x, r == 0).sum().backward();
  dp.finish();
  ASSERT_TRUE(model.second->parameters()[1].grad().defined());
  for (double v : values(model.second->parameters()[1].grad())) EXPECT_NEAR(v, 2.0 / w, 1e-6);
  for (double v : values(model.first->parameters()[1].grad())) EXPECT_NEAR(v, 2.0, 1e-6);
  for (auto& p : model.parameters()) p.set_grad(Tensor());
  // No rank uses it: no gradient.
  model.forward_with(x, false).sum().backward();
  dp.finish();
  EXPECT_FALSE(model.second->parameters()[0].grad().defined());
  EXPECT_TRUE(model.first->parameters()[0].grad().defined());
}

TEST(DataParallelNccl, CpuAndCudaParametersInOneDataParallel) {
  // A CUDA module and an extra CPU parameter: CUDA buckets over NCCL, the CPU one over MPI.
  GRAFT_REQUIRE_NCCL();
  auto& g = world();
  const int w = g->world_size(), r = g->rank();
  const Device dev = g->device();
  manual_seed(9);
  nn::Linear model(2, 3);
  model.to(dev);
  Tensor extra = full({3}, 1.0, TensorOptions(DType::f32).with_requires_grad());
  dist::DataParallel dp(model, {extra}, g);
  EXPECT_GE(dp.num_buckets(), 2);
  model.forward(full({2, 2}, 1.0, TensorOptions(DType::f32).with_device(dev))).sum().backward();
  (extra * static_cast<double>(r + 1)).sum().backward();
  dp.finish();
  for (double v : values(model.parameters()[1].grad())) EXPECT_NEAR(v, 2.0, 1e-6);  // bias: 2 rows
  ASSERT_TRUE(extra.grad().defined());
  EXPECT_TRUE(extra.grad().device().is_cpu());
  for (double v : values(extra.grad())) EXPECT_NEAR(v, (w + 1) / 2.0, 1e-6);
}
