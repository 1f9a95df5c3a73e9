// Optimizer steps and gradient clipping over the parameters of all-MiniLM-L6-v2 (22.7M f32
// values in 101 tensors, the model the fine-tuning issue trains). Memory-bound, so the counter is
// GB/s of the bytes each step must move: AdamW reads p, g, m, v and writes p, m, v (28 B a value);
// SGD with momentum reads p, g, buf and writes p, buf (20 B); clipping by global norm reads g to
// measure it and reads and writes g to scale it (12 B).
// Cases mirror bench/peers/optim.py one for one; bench/compare.sh optim runs both.
#include <benchmark/benchmark.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "tensor/factory.h"
#include "train/optim/adam.h"
#include "train/optim/clip.h"
#include "train/optim/sgd.h"

namespace {

std::vector<graft::Shape> minilm_shapes() {
  const int64_t h = 384, ffn = 1536;
  std::vector<graft::Shape> shapes{{30522, h}, {512, h}, {2, h}, {h}, {h}};
  for (int layer = 0; layer < 6; ++layer) {
    for (int i = 0; i < 4; ++i) shapes.insert(shapes.end(), {{h, h}, {h}});  // query, key, value, output
    shapes.insert(shapes.end(), {{h}, {h}, {ffn, h}, {ffn}, {h, ffn}, {h}, {h}, {h}});
  }
  shapes.insert(shapes.end(), {{h, h}, {h}});  // pooler
  return shapes;
}

// Parameters with random values and random gradients, as after a backward pass.
std::vector<graft::Tensor> make_parameters(int64_t* total) {
  graft::Generator generator(1);
  std::vector<graft::Tensor> params;
  *total = 0;
  for (const auto& shape : minilm_shapes()) {
    graft::Tensor p = graft::randn(shape, {}, &generator).requires_grad_();
    p.set_grad(graft::randn(shape, {}, &generator) * 1e-3);
    *total += p.numel();
    params.push_back(p);
  }
  return params;
}

bool all_finite(const std::vector<graft::Tensor>& params, std::string* why) {
  for (const auto& p : params) {
    const float* data = p.data_ptr<float>();
    for (int64_t i = 0; i < p.numel(); i += 997) {
      if (!std::isfinite(data[i])) {
        *why = "a parameter became non-finite";
        return false;
      }
    }
  }
  return true;
}

template <class Step>
void run(benchmark::State& state, double bytes_per_value, Step step) {
  int64_t total = 0;
  std::vector<graft::Tensor> params = make_parameters(&total);
  auto optimizer_step = step(params);
  optimizer_step();  // warm-up: the optimizers allocate their buffers on the first step
  std::string why;
  if (!all_finite(params, &why)) {
    state.SkipWithError(why.c_str());
    return;
  }
  for (auto _ : state) {
    optimizer_step();
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(bytes_per_value * static_cast<double>(total) * 1e-9 *
                                                  static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate);
  state.counters["values"] = static_cast<double>(total);
}

void adamw(benchmark::State& state) {
  std::unique_ptr<graft::optim::AdamW> optimizer;
  run(state, 28, [&](std::vector<graft::Tensor>& params) {
    graft::optim::AdamWOptions options;
    options.lr = 1e-4;
    optimizer = std::make_unique<graft::optim::AdamW>(params, options);
    return [&] { optimizer->step(); };
  });
}

void sgd_momentum(benchmark::State& state) {
  std::unique_ptr<graft::optim::SGD> optimizer;
  run(state, 20, [&](std::vector<graft::Tensor>& params) {
    optimizer = std::make_unique<graft::optim::SGD>(params, graft::optim::SGDOptions{.lr = 1e-4, .momentum = 0.9});
    return [&] { optimizer->step(); };
  });
}

void clip_norm(benchmark::State& state) {
  double target = 0;
  run(state, 12, [&](std::vector<graft::Tensor>& params) {
    // Each call clips to 0.999 of the norm the last one left, so every call scales every gradient
    // while the values stay far from zero (0.999^1000 = 0.37) and from denormals.
    target = graft::optim::clip_grad_norm(params, 1e300);
    return [&params, &target] {
      target *= 0.999;
      graft::optim::clip_grad_norm(params, target);
    };
  });
}

}  // namespace

BENCHMARK(adamw)->Name("adamw_step_minilm")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(sgd_momentum)->Name("sgd_momentum_step_minilm")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(clip_norm)->Name("clip_grad_norm_minilm")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
