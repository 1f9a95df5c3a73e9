// The optimizers' contract beyond the numerics: checkpoints, validation, frozen params, zero_grad,
// parameter groups, the parallel update path.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "train/optim/adam.h"
#include "train/optim/param_groups.h"
#include "train/optim/sgd.h"

using namespace graft;
using namespace graft::optim;

namespace {

// A small regression problem whose gradients change every step.
struct Problem {
  Tensor x, y;
  explicit Problem(DType dtype = DType::f64) {
    Generator gen(7);
    x = randn({8, 3}, dtype, &gen);
    y = randn({8, 2}, dtype, &gen);
  }
  std::vector<Tensor> fresh_params(DType dtype = DType::f64) const {
    Generator gen(11);
    return {randn({2, 3}, dtype, &gen).requires_grad_(), randn({2}, dtype, &gen).requires_grad_()};
  }
  void backward(const std::vector<Tensor>& p) const { mse_loss(linear(x, p[0], p[1]), y).backward(); }
};

std::vector<Tensor> copies(const std::vector<Tensor>& params) {
  std::vector<Tensor> out;
  for (const auto& p : params) out.push_back(p.detach().clone().requires_grad_());
  return out;
}

using Factory = std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>;

std::vector<std::pair<std::string, Factory>> factories() {
  return {
      {"sgd_nesterov", [](std::vector<Tensor> p) { return std::make_unique<SGD>(std::move(p), SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true, .weight_decay = 0.01}); }},
      {"adam_amsgrad", [](std::vector<Tensor> p) { return std::make_unique<Adam>(std::move(p), AdamOptions{.lr = 0.01, .weight_decay = 0.01, .l1 = 0.001, .amsgrad = true}); }},
      {"adamw", [](std::vector<Tensor> p) { return std::make_unique<AdamW>(std::move(p)); }},
  };
}

// Everything the state holds, for "nothing changed" checks.
std::string snapshot(const Optimizer& optimizer) {
  const auto state = optimizer.state_dict();
  std::string s = state.meta.dump();
  for (const auto& [key, t] : state.tensors) s += key + t.str();
  return s;
}

void train(Optimizer& optimizer, const Problem& problem, const std::vector<Tensor>& params, int steps) {
  for (int k = 0; k < steps; ++k) {
    optimizer.zero_grad();
    problem.backward(params);
    optimizer.step();
  }
}

}  // namespace

TEST(Optimizer, StateDictRoundTripContinuesBitIdentically) {
  const Problem problem;
  for (const auto& [name, make] : factories()) {
    SCOPED_TRACE(name);
    auto straight_params = problem.fresh_params();
    auto straight = make(straight_params);
    train(*straight, problem, straight_params, 6);

    auto first_params = problem.fresh_params();
    auto first = make(first_params);
    train(*first, problem, first_params, 3);
    Optimizer::State saved = first->state_dict();
    saved.meta = nlohmann::json::parse(saved.meta.dump());  // through text, as a checkpoint file is
    EXPECT_FALSE(saved.tensors.empty());

    auto resumed_params = copies(first_params);
    auto resumed = make(resumed_params);
    resumed->load_state_dict(saved);
    EXPECT_EQ(resumed->steps_taken(), 3);
    for (auto& [key, t] : saved.tensors) t.fill_(123.0);  // the loaded state must be a copy
    train(*resumed, problem, resumed_params, 3);
    for (std::size_t i = 0; i < straight_params.size(); ++i)
      EXPECT_EQ(resumed_params[i].to_vector<double>(), straight_params[i].to_vector<double>()) << "param " << i;
    EXPECT_EQ(snapshot(*resumed), snapshot(*straight));
  }
}

TEST(Optimizer, LoadStateDictMismatchThrowsAndChangesNothing) {
  const Problem problem;
  auto params = problem.fresh_params();
  Adam adam(params, {.lr = 0.01, .amsgrad = true});
  train(adam, problem, params, 2);
  const std::string before = snapshot(adam);
  const auto good = adam.state_dict();

  auto sgd_params = problem.fresh_params();
  SGD sgd(sgd_params, {.lr = 0.1, .momentum = 0.9});
  train(sgd, problem, sgd_params, 1);
  EXPECT_THROW(adam.load_state_dict(sgd.state_dict()), ValueError);  // kind

  auto expect_rejected = [&](auto mutate, auto error_tag, const char* what) {
    auto state = good;
    for (auto& [k, t] : state.tensors) t = t.clone();
    mutate(state);
    EXPECT_THROW(adam.load_state_dict(state), decltype(error_tag)) << what;
    EXPECT_EQ(snapshot(adam), before) << what;
  };
  expect_rejected([](auto& s) { s.meta["groups"].push_back(s.meta["groups"][0]); }, ValueError{""}, "group count");
  expect_rejected([](auto& s) { s.meta["groups"][0]["num_params"] = 3; }, ValueError{""}, "param count");
  expect_rejected([](auto& s) { s.meta["groups"][0]["param_shapes"][0] = {3, 2}; }, ShapeError{""}, "param shape");
  expect_rejected([](auto& s) { s.tensors["state.0.0.exp_avg"] = zeros({3, 2}, DType::f64); }, ShapeError{""},
                  "buffer shape");
  expect_rejected([](auto& s) { s.tensors["state.0.1.exp_avg"] = zeros({2}); }, DTypeError{""}, "buffer dtype");
  expect_rejected([](auto& s) { s.tensors.erase("state.0.1.max_exp_avg_sq"); }, ValueError{""}, "missing buffer");
  expect_rejected([](auto& s) { s.tensors["state.0.5.exp_avg"] = zeros({2}, DType::f64); }, ValueError{""},
                  "param index");
  expect_rejected([](auto& s) { s.tensors["state.0.0.momentum_buffer"] = zeros({2, 3}, DType::f64); }, ValueError{""},
                  "foreign buffer");
  expect_rejected([](auto& s) { s.tensors["junk"] = zeros({2}, DType::f64); }, ValueError{""}, "bad key");
  expect_rejected([](auto& s) { s.meta["groups"][0]["beta1"] = 1.0; }, ValueError{""}, "bad beta1");
  expect_rejected([](auto& s) { s.meta["groups"][0]["lr"] = "fast"; }, ValueError{""}, "lr type");
  expect_rejected([](auto& s) { s.meta["groups"][0]["name"] = "other"; }, ValueError{""}, "group name");
  expect_rejected([](auto& s) { s.meta.erase("steps_taken"); }, ValueError{""}, "missing field");

  try {
    auto state = good;
    state.tensors["state.0.0.exp_avg"] = zeros({3, 2}, DType::f64);
    adam.load_state_dict(state);
  } catch (const ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("state.0.0.exp_avg"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
  }
  adam.load_state_dict(good);  // the unmodified state still loads
  EXPECT_EQ(snapshot(adam), before);
}

TEST(Optimizer, FrozenAndUnusedParamsAreUntouched) {
  const Problem problem;
  for (const auto& [name, make] : factories()) {
    SCOPED_TRACE(name);
    auto params = problem.fresh_params();
    Tensor unused = ones({4}, DType::f64).requires_grad_();
    Tensor frozen = ones({3}, DType::f64);  // requires_grad false: never gets a grad
    auto optimizer = make({params[0], params[1], unused, frozen});
    train(*optimizer, problem, params, 3);
    EXPECT_EQ(unused.to_vector<double>(), std::vector<double>(4, 1.0));
    EXPECT_EQ(frozen.to_vector<double>(), std::vector<double>(3, 1.0));
    const auto state = optimizer->state_dict();
    for (const auto& [key, t] : state.tensors) EXPECT_TRUE(key.rfind("state.0.2.", 0) && key.rfind("state.0.3.", 0)) << key;
    EXPECT_EQ(state.meta["groups"][0]["step"], nlohmann::json({3, 3, 0, 0}));
  }
}

TEST(Optimizer, ZeroGradMakesGradsUndefined) {
  const Problem problem;
  auto params = problem.fresh_params();
  SGD sgd(params);
  problem.backward(params);
  ASSERT_TRUE(params[0].grad().defined());
  sgd.zero_grad();
  for (const auto& p : params) EXPECT_FALSE(p.grad().defined());
  sgd.step();  // nothing has a grad: a no-op
  EXPECT_EQ(sgd.steps_taken(), 1);
}

TEST(Optimizer, RejectsBadHyperParametersNamingTheGroup) {
  auto p = [] { return std::vector<Tensor>{zeros({2}, DType::f64).requires_grad_()}; };
  auto expect_value_error = [](auto make, const std::string& needle) {
    try {
      make();
      ADD_FAILURE() << "expected ValueError about " << needle;
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  expect_value_error([&] { SGD o(p(), {.lr = -0.1}); }, "'default': lr");
  expect_value_error([&] { SGD o(p(), {.lr = nan}); }, "lr");
  expect_value_error([&] { SGD o(p(), {.lr = 0.1, .nesterov = true}); }, "nesterov");
  expect_value_error([&] { SGD o(p(), {.momentum = -1}); }, "momentum");
  expect_value_error([&] { Adam o(p(), {.beta1 = 1.0}); }, "beta1");
  expect_value_error([&] { Adam o(p(), {.beta2 = -0.1}); }, "beta2");
}

TEST(Optimizer, RejectsBadParameters) {
  Tensor leaf = zeros({2}, DType::f64).requires_grad_();
  Tensor non_leaf = leaf * 2.0;
  EXPECT_THROW(SGD({non_leaf}), ValueError);
  EXPECT_THROW(SGD({zeros({2}, DType::i64)}), DTypeError);
  EXPECT_THROW(SGD({leaf, leaf}), ValueError);  // duplicate
  EXPECT_THROW(SGD({Tensor()}), ValueError);
  ParamGroup a, b;
  a.name = "a";
  a.params = {leaf};
  b.name = "b";
  b.params = {leaf};
  EXPECT_THROW(Adam({a, b}), ValueError);  // in two groups
  ParamGroup named;
  named.params = {zeros({2}).requires_grad_()};
  named.param_names = {"x", "y"};
  EXPECT_THROW(Adam({named}), ValueError);
}

TEST(Optimizer, GroupsGetDefaultsAndLrIsCheckedAtStep) {
  ParamGroup g;
  g.params = {zeros({2}, DType::f64).requires_grad_()};
  g.lr = 0.05;
  Adam adam({g});
  ASSERT_EQ(adam.param_groups().size(), 1u);
  EXPECT_EQ(adam.param_groups()[0].name, "group0");
  EXPECT_EQ(adam.param_groups()[0].initial_lr, 0.05);
  ParamGroup h;
  h.params = {zeros({3}, DType::f64).requires_grad_()};
  adam.add_param_group(h);
  EXPECT_EQ(adam.param_groups()[1].name, "group1");
  EXPECT_THROW(adam.add_param_group(h), ValueError);  // same tensor again

  adam.param_groups()[1].lr = std::numeric_limits<double>::infinity();  // as a broken schedule might
  EXPECT_THROW(adam.step(), ValueError);
}

TEST(Optimizer, SgdWithoutGradIsNoOpAndUpdatesInPlace) {
  Tensor w = from_vector<double>({1.0, -2.0}).requires_grad_();
  const void* storage = w.data_ptr();
  SGD sgd({w}, {.lr = 0.5});
  w.set_grad(from_vector<double>({0.2, 0.4}));
  sgd.step();
  EXPECT_EQ(w.to_vector<double>(), (std::vector<double>{0.9, -2.2}));
  EXPECT_EQ(w.data_ptr(), storage);
  EXPECT_TRUE(w.is_leaf());
  EXPECT_TRUE(w.requires_grad());
}

TEST(Optimizer, NonContiguousGradIsAccepted) {
  Tensor w = zeros({2, 3}, DType::f64).requires_grad_();
  Tensor g = from_vector<double>({1, 2, 3, 4, 5, 6}, {3, 2}).t();  // [2, 3], transposed strides
  ASSERT_FALSE(g.is_contiguous());
  w.set_grad(g);
  SGD sgd({w}, {.lr = 1.0});
  sgd.step();
  EXPECT_EQ(w.to_vector<double>(), (std::vector<double>{-1, -3, -5, -2, -4, -6}));
}

TEST(Optimizer, ParallelPathMatchesSmallTensors) {
  // One large tensor (OpenMP team) against the same numbers in small pieces (one thread each).
  constexpr int64_t kPieces = 10, kPiece = kParallelUpdateAbove / 4;
  Generator gen(3);
  Tensor big_init = randn({kPieces * kPiece}, DType::f32, &gen);
  std::vector<Tensor> grads;
  for (int s = 0; s < 3; ++s) grads.push_back(randn({kPieces * kPiece}, DType::f32, &gen));
  Tensor big = big_init.clone().requires_grad_();
  std::vector<Tensor> pieces;
  for (int64_t k = 0; k < kPieces; ++k) pieces.push_back(big_init.narrow(0, k * kPiece, kPiece).clone().requires_grad_());
  AdamW big_opt({big}, {});
  AdamW piece_opt(pieces, {});
  for (const auto& g : grads) {
    big.set_grad(g);
    for (int64_t k = 0; k < kPieces; ++k) pieces[k].set_grad(g.narrow(0, k * kPiece, kPiece).contiguous());
    big_opt.step();
    piece_opt.step();
  }
  const auto all = big.to_vector<float>();
  for (int64_t k = 0; k < kPieces; ++k) {
    const auto part = pieces[k].to_vector<float>();
    ASSERT_TRUE(std::equal(part.begin(), part.end(), all.begin() + k * kPiece)) << "piece " << k;
  }
}

TEST(ParamGroups, DecayGroupsSplitLikeHuggingFace) {
  auto p = [](const Shape& s, bool grad = true) { return zeros(s).requires_grad_(grad); };
  const std::vector<std::pair<std::string, Tensor>> named = {
      {"embeddings.word_embeddings.weight", p({10, 4})},
      {"embeddings.LayerNorm.weight", p({4})},
      {"embeddings.LayerNorm.bias", p({4})},
      {"encoder.layer.0.attention.self.query.weight", p({4, 4})},
      {"encoder.layer.0.attention.self.query.bias", p({4})},
      {"encoder.layer.0.output.layer_norm.weight", p({4})},
      {"pooler.dense.weight", p({4, 4}, false)},  // frozen: skipped
      {"head.scale", p({4})},                     // 1-D: no decay by default
      {"final_norm.gain", p({4, 1})},             // "norm." in the name
  };
  auto groups = decay_groups(named, 0.01);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].name, "decay");
  EXPECT_EQ(groups[0].weight_decay, 0.01);
  EXPECT_EQ(groups[0].param_names, (std::vector<std::string>{"embeddings.word_embeddings.weight",
                                                             "encoder.layer.0.attention.self.query.weight"}));
  EXPECT_EQ(groups[1].name, "no_decay");
  EXPECT_EQ(groups[1].weight_decay, 0.0);
  EXPECT_EQ(groups[1].params.size(), 6u);
  EXPECT_TRUE(groups[0].params[0].is_same(named[0].second));

  auto with_1d = decay_groups(named, 0.01, {.no_decay_for_1d = false});
  EXPECT_EQ(with_1d[0].param_names.back(), "head.scale");
  EXPECT_THROW(decay_groups(named, -1.0), ValueError);
  EXPECT_THROW(decay_groups({{"a", p({2})}, {"a", p({2})}}, 0.1), ValueError);
  AdamW adamw(groups);  // the groups go straight into an optimizer
  EXPECT_EQ(adamw.param_groups()[1].param_names.size(), 6u);
}
