// graft from an outside project: tensors and a gradient, then a model trained, saved and reloaded.
// The README's snippets are these lines.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <graft.h>

// y = 3x - 1 learned by a Linear layer through the Trainer, then saved and loaded by name.
int train_and_reload() {
  using namespace graft;
  Tensor x = randn({256, 1});
  data::TensorDataset dataset({{"x", x}, {"y", x * 3.0 - 1.0}});
  nn::Linear model(1, 1);
  optim::SGD optimizer(model.parameters(), {.lr = 0.1});
  train::TrainerOptions options;
  options.epochs = 20;
  options.progress = false;
  train::Trainer trainer(model, optimizer, nullptr,
                         [&](const data::Batch& batch, bool) {
                           Tensor prediction = model.forward(batch.at("x"));
                           return train::StepOutput{mse_loss(prediction, batch.at("y")), prediction};
                         },
                         options);
  trainer.fit(dataset);
  const auto path = std::filesystem::temp_directory_path() / "graft-embed-linear.safetensors";
  nn::save_weights(model, path);
  nn::Linear reloaded(1, 1);
  nn::load_weights(reloaded, path);
  std::filesystem::remove(path);
  std::printf("learned y = %.3f x %+.3f\n", reloaded.weight.item(), reloaded.bias.item());
  const bool ok = std::abs(reloaded.weight.item() - 3.0) < 1e-2 && std::abs(reloaded.bias.item() + 1.0) < 1e-2;
  return ok ? 0 : 1;
}

int main() {
  graft::Tensor w = graft::from_vector<float>({1, 2, 3, 4}, {2, 2}).requires_grad_();
  graft::Tensor x = graft::from_vector<float>({0.5f, -1.0f}, {2, 1});
  graft::Tensor loss = graft::tanh(graft::matmul(w, x)).sum();
  loss.backward();
  std::printf("loss = %.6f\ndloss/dw = %s\n", loss.item(), w.grad().str().c_str());
  // d/dw_ij tanh((Wx)_i) = (1 - tanh^2((Wx)_i)) x_j; (Wx) = [-1.5, -2.5]
  const double expect = (1 - std::pow(std::tanh(-1.5), 2)) * 0.5;
  const double got = w.grad().to_vector<float>()[0];
  if (std::abs(got - expect) > 1e-5) {
    std::printf("wrong gradient: %f vs %f\n", got, expect);
    return 1;
  }
  return train_and_reload();
}
