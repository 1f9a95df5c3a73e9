// Layers: values against plain formulas, PyTorch's defaults, errors; init distributions.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/ops.h"
#include "nn/activation.h"
#include "nn/container.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/init.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"

using namespace graft;
using namespace graft::nn;

TEST(Linear, ComputesXWtPlusBAndChecksInputSize) {
  Linear layer(3, 2);
  Tensor x = randn({5, 3});
  Tensor expected = matmul(x, layer.weight.t()) + layer.bias;
  EXPECT_TRUE(allclose(layer.forward(x), expected, 1e-6, 1e-6));
  EXPECT_THROW(layer.forward(randn({5, 4})), ShapeError);
  Linear no_bias(3, 2, false);
  EXPECT_FALSE(no_bias.bias.defined());
  EXPECT_EQ(no_bias.named_parameters().size(), 1u);
  EXPECT_TRUE(allclose(no_bias.forward(x), matmul(x, no_bias.weight.t()), 1e-6, 1e-6));
}

TEST(Linear, DefaultInitIsUniformWithinOneOverSqrtFanIn) {
  manual_seed(1);
  Linear layer(256, 128);
  const double bound = 1.0 / 16.0;
  EXPECT_LE(max(layer.weight).item(), bound);
  EXPECT_GE(min(layer.weight).item(), -bound);
  // U(-b, b) has variance b^2 / 3
  EXPECT_NEAR(var(layer.weight).item(), bound * bound / 3, bound * bound / 3 * 0.05);
  EXPECT_LE(max(abs(layer.bias)).item(), bound);
}

TEST(Linear, EmptyInputGivesZeroBiasAsTorch) {
  Linear layer(0, 3);
  EXPECT_EQ(abs(layer.bias).sum().item(), 0.0);
  EXPECT_TRUE(allclose(layer.forward(empty({2, 0})), zeros({2, 3}), 0, 0));
}

TEST(Embedding, NegativePaddingIndexCountsFromTheEnd) {
  Embedding table(5, 2, -1);
  EXPECT_EQ(table.padding_row(), 4);
  EXPECT_EQ(abs(table.weight.select(0, 4)).sum().item(), 0.0);
  EXPECT_THROW(Embedding(5, 2, -6), IndexError);
  EXPECT_EQ(Embedding(5, 2).padding_row(), -1);
}

TEST(Embedding, FromPretrainedDrawsNothing) {
  Tensor vectors = randn({4, 3});
  manual_seed(9);
  Embedding::from_pretrained(vectors);
  Tensor after = rand({3});
  manual_seed(9);
  EXPECT_TRUE(allclose(after, rand({3}), 0, 0));  // the default generator did not move
}

TEST(Embedding, LooksUpRowsAndKeepsPaddingRowZero) {
  Embedding table(6, 3, /*padding_idx=*/2);
  EXPECT_EQ(abs(table.weight.select(0, 2)).sum().item(), 0.0);
  Tensor ids = from_vector<int64_t>({1, 2, 5, 1}, {2, 2});
  Tensor out = table.forward(ids);
  EXPECT_EQ(out.shape(), (Shape{2, 2, 3}));
  EXPECT_TRUE(allclose(out.select(0, 0).select(0, 0), table.weight.select(0, 1), 0, 0));
  EXPECT_THROW(Embedding(4, 3, 4), IndexError);
  EXPECT_THROW(table.forward(from_vector<int64_t>({6})), IndexError);
}

TEST(Embedding, FromPretrainedCopiesAndFreezesByDefault) {
  Tensor vectors = randn({5, 4});
  auto frozen = Embedding::from_pretrained(vectors);
  EXPECT_TRUE(allclose(frozen->weight, vectors, 0, 0));
  EXPECT_FALSE(frozen->weight.is_same(vectors));
  EXPECT_FALSE(frozen->weight.requires_grad());
  auto trainable = Embedding::from_pretrained(vectors, /*freeze=*/false, /*padding_idx=*/0);
  EXPECT_TRUE(trainable->weight.requires_grad());
  trainable->forward(from_vector<int64_t>({0, 3})).sum().backward();
  Tensor grad = trainable->weight.grad();
  EXPECT_EQ(abs(grad.select(0, 0)).sum().item(), 0.0);
  EXPECT_EQ(grad.select(0, 3).sum().item(), 4.0);
  EXPECT_THROW(Embedding::from_pretrained(randn({5})), ShapeError);
}

TEST(LayerNorm, NormalisesTrailingDimsWithAffine) {
  LayerNorm norm(LayerNormOptions{{4}, 1e-12});
  Tensor x = randn({3, 4}, DType::f64);
  norm.to(DType::f64);
  Tensor mu = mean(x, {1}, true), sigma2 = var(x, {1}, 0, true);
  Tensor expected = (x - mu) / sqrt(sigma2 + 1e-12);
  EXPECT_TRUE(allclose(norm.forward(x), expected, 1e-10, 1e-10));
  EXPECT_EQ(norm.extra_repr(), "[4], eps=1e-12, elementwise_affine=true");
  LayerNorm plain(LayerNormOptions{{4}, 1e-5, false});
  EXPECT_TRUE(plain.named_parameters().empty());
}

TEST(Dropout, ScalesKeptValuesAndIsIdentityInEval) {
  Generator generator(7);
  Dropout drop(0.25, &generator);
  Tensor x = ones({10000});
  Tensor y = drop.forward(x);
  auto values = y.to_vector<float>();
  int64_t kept = 0;
  for (float v : values) {
    if (v != 0.0f) {
      EXPECT_FLOAT_EQ(v, 1.0f / 0.75f);
      ++kept;
    }
  }
  EXPECT_NEAR(kept / 10000.0, 0.75, 0.02);
  drop.eval();
  EXPECT_TRUE(allclose(drop.forward(x), x, 0, 0));
  EXPECT_THROW(Dropout(1.5), ValueError);
}

TEST(Sequential, ChainsAndNamesChildrenByIndex) {
  Sequential model{std::make_shared<Linear>(2, 8), std::make_shared<ReLU>(), std::make_shared<Linear>(8, 3)};
  EXPECT_EQ(model.size(), 3);
  auto names = model.named_parameters();
  EXPECT_EQ(names[0].first, "0.weight");
  EXPECT_EQ(names[3].first, "2.bias");
  Tensor x = randn({4, 2});
  auto first = std::dynamic_pointer_cast<Linear>(model[0]);
  auto last = std::dynamic_pointer_cast<Linear>(model[-1]);
  EXPECT_TRUE(allclose(model.forward(x), last->forward(relu(first->forward(x))), 0, 0));
  EXPECT_THROW(model[3], IndexError);
  EXPECT_NE(model.repr().find("(1): ReLU()"), std::string::npos);
}

TEST(Activations, MatchTheirOps) {
  Tensor x = randn({16});
  EXPECT_TRUE(allclose(GELU().forward(x), gelu(x), 0, 0));
  EXPECT_TRUE(allclose(Tanh().forward(x), tanh(x), 0, 0));
  EXPECT_TRUE(allclose(Sigmoid().forward(x), sigmoid(x), 0, 0));
  EXPECT_TRUE(allclose(Identity().forward(x), x, 0, 0));
  Tensor leaky = LeakyReLU(0.1).forward(x);
  auto in = x.to_vector<float>(), out = leaky.to_vector<float>();
  for (size_t i = 0; i < in.size(); ++i) EXPECT_FLOAT_EQ(out[i], in[i] > 0 ? in[i] : 0.1f * in[i]);
  EXPECT_TRUE(allclose(Softmax(-1).forward(x).sum(), ones({}), 1e-6, 1e-6));
}

TEST(Init, FansAndGains) {
  Tensor w = empty({8, 4, 3, 3});
  auto [fan_in, fan_out] = init::fan_in_and_fan_out(w);
  EXPECT_EQ(fan_in, 36);
  EXPECT_EQ(fan_out, 72);
  EXPECT_THROW(init::fan_in_and_fan_out(empty({3})), ValueError);
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::Nonlinearity::relu), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::Nonlinearity::tanh), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::Nonlinearity::leaky_relu, std::sqrt(5.0)), std::sqrt(2.0 / 6.0));
}

TEST(Init, DistributionsHaveTheirVariance) {
  manual_seed(3);
  Tensor w = empty({400, 300});
  init::xavier_uniform_(w);
  EXPECT_NEAR(var(w).item(), 2.0 / 700, 2.0 / 700 * 0.03);
  init::xavier_normal_(w, 2.0);
  EXPECT_NEAR(var(w).item(), 4 * 2.0 / 700, 4 * 2.0 / 700 * 0.03);
  init::kaiming_normal_(w, 0.0, init::FanMode::fan_in, init::Nonlinearity::relu);
  EXPECT_NEAR(var(w).item(), 2.0 / 300, 2.0 / 300 * 0.03);
  init::kaiming_uniform_(w, 0.0, init::FanMode::fan_out, init::Nonlinearity::relu);
  EXPECT_NEAR(var(w).item(), 2.0 / 400, 2.0 / 400 * 0.03);
  EXPECT_LE(max(abs(w)).item(), std::sqrt(6.0 / 400));
  init::normal_(w, 1.0, 0.02);
  EXPECT_NEAR(mean(w).item(), 1.0, 1e-3);
  EXPECT_NEAR(stddev(w).item(), 0.02, 0.001);
  init::trunc_normal_(w, 0.0, 1.0, -0.5, 0.5);
  EXPECT_LE(max(abs(w)).item(), 0.5);
  init::constant_(w, 0.25);
  EXPECT_EQ(mean(w).item(), 0.25);
}

TEST(Init, OrthogonalGivesOrthonormalRowsOrColumns) {
  for (Shape shape : {Shape{6, 4}, Shape{4, 6}, Shape{5, 5}}) {
    Tensor w = empty(shape, DType::f64);
    init::orthogonal_(w, 2.0);
    const bool tall = shape[0] >= shape[1];
    Tensor gram = tall ? matmul(w.t(), w) : matmul(w, w.t());
    const int64_t n = std::min(shape[0], shape[1]);
    EXPECT_TRUE(allclose(gram, eye(n, DType::f64) * 4.0, 1e-10, 1e-10)) << gram.str();
  }
}

TEST(Init, WorksOnParametersThatRequireGrad) {
  Linear layer(4, 4);
  EXPECT_NO_THROW(init::xavier_uniform_(layer.weight));
  EXPECT_TRUE(layer.weight.requires_grad());
  EXPECT_TRUE(layer.weight.is_leaf());
  Tensor integer = zeros({2, 2}, DType::i64);
  EXPECT_THROW(init::normal_(integer), DTypeError);
}
