// LoRA: a fresh adapter changes nothing, only adapters train, merging, adapter files, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "autograd/gradcheck.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/activation.h"
#include "nn/container.h"
#include "nn/lora.h"
#include "nn/safetensors.h"
#include "tensor/ops.h"

using namespace graft;
using namespace graft::nn;

namespace {

constexpr int64_t kHidden = 6, kClasses = 3;

// An attention-flavoured block: LoRA's usual targets are the query and value projections.
class Block : public Module {
 public:
  Block() : Module("Block") {
    query = register_module("query", std::make_shared<Linear>(kHidden, kHidden));
    value = register_module("value", std::make_shared<Linear>(kHidden, kHidden));
  }
  Tensor forward(const Tensor& x) override { return x + value->forward(tanh(query->forward(x))); }
  std::shared_ptr<Linear> query, value;
};

class Classifier : public Module {
 public:
  Classifier() : Module("Classifier") {
    auto list = std::make_shared<ModuleList>();
    for (int i = 0; i < 2; ++i) list->push_back(std::make_shared<Block>());
    layer = register_module("layer", list);
    classifier = register_module("classifier", std::make_shared<Linear>(kHidden, kClasses));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = x;
    for (const auto& block : *layer) h = block->forward(h);
    return classifier->forward(h);
  }
  std::shared_ptr<ModuleList> layer;
  std::shared_ptr<Linear> classifier;
};

LoraOptions query_value(int64_t rank = 2, double alpha = 4.0) {
  LoraOptions options;
  options.rank = rank;
  options.alpha = alpha;
  options.targets = {"*.query", "*.value"};
  return options;
}

LoraAdapter& adapter_of(Module& root, const std::string& name) {
  auto linear = std::dynamic_pointer_cast<Linear>(root.find_module(name));
  return dynamic_cast<LoraAdapter&>(*linear->adapter());
}

// Gives every B random values, as training would, so the adapters change the outputs.
void train_adapters(Module& root, uint64_t seed) {
  Generator generator(seed);
  NoGradGuard no_grad;
  for (auto& [name, tensor] : root.named_parameters()) {
    if (name.find("lora_") != std::string::npos) {
      ops::copy_into(tensor, randn(tensor.shape(), tensor.dtype(), &generator) * 0.3);
    }
  }
}

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("graft-lora-" + std::to_string(::getpid()) + "-" + name);
}

// The message of the E that f throws ("" and a failure when it throws nothing).
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return {};
}

}  // namespace

TEST(Lora, FreshAdapterLeavesOutputsExactlyAsTheyWere) {
  manual_seed(1);
  Classifier model;
  Tensor x = randn({5, kHidden});
  Tensor before = model.forward(x);
  const auto base_names = model.state_dict();
  const auto adapted = apply_lora(model, query_value());
  EXPECT_EQ(adapted, (std::vector<std::string>{"layer.0.query", "layer.0.value", "layer.1.query", "layer.1.value"}));
  EXPECT_TRUE(allclose(model.forward(x), before, 0, 0));

  const auto state = model.state_dict();
  for (const auto& [name, tensor] : base_names) EXPECT_TRUE(state.count(name)) << name;  // base names unchanged
  EXPECT_EQ(state.size(), base_names.size() + 2 * adapted.size());
  EXPECT_EQ(state.at("layer.0.query.lora_A.weight").shape(), (Shape{2, kHidden}));
  EXPECT_EQ(state.at("layer.1.value.lora_B.weight").shape(), (Shape{kHidden, 2}));
  // A as torch's Linear default, U(-1/sqrt(in), 1/sqrt(in)); B zeros.
  Tensor a = state.at("layer.0.query.lora_A.weight");
  EXPECT_GT(abs(a).sum().item(), 0.0);
  EXPECT_LE(max(abs(a)).item(), 1.0 / std::sqrt(static_cast<double>(kHidden)));
  EXPECT_EQ(abs(state.at("layer.0.query.lora_B.weight")).sum().item(), 0.0);
  EXPECT_NE(model.repr().find("(lora_A): Linear(in_features=6, out_features=2, bias=false)"), std::string::npos)
      << model.repr();
}

TEST(Lora, ForwardAddsTheScaledLowRankUpdate) {
  manual_seed(2);
  Linear layer(4, 3);
  LoraOptions options;
  options.rank = 2;
  options.alpha = 6.0;
  options.targets = {"*"};
  EXPECT_EQ(apply_lora(layer, options), (std::vector<std::string>{""}));  // the root itself is ""
  train_adapters(layer, 3);
  const auto& adapter = dynamic_cast<const LoraAdapter&>(*layer.adapter());
  EXPECT_DOUBLE_EQ(adapter.scale(), 3.0);
  Tensor x = randn({7, 4});
  Tensor a = adapter.lora_A->weight, b = adapter.lora_B->weight;
  Tensor expected = linear(x, layer.weight, layer.bias) + matmul(matmul(x, a.t()), b.t()) * 3.0;
  EXPECT_TRUE(allclose(layer.forward(x), expected, 1e-5, 1e-6));
}

TEST(Lora, DropoutTouchesOnlyTheAdapterInput) {
  manual_seed(4);
  Linear layer(8, 5);
  LoraOptions options;
  options.dropout = 0.5;
  options.targets = {"*"};
  apply_lora(layer, options);
  Tensor x = randn({6, 8});
  Tensor base = linear(x, layer.weight, layer.bias);
  EXPECT_TRUE(allclose(layer.forward(x), base, 0, 0));  // B = 0: dropped or not, the base path is whole
  train_adapters(layer, 5);
  layer.eval();  // no dropout: the plain formula
  const auto& adapter = dynamic_cast<const LoraAdapter&>(*layer.adapter());
  Tensor update = matmul(matmul(x, adapter.lora_A->weight.t()), adapter.lora_B->weight.t()) * adapter.scale();
  EXPECT_TRUE(allclose(layer.forward(x), base + update, 1e-5, 1e-6));
  layer.train();
  EXPECT_FALSE(allclose(layer.forward(x), base + update, 1e-5, 1e-6));  // the adapter's input was dropped

  Linear in_eval(8, 5);
  in_eval.eval();
  apply_lora(in_eval, options);  // the adapter takes the host's mode
  train_adapters(in_eval, 5);
  EXPECT_TRUE(allclose(in_eval.forward(x), in_eval.forward(x), 0, 0));
  EXPECT_FALSE(dynamic_cast<const LoraAdapter&>(*in_eval.adapter()).lora_dropout->is_training());
}

TEST(Lora, FrozenBaseTrainsOnlyAdaptersOfRankTimesInPlusOut) {
  manual_seed(6);
  Classifier model;
  const int64_t rank = 3;
  apply_lora(model, query_value(rank));
  EXPECT_EQ(model.num_parameters(/*trainable_only=*/true), 4 * rank * (kHidden + kHidden));
  for (const auto& [name, tensor] : model.named_trainable_parameters()) {
    EXPECT_TRUE(name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos) << name;
  }
  model.unfreeze("classifier.*");  // a new task's head trains too, as PEFT's modules_to_save
  EXPECT_EQ(model.num_parameters(true), 4 * rank * (2 * kHidden) + kHidden * kClasses + kClasses);

  LoraOptions keep_base = query_value(rank);
  keep_base.freeze_base = false;
  Classifier unfrozen;
  apply_lora(unfrozen, keep_base);
  EXPECT_EQ(unfrozen.num_parameters(true), unfrozen.num_parameters());
}

TEST(Lora, GradientsReachOnlyTheAdaptersAndMatchFiniteDifferencesInF64) {
  manual_seed(7);
  Linear layer(4, 3);
  LoraOptions options;
  options.rank = 2;
  options.targets = {"*"};
  apply_lora(layer, options);
  layer.to(DType::f64);
  train_adapters(layer, 8);  // B != 0, so A has a gradient too
  const auto& adapter = dynamic_cast<const LoraAdapter&>(*layer.adapter());
  Tensor x = randn({5, 4}, DType::f64);
  auto loss = [&] { return sum(square(layer.forward(x))); };

  loss().backward();
  EXPECT_FALSE(layer.weight.grad().defined());
  EXPECT_FALSE(layer.bias.grad().defined());
  for (Tensor parameter : {adapter.lora_A->weight, adapter.lora_B->weight}) {
    ASSERT_TRUE(parameter.grad().defined());
    const auto analytical = parameter.grad().to_vector<double>();
    NoGradGuard no_grad;
    double* p = static_cast<double*>(parameter.data_ptr());
    const double eps = 1e-6;
    for (int64_t i = 0; i < parameter.numel(); ++i) {
      const double original = p[i];
      p[i] = original + eps;
      const double plus = loss().item();
      p[i] = original - eps;
      const double minus = loss().item();
      p[i] = original;
      const double numerical = (plus - minus) / (2 * eps);
      EXPECT_NEAR(analytical[static_cast<size_t>(i)], numerical, 1e-5 + 1e-3 * std::abs(numerical))
          << shape_str(parameter.shape()) << " element " << i;
    }
  }
  // And with respect to the input, through the whole adapted layer.
  GradcheckResult r = gradcheck([&](const std::vector<Tensor>& v) { return layer.forward(v[0]); }, {x});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Lora, MergeFoldsTheUpdateIntoTheWeightAndUnmergeTakesItOut) {
  manual_seed(9);
  Classifier model;
  apply_lora(model, query_value());
  train_adapters(model, 10);
  Tensor x = randn({4, kHidden});
  Tensor adapted = model.forward(x);
  Tensor query = model.find_tensor("layer.0.query.weight");
  Tensor original = clone(query);
  LoraAdapter& adapter = adapter_of(model, "layer.0.query");

  merge_lora(model);
  EXPECT_TRUE(adapter.merged());
  EXPECT_TRUE(allclose(query, original + adapter.delta_weight(), 1e-6, 1e-6));
  EXPECT_TRUE(allclose(model.forward(x), adapted, 1e-5, 1e-5));  // the update is not added twice
  merge_lora(model);  // merged adapters are skipped
  EXPECT_TRUE(allclose(model.forward(x), adapted, 1e-5, 1e-5));
  EXPECT_THROW(adapter.merge(), ValueError);

  unmerge_lora(model);
  EXPECT_FALSE(adapter.merged());
  EXPECT_TRUE(allclose(query, original, 0, 1e-6));  // f32 rounding only
  EXPECT_TRUE(allclose(model.forward(x), adapted, 1e-5, 1e-5));
  EXPECT_THROW(adapter.unmerge(), ValueError);
}

TEST(Lora, SaveLoadRoundTripGivesIdenticalOutputsOnAFreshModel) {
  const auto path = temp_file("round.safetensors");
  manual_seed(11);
  Classifier trained;
  LoraOptions options = query_value(2, 16.0);
  options.dropout = 0.1;
  apply_lora(trained, options);
  train_adapters(trained, 12);
  trained.eval();
  save_lora(trained, path);

  const auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file.names().size(), 8u);  // adapters only: no base weight, no head
  for (const auto& name : file.names()) EXPECT_NE(name.find(".lora_"), std::string::npos) << name;
  EXPECT_EQ(file.metadata().at("r"), "2");
  EXPECT_EQ(file.metadata().at("lora_alpha"), "16");
  EXPECT_EQ(file.metadata().at("lora_dropout"), "0.1");
  EXPECT_EQ(file.metadata().at("target_modules"), R"(["*.query","*.value"])");

  manual_seed(11);
  Classifier fresh;  // the same pretrained base ...
  manual_seed(99);
  apply_lora(fresh, options);  // ... with other adapter draws
  fresh.eval();
  Tensor x = randn({3, kHidden});
  EXPECT_FALSE(allclose(fresh.forward(x), trained.forward(x), 1e-4, 1e-4));
  load_lora(fresh, path);
  EXPECT_TRUE(allclose(fresh.forward(x), trained.forward(x), 0, 0));

  // PEFT's adapter files carry a "base_model.model." prefix; it is accepted.
  std::map<std::string, Tensor> peft;
  for (const auto& [name, tensor] : file.load_all()) peft["base_model.model." + name] = tensor;
  const auto peft_path = temp_file("peft.safetensors");
  save_safetensors(peft_path, peft);
  manual_seed(11);
  Classifier from_peft;
  apply_lora(from_peft, options);
  from_peft.eval();
  load_lora(from_peft, peft_path);
  EXPECT_TRUE(allclose(from_peft.forward(x), trained.forward(x), 0, 0));
  std::filesystem::remove(path);
  std::filesystem::remove(peft_path);
}

TEST(Lora, LoadChecksConfigNamesAndShapesAndChangesNothingOnError) {
  const auto path = temp_file("checked.safetensors");
  manual_seed(13);
  Classifier source;
  apply_lora(source, query_value(2, 4.0));
  train_adapters(source, 14);
  save_lora(source, path);

  Classifier other_rank;
  apply_lora(other_rank, query_value(3, 4.0));
  EXPECT_NE(message_of<ValueError>([&] { load_lora(other_rank, path); }).find("r=3 but the file has r=2"), std::string::npos);

  Classifier other_alpha;
  apply_lora(other_alpha, query_value(2, 8.0));
  EXPECT_NE(message_of<ValueError>([&] { load_lora(other_alpha, path); }).find("lora_alpha=8 but the file has lora_alpha=4"),
            std::string::npos);

  Classifier fewer_targets;
  LoraOptions query_only = query_value(2, 4.0);
  query_only.targets = {"*.query"};
  apply_lora(fewer_targets, query_only);
  Tensor before = clone(fewer_targets.find_tensor("layer.0.query.lora_A.weight"));
  const std::string unexpected = message_of<ValueError>([&] { load_lora(fewer_targets, path); });
  EXPECT_NE(unexpected.find("unexpected tensors: layer.0.value.lora_A.weight"), std::string::npos) << unexpected;
  EXPECT_TRUE(allclose(fewer_targets.find_tensor("layer.0.query.lora_A.weight"), before, 0, 0));

  Classifier more_targets;
  LoraOptions with_head = query_value(2, 4.0);
  with_head.targets.push_back("classifier");
  apply_lora(more_targets, with_head);
  EXPECT_NE(message_of<ValueError>([&] { load_lora(more_targets, path); }).find("missing tensors: classifier.lora_A.weight"),
            std::string::npos);

  // Same names, a wrong shape, no metadata to catch it first.
  auto tensors = SafetensorsFile::open(path).load_all();
  tensors["layer.1.value.lora_B.weight"] = zeros({kHidden + 1, 2});
  const auto bad_shape = temp_file("shape.safetensors");
  save_safetensors(bad_shape, tensors);
  Classifier target;
  apply_lora(target, query_value(2, 4.0));
  before = clone(target.find_tensor("layer.0.query.lora_A.weight"));
  const std::string shape = message_of<ShapeError>([&] { load_lora(target, bad_shape); });
  EXPECT_NE(shape.find("'layer.1.value.lora_B.weight' has shape [7, 2], the adapter expects [6, 2]"), std::string::npos)
      << shape;
  EXPECT_TRUE(allclose(target.find_tensor("layer.0.query.lora_A.weight"), before, 0, 0));

  merge_lora(target);
  EXPECT_NE(message_of<ValueError>([&] { load_lora(target, path); }).find("unmerge_lora"), std::string::npos);
  Classifier plain;
  EXPECT_THROW(load_lora(plain, path), ValueError);
  std::filesystem::remove(path);
  std::filesystem::remove(bad_shape);
}

TEST(Lora, BadOptionsAndTargetsAreValueErrorsAndChangeNothing) {
  Classifier model;
  const size_t parameters = model.named_parameters().size();
  LoraOptions typo = query_value();
  typo.targets = {"*.query", "*.valeu"};
  const std::string message = message_of<ValueError>([&] { apply_lora(model, typo); });
  EXPECT_NE(message.find("'*.valeu' matches no Linear"), std::string::npos) << message;
  EXPECT_NE(message.find("layer.0.value"), std::string::npos) << message;  // lists what exists
  EXPECT_EQ(model.named_parameters().size(), parameters);  // *.query was not adapted either

  LoraOptions not_linear = query_value();
  not_linear.targets = {"layer.0"};  // a Block
  EXPECT_THROW(apply_lora(model, not_linear), ValueError);
  for (auto change : std::vector<std::function<void(LoraOptions&)>>{
           [](LoraOptions& o) { o.rank = 0; }, [](LoraOptions& o) { o.alpha = 0.0; },
           [](LoraOptions& o) { o.alpha = NAN; }, [](LoraOptions& o) { o.dropout = 1.0; },
           [](LoraOptions& o) { o.targets.clear(); }, [](LoraOptions& o) { o.targets = {""}; }}) {
    LoraOptions options = query_value();
    change(options);
    EXPECT_THROW(apply_lora(model, options), ValueError);
  }
  EXPECT_EQ(model.named_parameters().size(), parameters);

  apply_lora(model, query_value());
  EXPECT_NE(message_of<ValueError>([&] { apply_lora(model, query_value()); }).find("already has an adapter"),
            std::string::npos);
  LoraOptions everything = query_value();
  everything.targets = {"*lora_A"};  // the adapters' own Linears are never targets
  EXPECT_THROW(apply_lora(model, everything), ValueError);

  Classifier plain;
  EXPECT_THROW(merge_lora(plain), ValueError);
  EXPECT_THROW(unmerge_lora(plain), ValueError);
  EXPECT_THROW(save_lora(plain, temp_file("none.safetensors")), ValueError);
}

TEST(Lora, SaveRefusesAdaptersWithDifferentConfigs) {
  Classifier model;
  LoraOptions queries = query_value(2, 4.0), values = query_value(4, 4.0);
  queries.targets = {"*.query"};
  values.targets = {"*.value"};
  apply_lora(model, queries);
  apply_lora(model, values);
  EXPECT_THROW(save_lora(model, temp_file("mixed.safetensors")), ValueError);
}
