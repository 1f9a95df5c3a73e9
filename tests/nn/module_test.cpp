// Module: names, state dicts, loading rules, freezing, modes, dtype moves, reports.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "nn/activation.h"
#include "nn/container.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"

using namespace graft;
using namespace graft::nn;

namespace {

// A small encoder-like model whose names mirror a Hugging Face checkpoint.
class Block : public Module {
 public:
  Block() : Module("Block") {
    dense = register_module("dense", std::make_shared<Linear>(4, 4));
    LayerNorm_ = register_module("LayerNorm", std::make_shared<LayerNorm>(4));
    register_buffer("position_ids", arange(0, 4, 1, DType::i64));
    register_buffer("scratch", zeros({2}), /*persistent=*/false);
  }
  Tensor forward(const Tensor& x) override { return LayerNorm_->forward(dense->forward(x)); }
  std::shared_ptr<Linear> dense;
  std::shared_ptr<LayerNorm> LayerNorm_;
};

class Encoder : public Module {
 public:
  Encoder() : Module("Encoder") {
    embeddings = register_module("embeddings", std::make_shared<Embedding>(10, 4, 0));
    auto list = std::make_shared<ModuleList>();
    for (int i = 0; i < 2; ++i) list->push_back(std::make_shared<Block>());
    layer = register_module("layer", list);
    head = register_module("head", std::make_shared<Linear>(4, 3));
  }
  std::shared_ptr<Embedding> embeddings;
  std::shared_ptr<ModuleList> layer;
  std::shared_ptr<Linear> head;
};

std::vector<std::string> keys(const std::map<std::string, Tensor>& state) {
  std::vector<std::string> out;
  for (const auto& [k, v] : state) out.push_back(k);
  return out;
}

}  // namespace

TEST(Module, DottedNamesInRegistrationOrder) {
  Encoder model;
  std::vector<std::string> names;
  for (const auto& [name, tensor] : model.named_parameters()) names.push_back(name);
  const std::vector<std::string> expected{
      "embeddings.weight",         "layer.0.dense.weight",     "layer.0.dense.bias",
      "layer.0.LayerNorm.weight",  "layer.0.LayerNorm.bias",   "layer.1.dense.weight",
      "layer.1.dense.bias",        "layer.1.LayerNorm.weight", "layer.1.LayerNorm.bias",
      "head.weight",               "head.bias"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(model.named_modules().size(), 1u + 1 + 1 + 2 * 3 + 1);
  EXPECT_EQ(model.num_parameters(), 40 + 2 * (16 + 4 + 4 + 4) + 12 + 3);
}

TEST(Module, StateDictHoldsParametersAndPersistentBuffersSharingStorage) {
  Encoder model;
  auto state = model.state_dict();
  EXPECT_EQ(state.size(), 11u + 2u);  // 11 parameters + 2 persistent position_ids buffers
  EXPECT_TRUE(state.count("layer.1.position_ids"));
  EXPECT_FALSE(state.count("layer.0.scratch"));
  EXPECT_EQ(state.at("head.weight").data_ptr(), model.head->weight.data_ptr());
  EXPECT_FALSE(state.at("head.weight").requires_grad());
}

TEST(Module, LoadStateDictCopiesIntoTheSameTensors) {
  Encoder a, b;
  const void* before = b.head->weight.data_ptr();
  auto report = b.load_state_dict(a.state_dict());
  EXPECT_TRUE(report.clean());
  EXPECT_EQ(report.loaded, 13);
  EXPECT_EQ(b.head->weight.data_ptr(), before);  // same storage, new values
  EXPECT_TRUE(allclose(b.head->weight, a.head->weight, 0, 0));
  EXPECT_TRUE(allclose(b.find_tensor("layer.1.dense.bias"), a.find_tensor("layer.1.dense.bias"), 0, 0));
  EXPECT_TRUE(b.head->weight.requires_grad());
}

TEST(Module, StrictLoadNamesMissingAndUnexpectedKeysAndChangesNothing) {
  Encoder a, b;
  auto state = a.state_dict();
  state.erase("head.bias");
  state["pooler.dense.weight"] = zeros({4, 4});
  const Tensor before = b.embeddings->weight.clone();
  try {
    b.load_state_dict(state);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("head.bias"), std::string::npos) << message;
    EXPECT_NE(message.find("pooler.dense.weight"), std::string::npos) << message;
  }
  EXPECT_TRUE(allclose(b.embeddings->weight, before, 0, 0));

  auto report = b.load_state_dict(state, {.strict = false});
  EXPECT_EQ(report.missing, std::vector<std::string>{"head.bias"});
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"pooler.dense.weight"});
  EXPECT_TRUE(allclose(b.embeddings->weight, a.embeddings->weight, 0, 0));
}

TEST(Module, ShapeMismatchIsAnErrorEvenWhenNotStrictUnlessIgnored) {
  Encoder a, b;
  auto state = a.state_dict();
  state["head.weight"] = zeros({5, 4});
  const Tensor before = b.layer->at<Block>(0)->dense->weight.clone();
  try {
    b.load_state_dict(state, {.strict = false});
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("head.weight: expected [3, 4], got [5, 4]"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(allclose(b.layer->at<Block>(0)->dense->weight, before, 0, 0));
  auto report = b.load_state_dict(state, {.strict = true, .ignore_mismatched_shapes = true});
  EXPECT_EQ(report.shape_mismatched.size(), 1u);
  EXPECT_EQ(report.loaded, 12);
}

TEST(Module, LoadConvertsDtype) {
  Linear a(3, 2), b(3, 2);
  auto state = a.state_dict();
  for (auto& [k, v] : state) v = v.to(DType::f64);
  b.load_state_dict(state);
  EXPECT_EQ(b.weight.dtype(), DType::f32);
  EXPECT_TRUE(allclose(b.weight, a.weight, 1e-7, 0));
}

TEST(Module, FreezeAndUnfreezeByGlob) {
  Encoder model;
  EXPECT_EQ(model.freeze("embeddings.*"), 1);
  EXPECT_EQ(model.freeze("layer.0.*"), 4);
  EXPECT_FALSE(model.embeddings->weight.requires_grad());
  EXPECT_TRUE(model.find_tensor("layer.1.dense.weight").requires_grad());
  EXPECT_EQ(model.num_parameters(true), model.num_parameters() - 40 - 28);
  EXPECT_EQ(model.named_trainable_parameters().size(), 6u);
  EXPECT_EQ(model.unfreeze("*LayerNorm*"), 4);  // '*' crosses dots
  EXPECT_TRUE(model.find_tensor("layer.0.LayerNorm.bias").requires_grad());
  EXPECT_THROW(model.freeze("encoder.*"), ValueError);  // a typo is loud
  EXPECT_EQ(model.freeze(), 11);
  EXPECT_EQ(model.num_parameters(true), 0);
}

TEST(Module, FrozenParametersGetNoGradient) {
  Encoder model;
  model.freeze("layer.*");
  Tensor ids = from_vector<int64_t>({1, 2, 0}, {3});
  Tensor x = model.embeddings->forward(ids);
  for (const auto& block : *model.layer) x = block->forward(x);
  model.head->forward(x).sum().backward();
  EXPECT_TRUE(model.head->weight.grad().defined());
  EXPECT_TRUE(model.embeddings->weight.grad().defined());
  EXPECT_FALSE(model.find_tensor("layer.0.dense.weight").grad().defined());
  // padding row 0 gets no gradient
  EXPECT_EQ(graft::abs(model.embeddings->weight.grad().select(0, 0)).sum().item(), 0.0);
}

TEST(Module, TrainAndEvalRecurse) {
  auto model = std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
      std::make_shared<Linear>(4, 4), std::make_shared<Dropout>(0.5)});
  EXPECT_TRUE((*model)[1]->is_training());
  model->eval();
  EXPECT_FALSE((*model)[1]->is_training());
  Tensor x = ones({8, 4});
  EXPECT_TRUE(allclose(model->forward(x), model->forward(x), 0, 0));  // dropout off
  model->train();
  EXPECT_TRUE((*model)[1]->is_training());
}

TEST(Module, ToDtypeKeepsHandlesAndRequiresGrad) {
  Encoder model;
  Tensor handle = model.head->weight;
  const Tensor original = handle.clone();
  model.to(DType::f64);
  EXPECT_EQ(handle.dtype(), DType::f64);  // the same handle sees the new dtype
  EXPECT_TRUE(handle.requires_grad());
  EXPECT_TRUE(allclose(handle.to(DType::f32), original, 0, 0));
  EXPECT_EQ(model.find_tensor("layer.0.position_ids").dtype(), DType::i64);  // integer buffers keep theirs
  Tensor out = model.head->forward(ones({2, 4}, DType::f64));
  EXPECT_EQ(out.dtype(), DType::f64);
  EXPECT_THROW(model.to(DType::i32), DTypeError);
}

TEST(Module, FindGivesClearErrors) {
  Encoder model;
  EXPECT_NO_THROW(model.find_module("layer.1.dense"));
  try {
    model.find_tensor("layer.1.attention.weight");
    FAIL();
  } catch (const IndexError& e) {
    EXPECT_NE(std::string(e.what()).find("has no child 'attention'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(model.find_tensor("head.gamma"), IndexError);
}

TEST(Module, RegistrationRulesAreChecked) {
  struct Bad : Module {
    Bad() : Module("Bad") {}
    void twice() {
      register_parameter("w", zeros({2}));
      register_parameter("w", zeros({2}));
    }
    void dotted() { register_parameter("a.b", zeros({2})); }
    void integer() { register_parameter("i", zeros({2}, DType::i64)); }
  };
  Bad bad;
  EXPECT_THROW(bad.twice(), ValueError);
  EXPECT_THROW(bad.dotted(), ValueError);
  EXPECT_THROW(bad.integer(), DTypeError);
  EXPECT_THROW(bad.forward(zeros({1})), NotImplementedError);
}

TEST(Module, SummaryAndRepr) {
  Encoder model;
  model.freeze("embeddings.*");
  const std::string summary = model.summary();
  EXPECT_NE(summary.find("total parameters: 111, trainable: 71"), std::string::npos) << summary;
  EXPECT_NE(summary.find("layer.0.dense"), std::string::npos) << summary;
  const std::string repr = model.repr();
  EXPECT_NE(repr.find("(head): Linear(in_features=4, out_features=3, bias=true)"), std::string::npos) << repr;
  EXPECT_NE(repr.find("(embeddings): Embedding(10, 4, padding_idx=0)"), std::string::npos) << repr;
}

TEST(Module, GlobMatch) {
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("encoder.layer.*.attention.*", "encoder.layer.11.attention.self.query.weight"));
  EXPECT_FALSE(glob_match("encoder.layer.1.*", "encoder.layer.11.output.bias"));
  EXPECT_TRUE(glob_match("*.bia?", "head.bias"));
  EXPECT_FALSE(glob_match("head", "head.bias"));
  EXPECT_TRUE(glob_match("a*", "a*bc"));  // a '*' in the glob is always a wildcard
}

TEST(Module, ToCudaAndBackKeepsHandlesAndValues) {
  if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device visible (or graft built without CUDA)";
  Encoder model;
  Tensor handle = model.head->weight;
  const Tensor original = handle.clone();
  model.to(Device::cuda(0));
  EXPECT_TRUE(handle.device().is_cuda());
  EXPECT_TRUE(model.find_tensor("layer.0.position_ids").device().is_cuda());
  EXPECT_EQ(model.find_tensor("layer.0.position_ids").dtype(), DType::i64);
  EXPECT_TRUE(handle.requires_grad());
  // Weights saved from the GPU load on the CPU by name.
  Encoder on_cpu;
  on_cpu.load_state_dict(model.state_dict());
  EXPECT_TRUE(allclose(on_cpu.head->weight, original, 0, 0));
  model.to(Device::cpu(), DType::f64);
  EXPECT_TRUE(handle.device().is_cpu());
  EXPECT_EQ(handle.dtype(), DType::f64);
  EXPECT_TRUE(allclose(handle.to(DType::f32), original, 0, 0));
}

TEST(Module, AFailedMoveChangesNothing) {
  if (cuda_is_available()) GTEST_SKIP() << "a CUDA device is visible: the move would succeed";
  Encoder model;
  EXPECT_THROW(model.to(Device::cuda(0), DType::f64), DeviceError);
  for (const auto& [name, tensor] : model.named_parameters()) {
    EXPECT_EQ(tensor.dtype(), DType::f32) << name;
    EXPECT_TRUE(tensor.device().is_cpu()) << name;
  }
}
