// nn::GRU and nn::GRUCell: PyTorch names and layouts, torch state dicts loading unchanged (the
// goldens of tests/golden/make_gru_golden.py), init, repr, options, dropout between layers,
// unbatched input, Sequential use.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "nn/container.h"
#include "nn/gru.h"
#include "golden/gru_golden.h"

using namespace graft;
using namespace graft::nn;
using nlohmann::json;
using graft::test::golden_tensor;
using graft::test::load_gru_golden;

namespace {

void expect_close(const Tensor& actual, const json& expected_entry, const std::string& what) {
  graft::test::expect_close(actual, expected_entry, 1e-5, 5e-7, what, /*may_be_zero=*/true);
}

// torch's state_dict of the golden's module, keyed by PyTorch's names.
std::map<std::string, Tensor> torch_state_dict(const json& g) {
  std::map<std::string, Tensor> state;
  for (const auto& p : g.at("params")) state[p.at("name")] = golden_tensor(p);
  return state;
}

GRUOptions module_options(const json& config) {
  GRUOptions o;
  o.enforce_sorted = false;  // the goldens pack with enforce_sorted=False
  o.input_size = config.at("input_size");
  o.hidden_size = config.at("hidden_size");
  o.num_layers = config.at("num_layers");
  o.bias = config.at("bias");
  o.batch_first = config.at("batch_first");
  o.bidirectional = config.at("bidirectional");
  return o;
}

TEST(GRU, ParameterNamesAndShapesAreTorchs) {
  GRU gru(GRUOptions{.input_size = 4, .hidden_size = 6, .num_layers = 2, .bidirectional = true});
  const std::vector<std::pair<std::string, Shape>> expected = {
      {"weight_ih_l0", {18, 4}},          {"weight_hh_l0", {18, 6}},          {"bias_ih_l0", {18}},
      {"bias_hh_l0", {18}},               {"weight_ih_l0_reverse", {18, 4}},  {"weight_hh_l0_reverse", {18, 6}},
      {"bias_ih_l0_reverse", {18}},       {"bias_hh_l0_reverse", {18}},       {"weight_ih_l1", {18, 12}},
      {"weight_hh_l1", {18, 6}},          {"bias_ih_l1", {18}},               {"bias_hh_l1", {18}},
      {"weight_ih_l1_reverse", {18, 12}}, {"weight_hh_l1_reverse", {18, 6}}, {"bias_ih_l1_reverse", {18}},
      {"bias_hh_l1_reverse", {18}}};
  const NamedTensors named = gru.named_parameters();
  ASSERT_EQ(named.size(), expected.size());
  const std::vector<Tensor> flat = gru.flat_parameters();
  for (size_t k = 0; k < named.size(); ++k) {
    EXPECT_EQ(named[k].first, expected[k].first);
    EXPECT_EQ(named[k].second.shape(), expected[k].second) << named[k].first;
    EXPECT_TRUE(flat[k].is_same(named[k].second)) << "flat_parameters()[" << k << "] is not " << named[k].first;
  }
  GRU no_bias(GRUOptions{.input_size = 3, .hidden_size = 2, .bias = false});
  ASSERT_EQ(no_bias.named_parameters().size(), 2u);
  EXPECT_EQ(no_bias.named_parameters()[1].first, "weight_hh_l0");

  GRUCell cell(4, 6);
  const NamedTensors cell_named = cell.named_parameters();
  ASSERT_EQ(cell_named.size(), 4u);
  EXPECT_EQ(cell_named[0].first, "weight_ih");
  EXPECT_EQ(cell_named[1].first, "weight_hh");
  EXPECT_EQ(cell_named[2].first, "bias_ih");
  EXPECT_EQ(cell_named[3].first, "bias_hh");
  EXPECT_EQ(cell.weight_ih.shape(), (Shape{18, 4}));
}

// A torch state_dict loads unchanged and the module reproduces torch's outputs and gradients.
TEST(GRU, TorchStateDictLoadsAndMatchesTorch) {
  // automatic: whatever this build picks (the fused path where it applies, so it meets torch too).
  for (const GruImplementation implementation : {GruImplementation::reference, GruImplementation::automatic})
  for (const char* name : {"uni_1layer", "uni_2layer_h0", "bi_1layer_batch_first", "bi_2layer_h0_lengths",
                           "uni_3layer_lengths_batch_first", "bi_3layer_nobias_h0_lengths_short"}) {
    SCOPED_TRACE(std::string(name) + (implementation == GruImplementation::reference ? " reference" : " automatic"));
    const json g = load_gru_golden(name);
    GRU gru(module_options(g.at("config")));
    gru.set_implementation(implementation);
    const LoadReport report = gru.load_state_dict(torch_state_dict(g));
    EXPECT_TRUE(report.clean()) << report.str();
    Tensor x = golden_tensor(g.at("input")).requires_grad_();
    Tensor h0 = g.at("h0").is_null() ? Tensor() : golden_tensor(g.at("h0")).requires_grad_();
    const json& lens = g.at("config").at("lengths");
    Tensor lengths = lens.is_null() ? Tensor() : from_vector<int64_t>(lens.get<std::vector<int64_t>>());
    GruResult r = gru.forward(x, h0, lengths);
    expect_close(r.output, g.at("output"), "output");
    expect_close(r.h_n, g.at("h_n"), "h_n");
    (sum(r.output * golden_tensor(g.at("proj_output"))) + sum(r.h_n * golden_tensor(g.at("proj_h_n")))).backward();
    expect_close(x.grad(), g.at("grad_input"), "grad_input");
    if (h0.defined()) expect_close(h0.grad(), g.at("grad_h0"), "grad_h0");
    const NamedTensors named = gru.named_parameters();
    for (size_t k = 0; k < named.size(); ++k) {
      ASSERT_EQ(named[k].first, g.at("grad_params")[k].at("name"));
      expect_close(named[k].second.grad(), g.at("grad_params")[k], named[k].first);
    }
  }
}

TEST(GRUCell, TorchStateDictLoadsAndMatchesTorch) {
  const json g = load_gru_golden("cell_hx");
  GRUCell cell(g.at("config").at("input_size"), g.at("config").at("hidden_size"));
  EXPECT_TRUE(cell.load_state_dict(torch_state_dict(g)).clean());
  Tensor x = golden_tensor(g.at("input")).requires_grad_();
  Tensor hx = golden_tensor(g.at("hx")).requires_grad_();
  Tensor h = cell.forward(x, hx);
  expect_close(h, g.at("output"), "output");
  sum(h * golden_tensor(g.at("proj_output"))).backward();
  expect_close(x.grad(), g.at("grad_input"), "grad_input");
  expect_close(hx.grad(), g.at("grad_hx"), "grad_hx");
  expect_close(cell.weight_hh.grad(), g.at("grad_params")[1], "weight_hh");

  const json g2 = load_gru_golden("cell_nobias_no_hx");
  GRUCell no_bias(GRUCellOptions{.input_size = 4, .hidden_size = 6, .bias = false});
  EXPECT_TRUE(no_bias.load_state_dict(torch_state_dict(g2)).clean());
  expect_close(no_bias.forward(golden_tensor(g2.at("input"))), g2.at("output"), "output without hx");
}

TEST(GRU, StateDictWithAWrongShapeIsRefusedNamingBothShapes) {
  GRU gru(GRUOptions{.input_size = 4, .hidden_size = 6});
  auto state = gru.state_dict();
  state["weight_hh_l0"] = zeros({18, 5});
  try {
    gru.load_state_dict(state);
    ADD_FAILURE() << "no exception";
  } catch (const ShapeError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("weight_hh_l0"), std::string::npos) << m;
    EXPECT_NE(m.find("[18, 6]"), std::string::npos) << m;
    EXPECT_NE(m.find("[18, 5]"), std::string::npos) << m;
  }
}

TEST(GRU, ResetParametersIsUniformWithinOneOverSqrtH) {
  manual_seed(3);
  GRU gru(GRUOptions{.input_size = 30, .hidden_size = 64, .num_layers = 2, .bidirectional = true});
  const double bound = 1.0 / 8.0;
  for (const auto& [name, p] : gru.named_parameters()) {
    EXPECT_LE(max(p).item(), bound) << name;
    EXPECT_GE(min(p).item(), -bound) << name;
    EXPECT_GT(max(p).item(), 0.9 * bound) << name;  // spans the range, not a narrower init
  }
  Tensor w = gru.flat_parameters()[0];
  EXPECT_NEAR(var(w).item(), bound * bound / 3, bound * bound / 3 * 0.1);
  const Tensor before = gru.flat_parameters()[1].clone();
  const void* storage = gru.flat_parameters()[1].data_ptr();
  gru.reset_parameters();
  EXPECT_EQ(gru.flat_parameters()[1].data_ptr(), storage);  // in place: handles are kept
  EXPECT_FALSE(allclose(gru.flat_parameters()[1], before, 0, 0));
}

TEST(GRU, ReprLikeTorch) {
  EXPECT_EQ(GRU(GRUOptions{.input_size = 4, .hidden_size = 6}).repr(), "GRU(4, 6)");
  EXPECT_EQ(GRU(GRUOptions{.input_size = 4, .hidden_size = 6, .num_layers = 2, .batch_first = true,
                           .bidirectional = true})
                .extra_repr(),
            "4, 6, num_layers=2, batch_first=true, bidirectional=true");
  EXPECT_EQ(GRU(GRUOptions{.input_size = 4, .hidden_size = 6, .num_layers = 3, .bias = false, .dropout = 0.25})
                .extra_repr(),
            "4, 6, num_layers=3, bias=false, dropout=0.25");
  EXPECT_EQ(GRUCell(4, 6).repr(), "GRUCell(4, 6)");
  EXPECT_EQ(GRUCell(4, 6, false).extra_repr(), "4, 6, bias=false");
}

TEST(GRU, RejectsBadOptions) {
  EXPECT_THROW(GRU(GRUOptions{.input_size = 0, .hidden_size = 6}), ValueError);
  EXPECT_THROW(GRU(GRUOptions{.input_size = 4, .hidden_size = -1}), ValueError);
  EXPECT_THROW(GRU(GRUOptions{.input_size = 4, .hidden_size = 6, .num_layers = 0}), ValueError);
  EXPECT_THROW(GRU(GRUOptions{.input_size = 4, .hidden_size = 6, .dropout = -0.1}), ValueError);
  EXPECT_THROW(GRU(GRUOptions{.input_size = 4, .hidden_size = 6, .dropout = 1.5}), ValueError);
  EXPECT_THROW(GRU(GRUOptions{.input_size = 4, .hidden_size = 6, .dropout = std::nan("")}), ValueError);
  EXPECT_THROW(GRUCell(0, 6), ValueError);
  GRU gru(GRUOptions{.input_size = 4, .hidden_size = 6});
  EXPECT_THROW(gru.forward(randn({5, 3, 5})), ShapeError);
  EXPECT_THROW(gru.forward(randn({5, 3, 4}), randn({2, 3, 6})), ShapeError);
}

// Dropout acts between layers, only in training; p = 1 cuts the input off from layers above.
TEST(GRU, DropoutBetweenLayers) {
  manual_seed(7);
  const GRUOptions base{.input_size = 3, .hidden_size = 4, .num_layers = 2};
  GRUOptions with_dropout = base;
  with_dropout.dropout = 0.5;
  GRU plain(base), dropped(with_dropout);
  dropped.load_state_dict(plain.state_dict());
  Tensor x = randn({6, 2, 3});
  const Tensor expected = plain.forward(x);
  dropped.eval();
  EXPECT_TRUE(allclose(dropped.forward(x), expected, 0, 0)) << "eval mode must be the identity";
  dropped.train();
  EXPECT_FALSE(allclose(dropped.forward(x), expected, 1e-4, 1e-4)) << "training with p > 0 must change the output";

  GRUOptions one_layer = with_dropout;
  one_layer.num_layers = 1;
  GRU single(one_layer);  // nothing between layers: dropout has no effect
  GRU single_plain(GRUOptions{.input_size = 3, .hidden_size = 4});
  single_plain.load_state_dict(single.state_dict());
  EXPECT_TRUE(allclose(single.forward(x), single_plain.forward(x), 0, 0));

  GRUOptions all = base;
  all.dropout = 1.0;
  GRU cut(all);
  const Tensor a = cut.forward(x, Tensor()).output, b = cut.forward(randn({6, 2, 3}) * 3.0, Tensor()).output;
  EXPECT_TRUE(allclose(a, b, 0, 0)) << "p = 1: layer 1 must not see the input";
  GruResult r1 = cut.forward(x, Tensor()), r2 = cut.forward(x + 1.0, Tensor());
  EXPECT_FALSE(allclose(select(r1.h_n, 0, 0), select(r2.h_n, 0, 0), 1e-4, 1e-4)) << "layer 0 still sees it";
}

TEST(GRU, UnbatchedInputAndSequential) {
  manual_seed(8);
  GRU gru(GRUOptions{.input_size = 3, .hidden_size = 4, .num_layers = 2, .bidirectional = true});
  Tensor x = randn({5, 3}), h0 = randn({4, 4});
  GruResult single = gru.forward(x, h0);
  EXPECT_EQ(single.output.shape(), (Shape{5, 8}));
  EXPECT_EQ(single.h_n.shape(), (Shape{4, 4}));
  GruResult batched = gru.forward(unsqueeze(x, 1), unsqueeze(h0, 1));
  EXPECT_TRUE(allclose(single.output, squeeze(batched.output, 1), 0, 0));
  EXPECT_TRUE(allclose(single.h_n, squeeze(batched.h_n, 1), 0, 0));

  auto stacked = std::make_shared<GRU>(GRUOptions{.input_size = 3, .hidden_size = 4, .batch_first = true});
  Sequential seq({stacked});
  Tensor xb = randn({2, 5, 3});
  EXPECT_EQ(seq.forward(xb).shape(), (Shape{2, 5, 4}));
  EXPECT_TRUE(allclose(seq.forward(xb), stacked->forward(xb, Tensor()).output, 0, 0));
}

TEST(GRUCell, UnrolledCellEqualsOneLayerGru) {
  manual_seed(9);
  GRU gru(GRUOptions{.input_size = 3, .hidden_size = 4});
  GRUCell cell(3, 4);
  const NamedTensors named = gru.named_parameters();
  std::map<std::string, Tensor> state;
  for (const auto& [name, p] : named) state[name.substr(0, name.size() - 3)] = p;  // weight_ih_l0 -> weight_ih
  ASSERT_TRUE(cell.load_state_dict(state).clean());
  Tensor x = randn({4, 2, 3});
  Tensor h = zeros({2, 4});
  for (int64_t t = 0; t < 4; ++t) h = cell.forward(select(x, 0, t), h);
  EXPECT_TRUE(allclose(h, select(gru.forward(x, Tensor()).h_n, 0, 0), 1e-6, 1e-6));
}

}  // namespace
