// Data-parallel scaling: the time of a fixed number of Trainer steps with a fixed global batch,
// in one process or several (run under mpirun; bench/distributed/scaling.sh runs both). The model
// is an MLP (in -> hidden -> hidden -> classes, ReLU) on random data; the global batch is split
// over the ranks, so every run computes the same steps. Rank 0 prints one line:
//   ranks=<N> steps=<K> global_batch=<B> params=<P> device=<cpu|cuda> ms_per_step=<median over the timed steps>
// --device cuda: each rank trains on its GPU (ProcessGroup::device(), one GPU per process), the
// gradients reduced by NCCL. NEVER RUN: written without a multi-GPU machine (scaling.sh gpu).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "nn/activation.h"
#include "nn/container.h"
#include "nn/linear.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "train/data/dataset.h"
#include "train/distributed/process_group.h"
#include "train/optim/adam.h"
#include "train/trainer.h"

using namespace graft;
namespace dist = graft::train::distributed;

namespace {

int64_t arg(int argc, char** argv, const std::string& name, int64_t fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return std::stoll(argv[i + 1]);
  return fallback;
}

class StepTimer : public train::Callback {
 public:
  void on_step_end(train::Trainer&, train::TrainerState&) override {
    const auto now = std::chrono::steady_clock::now();
    if (started_) times_.push_back(std::chrono::duration<double, std::milli>(now - last_).count());
    last_ = now;
    started_ = true;
  }
  double median() {
    if (times_.empty()) return 0;
    std::sort(times_.begin(), times_.end());
    return times_[times_.size() / 2];
  }

 private:
  std::chrono::steady_clock::time_point last_;
  bool started_ = false;
  std::vector<double> times_;
};

std::string arg_str(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t steps = arg(argc, argv, "steps", 30);
  const int64_t global_batch = arg(argc, argv, "batch", 128);
  const int64_t in = arg(argc, argv, "in", 256), hidden = arg(argc, argv, "hidden", 1024), classes = 10;
  std::shared_ptr<dist::ProcessGroup> group;
  if (dist::ProcessGroup::launched_with_several_processes()) group = dist::ProcessGroup::create();
  const int world = group ? group->world_size() : 1;
  const std::string device_name = arg_str(argc, argv, "device", "cpu");
  if (device_name != "cpu" && device_name != "cuda") {
    std::fprintf(stderr, "scaling: --device must be cpu or cuda, got %s\n", device_name.c_str());
    return 2;
  }
  if (device_name == "cuda" && !cuda_is_available()) {
    std::fprintf(stderr, "scaling: --device cuda, but no GPU is visible (or graft was built without CUDA)\n");
    return 2;
  }
  const Device device = device_name == "cpu" ? Device::cpu() : group ? group->device() : Device::cuda(0);
  if (global_batch % world != 0) {
    std::fprintf(stderr, "scaling: --batch %lld is not a multiple of %d ranks\n", static_cast<long long>(global_batch), world);
    return 2;
  }
  manual_seed(0);
  const int64_t n = global_batch * steps;
  data::TensorDataset dataset({{"features", randn({n, in})}, {"labels", randint(0, classes, {n})}});
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(std::make_shared<nn::Linear>(in, hidden));
  model->push_back(std::make_shared<nn::ReLU>());
  model->push_back(std::make_shared<nn::Linear>(hidden, hidden));
  model->push_back(std::make_shared<nn::ReLU>());
  model->push_back(std::make_shared<nn::Linear>(hidden, classes));
  model->to(device);
  optim::AdamW optimizer(model->parameters(), {});
  train::TrainerOptions options;
  options.batch_size = global_batch / world;
  options.max_steps = steps;
  options.shuffle = false;
  options.progress = false;
  options.process_group = group;
  train::Trainer trainer(*model, optimizer, nullptr, [&](const data::Batch& batch, bool) {
    Tensor logits = model->forward(batch.at("features").to(device));
    return train::StepOutput{cross_entropy(logits, batch.at("labels").to(device)), Tensor()};
  }, options);
  auto timer = std::make_shared<StepTimer>();
  trainer.add_callback(timer);
  trainer.fit(dataset);
  if (!group || group->rank() == 0) {
    std::printf("ranks=%d steps=%lld global_batch=%lld params=%lld device=%s ms_per_step=%.2f\n", world,
                static_cast<long long>(steps), static_cast<long long>(global_batch),
                static_cast<long long>(model->num_parameters()), device_name.c_str(), timer->median());
  }
  group.reset();
  dist::ProcessGroup::finalize();
  return 0;
}
