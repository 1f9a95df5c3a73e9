// Gradient checks of the layer-level ops and losses.
#include <gtest/gtest.h>

#include "autograd/gradcheck_helpers.h"

using namespace graft;
using graft::testing::expect_gradcheck;
using graft::testing::rnd;

TEST(GradcheckNn, Matmul) {
  manual_seed(30);
  expect_gradcheck([](auto& v) { return matmul(v[0], v[1]); }, {rnd({3, 4}), rnd({4, 2})});
  expect_gradcheck([](auto& v) { return matmul(v[0], v[1]); }, {rnd({2, 1, 3, 4}), rnd({3, 4, 2})});  // broadcast batch
  expect_gradcheck([](auto& v) { return matmul(v[0], v[1]); }, {rnd({2, 3, 4}), rnd({4, 5})});        // folded batch
  expect_gradcheck([](auto& v) { return matmul(v[0], v[1]); }, {rnd({4}), rnd({4})});
  expect_gradcheck([](auto& v) { return matmul(v[0], v[1]); }, {rnd({4}), rnd({2, 4, 3})});
  expect_gradcheck([](auto& v) { return matmul(v[0], v[1]); }, {rnd({2, 3, 4}), rnd({4})});
  expect_gradcheck([](auto& v) { return matmul(v[0].t(), v[1].t()); }, {rnd({4, 3}), rnd({2, 4})});
  expect_gradcheck([](auto& v) { return linear(v[0], v[1], v[2]); }, {rnd({2, 3, 4}), rnd({5, 4}), rnd({5})});
}

TEST(GradcheckNn, LayerNorm) {
  manual_seed(31);
  expect_gradcheck([](auto& v) { return layer_norm(v[0], {5}, v[1], v[2]); }, {rnd({3, 5}), rnd({5}), rnd({5})});
  expect_gradcheck([](auto& v) { return layer_norm(v[0], {2, 3}); }, {rnd({2, 2, 3})});
  expect_gradcheck([](auto& v) { return layer_norm(v[0].transpose(0, 1), {4}, v[1]); }, {rnd({4, 3}), rnd({4})});
}

TEST(GradcheckNn, EmbeddingIndexGather) {
  manual_seed(32);
  auto idx = from_vector<int64_t>({1, 3, 1, 0, 3, 3}, {2, 3});
  expect_gradcheck([idx](auto& v) { return embedding(v[0], idx); }, {rnd({5, 4})});
  expect_gradcheck([idx](auto& v) { return embedding(v[0], idx, 4); }, {rnd({5, 4})});
  // The padding row takes no gradient even where it is looked up (so no finite-difference check).
  Tensor w = rnd({5, 4}).requires_grad_();
  embedding(w, idx, 3).sum().backward();
  auto g = w.grad().to_vector<double>();
  for (int c = 0; c < 4; ++c) {
    EXPECT_EQ(g[3 * 4 + c], 0.0);
    EXPECT_EQ(g[1 * 4 + c], 2.0);  // index 1 appears twice
  }
  expect_gradcheck([](auto& v) { return index_select(v[0], 1, from_vector<int64_t>({2, 0, 2})); }, {rnd({3, 4})});
  expect_gradcheck([](auto& v) { return gather(v[0], 1, from_vector<int64_t>({0, 2, 2, 1, 1, 0}, {3, 2})); },
                   {rnd({3, 4})});
}

TEST(GradcheckNn, DropoutWithFixedMask) {
  // The same generator state on every call gives the same mask, so dropout is differentiable
  // as a fixed elementwise scale.
  auto x = rnd({4, 5});
  expect_gradcheck([](auto& v) {
    Generator g(42);
    return dropout(v[0], 0.3, true, &g);
  }, {x});
}

TEST(GradcheckNn, Losses) {
  manual_seed(33);
  auto logits = rnd({4, 3});
  auto target = from_vector<int64_t>({0, 2, 1, 2});
  expect_gradcheck([target](auto& v) { return cross_entropy(v[0], target); }, {logits});
  CrossEntropyOptions o;
  o.ignore_index = 1;
  o.label_smoothing = 0.1;
  o.weight = from_vector<double>({0.2, 1.0, 3.0});
  expect_gradcheck([target, o](auto& v) { return cross_entropy(v[0], target, o); }, {logits});
  o.reduction = Reduction::none;
  expect_gradcheck([target, o](auto& v) { return cross_entropy(v[0], target, o); }, {logits});
  auto probs = softmax(rnd({4, 3}), 1);
  expect_gradcheck([probs](auto& v) { return cross_entropy(v[0], probs); }, {logits});
  auto seq_target = from_vector<int64_t>({0, 2, 1, 1, 0, 2}, {2, 3});
  expect_gradcheck([seq_target](auto& v) { return cross_entropy(v[0], seq_target); }, {rnd({2, 3, 3})});
  expect_gradcheck([target](auto& v) { return nll_loss(log_softmax(v[0], 1), target); }, {logits});
  expect_gradcheck([](auto& v) { return mse_loss(v[0], v[1]); }, {rnd({3, 2}), rnd({3, 2})});
  expect_gradcheck([](auto& v) { return l1_loss(v[0], v[1], Reduction::sum); }, {rnd({3, 2}), rnd({3, 2})});
  auto y = from_vector<double>({1, 0, 1, 1, 0, 0}, {3, 2});
  BceWithLogitsOptions b;
  expect_gradcheck([y, b](auto& v) { return binary_cross_entropy_with_logits(v[0], y, b); }, {rnd({3, 2})});
  b.pos_weight = from_vector<double>({2.0, 0.5});
  b.weight = from_vector<double>({1.0, 3.0});
  expect_gradcheck([y, b](auto& v) { return binary_cross_entropy_with_logits(v[0], y, b); }, {rnd({3, 2})});
}
