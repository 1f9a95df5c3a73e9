// The main job until the fine-tuning issue lands: a two-layer MLP trained with graft's autograd
// and plain SGD on three Gaussian blobs. Prints the loss falling and the final accuracy.
#include <cmath>
#include <cstdio>

#include "graft.h"

using namespace graft;

int main() {
  manual_seed(0);
  constexpr int64_t kPerClass = 200, kClasses = 3, kFeatures = 2, kHidden = 32, kSteps = 300;
  constexpr double kLearningRate = 0.1;

  // Data: class c is a blob around a centre on the unit circle, scaled by 2.
  const std::vector<float> centres{2.0f, 0.0f, -1.0f, 1.7f, -1.0f, -1.7f};
  std::vector<Tensor> points;
  std::vector<int64_t> labels;
  for (int64_t c = 0; c < kClasses; ++c) {
    Tensor centre = from_vector<float>({centres[2 * c], centres[2 * c + 1]}, {1, kFeatures});
    points.push_back(randn({kPerClass, kFeatures}) * 0.6 + centre);
    labels.insert(labels.end(), kPerClass, c);
  }
  Tensor x = cat(points, 0);
  Tensor y = from_vector<int64_t>(labels);

  // Parameters, initialised as torch.nn.Linear does: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  auto init = [](const Shape& shape, int64_t fan_in) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    return uniform(shape, -bound, bound).requires_grad_();
  };
  std::vector<Tensor> params{init({kHidden, kFeatures}, kFeatures), init({kHidden}, kFeatures),
                             init({kClasses, kHidden}, kHidden), init({kClasses}, kHidden)};
  auto forward = [&](const Tensor& input) {
    return linear(relu(linear(input, params[0], params[1])), params[2], params[3]);
  };

  std::printf("training a %lld-%lld-%lld MLP on %lld points\n", static_cast<long long>(kFeatures),
              static_cast<long long>(kHidden), static_cast<long long>(kClasses), static_cast<long long>(x.size(0)));
  for (int64_t step = 0; step <= kSteps; ++step) {
    Tensor loss = cross_entropy(forward(x), y);
    loss.backward();
    {
      NoGradGuard no_grad;  // the update is not part of the graph
      for (Tensor& p : params) {
        p.copy_(p - p.grad() * kLearningRate);
        p.set_grad(Tensor());
      }
    }
    if (step % 25 == 0) std::printf("step %3lld  loss %.4f\n", static_cast<long long>(step), loss.item());
  }
  NoGradGuard no_grad;
  Tensor predicted = argmax(forward(x), 1);
  const double accuracy = mean(eq(predicted, y).to(DType::f32)).item();
  std::printf("accuracy %.1f%%\n", 100.0 * accuracy);
  return accuracy > 0.9 ? 0 : 1;
}
