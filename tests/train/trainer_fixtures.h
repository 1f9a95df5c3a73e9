// Shared by the trainer and checkpoint tests: a synthetic task, a small model, a temp directory.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "nn/activation.h"
#include "nn/container.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "tensor/factory.h"
#include "train/data/dataset.h"

namespace graft::test {

// Three Gaussian blobs in 2-D (centres on a circle of radius 2, std 0.6): {"features", "labels"}.
inline std::pair<data::TensorDataset, data::TensorDataset> blobs(int64_t n_train, int64_t n_val, uint64_t seed) {
  Generator generator(seed);
  auto make = [&](int64_t n) {
    std::vector<float> centres{2.0f, 0.0f, -1.0f, 1.7f, -1.0f, -1.7f};
    std::vector<float> points;
    std::vector<int64_t> labels;
    auto noise = randn({n, 2}, DType::f32, &generator).to_vector<float>();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = i % 3;
      points.push_back(centres[2 * c] + 0.6f * noise[2 * i]);
      points.push_back(centres[2 * c + 1] + 0.6f * noise[2 * i + 1]);
      labels.push_back(c);
    }
    return data::TensorDataset({{"features", from_vector<float>(points, {n, 2})}, {"labels", from_vector<int64_t>(labels)}});
  };
  auto train = make(n_train);
  auto val = make(n_val);
  return {std::move(train), std::move(val)};
}

// Linear -> ReLU -> Dropout -> Linear.
inline std::shared_ptr<nn::Sequential> make_mlp(int64_t in, int64_t hidden, int64_t out, double dropout = 0.0) {
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(std::make_shared<nn::Linear>(in, hidden));
  model->push_back(std::make_shared<nn::ReLU>());
  model->push_back(std::make_shared<nn::Dropout>(dropout));
  model->push_back(std::make_shared<nn::Linear>(hidden, out));
  return model;
}

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("graft-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace graft::test
