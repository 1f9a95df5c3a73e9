// The main job until the fine-tuning issue lands: transfer learning end to end on a synthetic task.
//
// 1. Pretrain: an MLP backbone learns a 16-class source task (which of 8 angular sectors and which
//    of 2 radius bands a point of the plane lies in) from 8,000 examples; its weights are saved as
//    safetensors.
// 2. Transfer: the target task asks something new of the same plane (a pinwheel: alternate
//    angular sectors form the two classes) with only 64 labelled examples, and 64 more for
//    validation. The pretrained backbone is loaded under a fresh head and trained frozen (feature
//    extraction), then fine-tuned whole with a lower learning rate for the backbone
//    (discriminative rates); a model trained from scratch on the same examples is the baseline.
// It prints what each stage learned and returns non-zero when transfer does not beat scratch.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>

#include "graft.h"

using namespace graft;

namespace {

constexpr int64_t kHidden = 64;

struct Task {
  data::TensorDataset train, validation, test;
};

// Points uniform in [-3, 3]^2, labelled by `label(x, y)`.
Task make_task(int64_t n_train, int64_t n_validation, int64_t n_test, uint64_t seed,
               int64_t (*label)(double, double)) {
  Generator generator(seed);
  auto make = [&](int64_t n) {
    Tensor points = uniform({n, 2}, -3.0, 3.0, DType::f32, &generator);
    auto xy = points.to_vector<float>();
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < n; ++i) labels.push_back(label(xy[2 * i], xy[2 * i + 1]));
    return data::TensorDataset({{"features", points}, {"labels", from_vector<int64_t>(labels)}});
  };
  return {make(n_train), make(n_validation), make(n_test)};
}

int64_t source_label(double x, double y) {  // 8 sectors x 2 radius bands
  const double angle = std::atan2(y, x) + std::numbers::pi;
  const auto sector = std::min<int64_t>(7, static_cast<int64_t>(angle / (2 * std::numbers::pi) * 8));
  return sector * 2 + (std::hypot(x, y) < 1.6 ? 0 : 1);
}

// Alternate angular sectors (a pinwheel): eight wedge boundaries are hard to find from 64 points,
// but easy on features that already tell the sectors apart.
int64_t target_label(double x, double y) { return source_label(x, y) / 2 % 2; }

std::shared_ptr<nn::Sequential> make_backbone() {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(2, kHidden), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(kHidden, kHidden), std::make_shared<nn::ReLU>()});
}

// backbone -> a small MLP head, with the names a checkpoint of it would carry ("backbone.0.weight", "head.bias").
class Classifier : public nn::Module {
 public:
  explicit Classifier(int64_t classes) : Module("Classifier") {
    backbone = register_module("backbone", make_backbone());
    head = register_module("head", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                                       std::make_shared<nn::Linear>(kHidden, 32), std::make_shared<nn::ReLU>(),
                                       std::make_shared<nn::Linear>(32, classes)}));
  }
  Tensor forward(const Tensor& x) override { return head->forward(backbone->forward(x)); }
  std::shared_ptr<nn::Sequential> backbone;
  std::shared_ptr<nn::Sequential> head;
};

struct Stage {
  const char* name;
  double accuracy;
  int64_t trainable;
};

// Trains `model` with AdamW (one group per entry of `lrs`: backbone, head) and a warmup + cosine
// schedule, restoring the best validation accuracy; returns the test accuracy.
double fit_and_test(Classifier& model, const Task& task, int64_t epochs, int64_t batch_size, double backbone_lr,
             double head_lr) {
  std::vector<optim::ParamGroup> groups;
  optim::ParamGroup head_group;
  head_group.name = "head";
  head_group.params = model.head->parameters();
  head_group.lr = head_lr;
  groups.push_back(head_group);
  if (backbone_lr > 0) {
    optim::ParamGroup backbone_group;
    backbone_group.name = "backbone";
    backbone_group.params = model.backbone->parameters();
    backbone_group.lr = backbone_lr;
    groups.push_back(backbone_group);
  }
  for (auto& group : groups) group.weight_decay = 1e-4;
  optim::AdamW optimizer(groups);
  train::TrainerOptions options;
  options.epochs = epochs;
  options.batch_size = batch_size;
  options.metric_for_best = "accuracy";
  options.early_stopping = {.patience = 0, .min_delta = 0.0, .restore_best = true};
  options.progress = false;
  const int64_t steps = epochs * ((task.train.size() + batch_size - 1) / batch_size);
  optim::CosineWithWarmupLR schedule(optimizer, steps / 10, steps);
  train::Trainer trainer(model, optimizer, &schedule,
                         [&](const data::Batch& batch, bool) {
                           Tensor logits = model.forward(batch.at("features"));
                           return train::StepOutput{cross_entropy(logits, batch.at("labels")), logits};
                         },
                         options);
  trainer.fit(task.train, &task.validation);
  return trainer.evaluate(task.test).at("accuracy");
}

}  // namespace

int main() {
  manual_seed(0);
  const auto weights = std::filesystem::temp_directory_path() / "graft-quickstart-backbone.safetensors";

  // 1. Pretrain on the source task and keep the backbone.
  Task source = make_task(8000, 1000, 1000, 1, source_label);
  Classifier pretrained(16);
  std::printf("pretraining a %lld-parameter MLP on the 16-class source task (8000 examples)...\n",
              static_cast<long long>(pretrained.num_parameters()));
  const double source_accuracy = fit_and_test(pretrained, source, 8, 64, 3e-3, 3e-3);
  std::printf("  source test accuracy %.3f\n", source_accuracy);
  nn::save_weights(*pretrained.backbone, weights, {{"task", "sectors x radius bands"}});

  // 2. The target task, 64 labelled examples (and 64 for validation).
  Task target = make_task(64, 64, 2000, 2, target_label);
  std::vector<Stage> stages;

  Classifier scratch(2);
  stages.push_back({"from scratch (all layers)", fit_and_test(scratch, target, 60, 16, 3e-3, 3e-3), scratch.num_parameters(true)});

  Classifier transfer(2);
  nn::load_weights(*transfer.backbone, weights);
  transfer.freeze("backbone.*");
  std::printf("\ntransfer model, backbone loaded from %s and frozen:\n%s", weights.filename().c_str(),
              transfer.summary().c_str());
  stages.push_back({"pretrained, frozen backbone", fit_and_test(transfer, target, 150, 16, 0, 3e-2), transfer.num_parameters(true)});
  transfer.unfreeze("backbone.*");
  stages.push_back({"pretrained, then fine-tuned", fit_and_test(transfer, target, 30, 16, 3e-4, 3e-3), transfer.num_parameters(true)});
  std::filesystem::remove(weights);

  std::printf("\ntarget task: 64 training examples, 2000 test examples\n");
  std::printf("\n%-30s %14s %10s\n", "model", "trainable", "test acc");
  for (const auto& stage : stages) {
    std::printf("%-30s %14lld %10.3f\n", stage.name, static_cast<long long>(stage.trainable), stage.accuracy);
  }
  const double best_transfer = std::max(stages[1].accuracy, stages[2].accuracy);
  std::printf("\ntransfer_accuracy=%.3f scratch_accuracy=%.3f\n", best_transfer, stages[0].accuracy);
  return best_transfer > stages[0].accuracy ? 0 : 1;
}
