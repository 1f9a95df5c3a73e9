// The optimizers and gradient clipping on CUDA parameters against the same on the CPU: twin
// parameters start from the same values and get the same gradients every step (random, made on the
// CPU and copied), so the GPU's multi-tensor kernels must reproduce the CPU's updates, state
// buffers and norms.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "graft.h"
#include "train/optim/adam.h"
#include "train/optim/clip.h"
#include "train/optim/sgd.h"

using namespace graft;
using namespace graft::optim;
using graft::testing::all_close;
using graft::testing::random_cpu;

namespace {

// The kernels round every operation as the CPU loops do, so f32 should agree to the last bit; the
// tolerance leaves room for one rounding of difference (about 1e-7 absolute near 1).
double rtol_for(DType dtype) { return dtype == DType::f64 ? 1e-12 : 1e-6; }
double atol_for(DType dtype) { return dtype == DType::f64 ? 1e-15 : 1e-7; }

struct ParamSpec {
  Shape shape;
  DType dtype;
  int group;  // 0 or 1
};

// Odd sizes (1, 7, 165, 847, 1031 elements, none a multiple of the block size), both dtypes, two groups.
const std::vector<ParamSpec> kSpecs = {
    {{7}, DType::f32, 0}, {{33, 5}, DType::f32, 0}, {{1}, DType::f32, 1}, {{1031}, DType::f32, 1}, {{7, 11, 11}, DType::f64, 1}};

// The same parameters twice: on the CPU and on the GPU.
struct Twins {
  std::vector<Tensor> cpu, gpu;
};

Twins make_twins(const std::vector<ParamSpec>& specs) {
  Twins t;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    Tensor p = random_cpu(specs[i].shape, specs[i].dtype, /*salt=*/i);
    t.cpu.push_back(p.requires_grad_());
    t.gpu.push_back(p.detach().to(Device::cuda()).requires_grad_());
  }
  return t;
}

// Two groups with different learning rates; `base` carries the other hyper-parameters.
std::vector<ParamGroup> two_groups(const std::vector<Tensor>& params, const std::vector<ParamSpec>& specs,
                                   const ParamGroup& base) {
  std::vector<ParamGroup> groups(2, base);
  groups[0].name = "fast";
  groups[0].lr = base.lr;
  groups[1].name = "slow";
  groups[1].lr = base.lr * 0.3;
  for (std::size_t i = 0; i < params.size(); ++i) groups[specs[i].group].params.push_back(params[i]);
  return groups;
}

// The gradient of parameter i at step `step` (on the CPU); parameter 1 gets none at step 2, so its
// own update count (and bias corrections) fall behind the others'.
Tensor grad_for(const std::vector<ParamSpec>& specs, std::size_t i, int step) {
  if (step == 2 && i == 1) return Tensor();
  return random_cpu(specs[i].shape, specs[i].dtype, /*salt=*/1000 * (step + 1) + i);
}

void set_gpu_grads(const std::vector<Tensor>& params, const std::vector<ParamSpec>& specs, int step) {
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const Tensor g = grad_for(specs, i, step);
    params[i].set_grad(g.defined() ? g.to(Device::cuda()) : Tensor());
  }
}

void set_grads(const Twins& t, const std::vector<ParamSpec>& specs, int step) {
  for (std::size_t i = 0; i < specs.size(); ++i) t.cpu[i].set_grad(grad_for(specs, i, step));
  set_gpu_grads(t.gpu, specs, step);
}

// Parameters, step counts, hyper-parameters and every state buffer agree; the GPU's checkpoint
// form holds CPU tensors.
void expect_same(const Optimizer& gpu, const Optimizer& cpu, const Twins& t) {
  for (std::size_t i = 0; i < t.cpu.size(); ++i) {
    EXPECT_TRUE(t.gpu[i].device().is_cuda());
    const DType dtype = t.cpu[i].dtype();
    EXPECT_TRUE(all_close(t.gpu[i], t.cpu[i], rtol_for(dtype), atol_for(dtype))) << "param " << i;
  }
  const Optimizer::State gs = gpu.state_dict(), cs = cpu.state_dict();
  EXPECT_EQ(gs.meta.dump(), cs.meta.dump());
  ASSERT_EQ(gs.tensors.size(), cs.tensors.size());
  for (const auto& [key, want] : cs.tensors) {
    ASSERT_TRUE(gs.tensors.count(key)) << key;
    const Tensor& got = gs.tensors.at(key);
    EXPECT_TRUE(got.device().is_cpu()) << key;
    EXPECT_TRUE(all_close(got, want, rtol_for(want.dtype()), atol_for(want.dtype()))) << key;
  }
}

using Factory = std::function<std::unique_ptr<Optimizer>(std::vector<ParamGroup>)>;

void run_against_cpu(const Factory& make, const ParamGroup& base, int steps) {
  Twins t = make_twins(kSpecs);
  auto gpu = make(two_groups(t.gpu, kSpecs, base));
  auto cpu = make(two_groups(t.cpu, kSpecs, base));
  for (int step = 0; step < steps; ++step) {
    set_grads(t, kSpecs, step);
    gpu->step();
    cpu->step();
  }
  expect_same(*gpu, *cpu, t);
}

ParamGroup adam_base(bool amsgrad) {
  ParamGroup g;
  g.lr = 1e-2;
  g.weight_decay = 0.05;
  g.l1 = 1e-3;
  g.amsgrad = amsgrad;
  return g;
}

// Grads on the GPU and their CPU twins, for the clipping tests; grad 2 is a transposed
// (non-contiguous) view on both sides.
struct GradTwins {
  std::vector<Tensor> cpu, gpu;
};

GradTwins make_grad_twins(double scale = 1.0) {
  GradTwins t;
  const std::vector<Shape> shapes = {{7}, {1}, {33, 9}, {1031}};
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    Tensor g = random_cpu(shapes[i], DType::f32, 50 + i) * scale;
    Tensor gpu_g = g.to(Device::cuda());
    if (i == 2) {
      g = g.t();
      gpu_g = gpu_g.t();
    }
    Tensor p_cpu = zeros(g.shape()), p_gpu = zeros(g.shape(), Device::cuda());
    p_cpu.set_grad(g);
    p_gpu.set_grad(gpu_g);
    t.cpu.push_back(p_cpu);
    t.gpu.push_back(p_gpu);
  }
  // A parameter without a grad is ignored.
  t.cpu.push_back(zeros({3}));
  t.gpu.push_back(zeros({3}, Device::cuda()));
  return t;
}

void expect_same_grads(const GradTwins& t, double rtol) {
  for (std::size_t i = 0; i < t.cpu.size(); ++i) {
    ASSERT_EQ(t.gpu[i].grad().defined(), t.cpu[i].grad().defined()) << "param " << i;
    if (!t.cpu[i].grad().defined()) continue;
    EXPECT_TRUE(t.gpu[i].grad().device().is_cuda());
    // contiguous(): an unclipped grad may still be the transposed view, and all_close copies to the CPU.
    EXPECT_TRUE(all_close(t.gpu[i].grad().contiguous(), t.cpu[i].grad(), rtol)) << "grad " << i;
  }
}

}  // namespace

TEST(CudaOptim, AdamWMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  const Factory make = [](std::vector<ParamGroup> g) { return std::make_unique<AdamW>(std::move(g)); };
  for (bool amsgrad : {false, true}) {
    SCOPED_TRACE(amsgrad ? "amsgrad" : "plain");
    run_against_cpu(make, adam_base(amsgrad), 5);
  }
}

TEST(CudaOptim, AdamMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  const Factory make = [](std::vector<ParamGroup> g) { return std::make_unique<Adam>(std::move(g)); };
  for (bool amsgrad : {false, true}) {
    SCOPED_TRACE(amsgrad ? "amsgrad" : "plain");
    run_against_cpu(make, adam_base(amsgrad), 5);
  }
}

TEST(CudaOptim, SgdWithMomentumMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  const Factory make = [](std::vector<ParamGroup> g) { return std::make_unique<SGD>(std::move(g)); };
  ParamGroup nesterov;
  nesterov.lr = 0.05;
  nesterov.momentum = 0.9;
  nesterov.nesterov = true;
  nesterov.weight_decay = 0.01;
  nesterov.l1 = 1e-3;
  ParamGroup damped = nesterov;
  damped.nesterov = false;
  damped.dampening = 0.2;
  ParamGroup plain = nesterov;  // no momentum: no buffer
  plain.nesterov = false;
  plain.momentum = 0.0;
  for (const auto& [name, base] : {std::pair{"nesterov", nesterov}, std::pair{"damped", damped}, std::pair{"plain", plain}}) {
    SCOPED_TRACE(name);
    run_against_cpu(make, base, 5);
  }
}

// More parameters than one launch takes (32): the batches must cover every one.
TEST(CudaOptim, ManyParamsSpanSeveralLaunches) {
  GRAFT_REQUIRE_CUDA();
  std::vector<ParamSpec> specs;
  for (int i = 0; i < 75; ++i) specs.push_back({{1 + 37 * i}, i % 5 == 4 ? DType::f64 : DType::f32, 0});
  Twins t = make_twins(specs);
  AdamW gpu(t.gpu, {});
  AdamW cpu(t.cpu, {});
  for (int step = 0; step < 3; ++step) {
    set_grads(t, specs, step);
    gpu.step();
    cpu.step();
  }
  expect_same(gpu, cpu, t);
}

// Same inputs, same bits: two GPU runs agree exactly.
TEST(CudaOptim, AdamWIsDeterministic) {
  GRAFT_REQUIRE_CUDA();
  Twins a = make_twins(kSpecs), b = make_twins(kSpecs);
  AdamW first(two_groups(a.gpu, kSpecs, adam_base(true)));
  AdamW second(two_groups(b.gpu, kSpecs, adam_base(true)));
  for (int step = 0; step < 3; ++step) {
    set_grads(a, kSpecs, step);
    set_grads(b, kSpecs, step);
    first.step();
    second.step();
  }
  for (std::size_t i = 0; i < kSpecs.size(); ++i)
    EXPECT_TRUE(all_close(a.gpu[i], b.gpu[i], 0.0)) << "param " << i;
}

// A CUDA optimizer's checkpoint (CPU tensors) loads into a fresh one, whose buffers go back to the
// GPU, and both continue bit-identically.
TEST(CudaOptim, StateDictRoundTripContinuesIdentically) {
  GRAFT_REQUIRE_CUDA();
  const std::vector<std::pair<std::string, Factory>> factories = {
      {"adamw", [](std::vector<ParamGroup> g) { return std::make_unique<AdamW>(std::move(g)); }},
      {"sgd", [](std::vector<ParamGroup> g) { return std::make_unique<SGD>(std::move(g)); }},
  };
  ParamGroup base = adam_base(true);
  base.momentum = 0.9;  // used by SGD, ignored by AdamW
  for (const auto& [name, make] : factories) {
    SCOPED_TRACE(name);
    Twins t = make_twins(kSpecs);
    auto straight = make(two_groups(t.gpu, kSpecs, base));
    for (int step = 0; step < 3; ++step) {
      set_grads(t, kSpecs, step);
      straight->step();
    }
    Optimizer::State saved = straight->state_dict();
    saved.meta = nlohmann::json::parse(saved.meta.dump());  // through text, as a checkpoint file is
    ASSERT_FALSE(saved.tensors.empty());
    for (const auto& [key, tensor] : saved.tensors) EXPECT_TRUE(tensor.device().is_cpu()) << key;

    std::vector<Tensor> copy;
    for (const Tensor& p : t.gpu) copy.push_back(p.detach().clone().requires_grad_());
    auto resumed = make(two_groups(copy, kSpecs, base));
    resumed->load_state_dict(saved);
    for (auto& [key, tensor] : saved.tensors) tensor.fill_(123.0);  // the loaded state must be a copy
    for (int step = 3; step < 5; ++step) {
      set_gpu_grads(t.gpu, kSpecs, step);
      set_gpu_grads(copy, kSpecs, step);
      straight->step();
      resumed->step();
    }
    for (std::size_t i = 0; i < kSpecs.size(); ++i) EXPECT_TRUE(all_close(copy[i], t.gpu[i], 0.0)) << "param " << i;
    const Optimizer::State a = straight->state_dict(), b = resumed->state_dict();
    EXPECT_EQ(a.meta.dump(), b.meta.dump());
    for (const auto& [key, tensor] : a.tensors) EXPECT_TRUE(all_close(b.tensors.at(key), tensor, 0.0)) << key;
  }
}

TEST(CudaOptim, ParamAndGradOnDifferentDevicesThrow) {
  GRAFT_REQUIRE_CUDA();
  Tensor p = random_cpu({7}).to(Device::cuda());
  AdamW adam({p}, {});
  p.set_grad(random_cpu({7}));  // on the CPU
  EXPECT_THROW(adam.step(), DeviceError);
  EXPECT_EQ(adam.state_dict().meta["groups"][0]["step"][0], 0);  // nothing advanced
}

TEST(CudaOptim, LoadingBuffersOnAnotherDeviceThrows) {
  GRAFT_REQUIRE_CUDA();
  Tensor p = random_cpu({7});
  SGD sgd({p}, {.lr = 0.1, .momentum = 0.9});
  p.set_grad(random_cpu({7}, DType::f32, 1));
  sgd.step();
  Optimizer::State state = sgd.state_dict();
  for (auto& [key, tensor] : state.tensors) tensor = tensor.to(Device::cuda());  // a CPU param's buffer on the GPU
  SGD fresh({random_cpu({7})}, {.lr = 0.1, .momentum = 0.9});
  EXPECT_THROW(fresh.load_state_dict(state), DeviceError);
}

TEST(CudaClip, GradNormMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  const double inf = std::numeric_limits<double>::infinity();
  for (double norm_type : {2.0, inf, 1.0, 3.0}) {
    for (double max_norm : {0.5, 1e6}) {  // clips, and does not
      SCOPED_TRACE("p = " + std::to_string(norm_type) + ", max_norm = " + std::to_string(max_norm));
      GradTwins t = make_grad_twins();
      const double want = clip_grad_norm(t.cpu, max_norm, norm_type);
      const double got = clip_grad_norm(t.gpu, max_norm, norm_type);
      EXPECT_NEAR(got, want, 1e-10 * want);
      if (std::isinf(norm_type)) {
        EXPECT_EQ(got, want);  // a max is exact
      }
      expect_same_grads(t, 1e-6);
    }
  }
}

TEST(CudaClip, GradNormIsDeterministic) {
  GRAFT_REQUIRE_CUDA();
  GradTwins t = make_grad_twins();
  const double first = clip_grad_norm(t.gpu, 1e9);
  const double second = clip_grad_norm(t.gpu, 1e9);
  EXPECT_EQ(first, second);
}

TEST(CudaClip, NonFiniteNormBehavesAsOnCpu) {
  GRAFT_REQUIRE_CUDA();
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {inf, std::nan("")}) {
    for (double norm_type : {2.0, inf}) {
      SCOPED_TRACE("bad = " + std::to_string(bad) + ", p = " + std::to_string(norm_type));
      GradTwins t = make_grad_twins();
      for (auto* side : {&t.cpu, &t.gpu}) {
        Tensor g = (*side)[3].grad().to(Device::cpu()).contiguous().clone();
        g.data_ptr<float>()[17] = static_cast<float>(bad);
        (*side)[3].set_grad(g.to((*side)[3].device()));
      }
      // error_if_nonfinite: throws and leaves the grads as they are (still equal to the CPU's).
      EXPECT_THROW(clip_grad_norm(t.gpu, 1.0, norm_type, true), NumericError);
      expect_same_grads(t, 0.0);
      // Otherwise: Inf zeroes the grads (coefficient 0), NaN leaves them; the returned norm agrees.
      const double want = clip_grad_norm(t.cpu, 1.0, norm_type);
      const double got = clip_grad_norm(t.gpu, 1.0, norm_type);
      EXPECT_EQ(std::isnan(got), std::isnan(want));
      if (!std::isnan(want)) {
        EXPECT_EQ(got, want);
      }
      expect_same_grads(t, 0.0);
    }
  }
}

TEST(CudaClip, GradValueMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  GradTwins t = make_grad_twins(3.0);
  clip_grad_value(t.cpu, 0.75);
  clip_grad_value(t.gpu, 0.75);
  expect_same_grads(t, 0.0);  // a clamp is exact
}

TEST(CudaClip, GradsAreFinite) {
  GRAFT_REQUIRE_CUDA();
  GradTwins t = make_grad_twins();
  EXPECT_TRUE(grads_are_finite(t.gpu));
  Tensor g = t.cpu[0].grad().clone();
  g.data_ptr<float>()[3] = std::numeric_limits<float>::infinity();
  t.gpu[0].set_grad(g.to(Device::cuda()));
  EXPECT_FALSE(grads_are_finite(t.gpu));
}

TEST(CudaClip, MixedDevicesThrow) {
  GRAFT_REQUIRE_CUDA();
  Tensor a = zeros({3}), b = zeros({3}, Device::cuda());
  a.set_grad(random_cpu({3}));
  b.set_grad(random_cpu({3}, DType::f32, 1).to(Device::cuda()));
  EXPECT_THROW(clip_grad_norm({a, b}, 1.0), DeviceError);
  EXPECT_THROW(clip_grad_value({a, b}, 1.0), DeviceError);
  EXPECT_THROW(grads_are_finite({a, b}), DeviceError);
}

// A model trained on the CPU, then moved to the GPU (Module::to, in place) keeps its optimizer:
// the state made on the CPU follows the parameters to their device at the next step.
TEST(CudaOptim, StateFollowsAModelMovedBetweenSteps) {
  GRAFT_REQUIRE_CUDA();
  auto make = [] {
    manual_seed(3);
    return std::make_shared<nn::Linear>(5, 3);
  };
  auto stay = make(), moved = make();
  AdamW stay_opt(stay->parameters()), moved_opt(moved->parameters());
  SGDOptions momentum;
  momentum.lr = 0.1;
  momentum.momentum = 0.9;
  SGD stay_sgd(stay->parameters(), momentum), moved_sgd(moved->parameters(), momentum);
  auto set_grads = [](nn::Module& m, int step) {
    int k = 0;
    for (const Tensor& p : m.parameters()) p.set_grad(random_cpu(p.shape(), DType::f32, 100 * step + k++).to(p.device()));
  };
  for (int step = 1; step <= 4; ++step) {
    if (step == 2) moved->to(Device::cuda(0));
    for (auto [model, adam, sgd] : {std::tuple{stay.get(), &stay_opt, &stay_sgd}, std::tuple{moved.get(), &moved_opt, &moved_sgd}}) {
      set_grads(*model, step);
      adam->step();
      sgd->step();
    }
  }
  const auto a = stay->parameters(), b = moved->parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(b[i].device().is_cuda());
    EXPECT_TRUE(all_close(b[i], a[i], 1e-6, 1e-7)) << "parameter " << i;
  }
}
