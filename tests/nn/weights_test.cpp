// Module weights through safetensors: round trip, prefixes, dtype conversion, errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "autograd/ops.h"
#include "nn/container.h"
#include "nn/linear.h"
#include "nn/safetensors.h"
#include "nn/weights.h"

using namespace graft;
using namespace graft::nn;

namespace {

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("graft-weights-" + std::to_string(::getpid()) + "-" + name);
}

std::shared_ptr<Sequential> model(int64_t hidden = 4) {
  return std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
      std::make_shared<Linear>(3, hidden), std::make_shared<Linear>(hidden, 2)});
}

}  // namespace

TEST(Weights, RoundTripKeepsNamesValuesAndMetadata) {
  auto path = temp_file("round.safetensors");
  auto source = model();
  save_weights(*source, path, {{"framework", "graft"}});
  auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file.names(), (std::vector<std::string>{"0.bias", "0.weight", "1.bias", "1.weight"}));
  EXPECT_EQ(file.metadata().at("framework"), "graft");
  auto target = model();
  EXPECT_TRUE(load_weights(*target, path).clean());
  EXPECT_TRUE(allclose(target->parameters()[2], source->parameters()[2], 0, 0));
  std::filesystem::remove(path);
}

TEST(Weights, PrefixIsStrippedAndHalfPrecisionConverted) {
  auto path = temp_file("prefixed.safetensors");
  auto source = model();
  std::map<std::string, Tensor> stored;
  for (auto& [name, tensor] : source->state_dict()) stored["bert." + name] = tensor.to(DType::bf16);
  stored["classifier.weight"] = zeros({2, 2});
  save_safetensors(path, stored);
  auto target = model();
  EXPECT_THROW(load_weights(*target, path), ValueError);  // strict: classifier.weight is unexpected
  auto report = load_weights(*target, path, {.load = {.strict = false}, .prefix = "bert."});
  EXPECT_EQ(report.loaded, 4);
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"classifier.weight"});
  EXPECT_EQ(target->parameters()[0].dtype(), DType::f32);
  EXPECT_TRUE(allclose(target->parameters()[0], source->parameters()[0], 1e-2, 1e-2));  // bf16 rounding
  std::filesystem::remove(path);
}

TEST(Weights, WrongShapesAndBadFilesChangeNothing) {
  auto path = temp_file("wide.safetensors");
  save_weights(*model(5), path);
  auto target = model(4);
  const Tensor before = target->parameters()[0].clone();
  EXPECT_THROW(load_weights(*target, path), ShapeError);
  EXPECT_TRUE(allclose(target->parameters()[0], before, 0, 0));
  auto report = load_weights(*target, path, {.load = {.strict = true, .ignore_mismatched_shapes = true}});
  EXPECT_EQ(report.shape_mismatched.size(), 3u);  // 1.bias [2] fits both widths
  EXPECT_EQ(report.loaded, 1);
  EXPECT_THROW(load_weights(*target, temp_file("absent.safetensors")), IOError);
  std::filesystem::remove(path);
}
