// MultiheadAttention and TransformerEncoderLayer/TransformerEncoder: Hugging Face BERT's names,
// the math against a composite written out here (matmul, softmax, masked_fill), post-LN and pre-LN
// orderings, padding, dropout and gradients.
// N batch, S sequence length, E d_model, h heads, d = E / h.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/multihead_attention.h"
#include "nn/transformer.h"

using namespace graft;
using namespace graft::nn;

namespace {

constexpr int64_t N = 2, S = 5, E = 8, H = 2, F = 12;

TransformerEncoderLayerOptions layer_options(bool norm_first = false, double dropout = 0.0) {
  TransformerEncoderLayerOptions o;
  o.d_model = E;
  o.num_heads = H;
  o.dim_feedforward = F;
  o.dropout = dropout;
  o.attention_dropout = dropout;
  o.norm_first = norm_first;
  return o;
}

std::vector<std::string> keys(const Module& module) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : module.named_parameters()) names.push_back(name);
  return names;
}

// Self-attention written out with primitive ops, heads split as BertSelfAttention does.
Tensor attention_composite(MultiheadAttention& mha, const Tensor& x, const Tensor& padding) {
  const int64_t n = x.size(0), s = x.size(1), d = mha.head_dim(), h = mha.options().num_heads;
  auto heads = [&](Linear& l) { return linear(x, l.weight, l.bias).reshape({n, s, h, d}).permute({0, 2, 1, 3}); };
  Tensor scores = matmul(heads(*mha.query), transpose(heads(*mha.key), -2, -1)) / std::sqrt(double(d));
  if (padding.defined())
    scores = masked_fill(scores, padding.reshape({n, 1, 1, s}), -std::numeric_limits<double>::infinity());
  return matmul(softmax(scores, -1), heads(*mha.value)).permute({0, 2, 1, 3}).reshape({n, s, h * d});
}

Tensor padding_mask() {  // sequence 0 is full length, sequence 1 has 3 real tokens
  return from_vector<bool>({false, false, false, false, false, false, false, false, true, true}, {N, S});
}

double max_abs_diff(const Tensor& a, const Tensor& b) { return max(abs(a - b)).item(); }

}  // namespace

TEST(MultiheadAttention, ChildrenAreBertSelfAttentions) {
  MultiheadAttention mha(E, H, 0.1);
  EXPECT_EQ(keys(mha), (std::vector<std::string>{"query.weight", "query.bias", "key.weight", "key.bias", "value.weight",
                                                 "value.bias"}));
  EXPECT_EQ(mha.head_dim(), 4);
  EXPECT_NE(mha.repr().find("MultiheadAttention(embed_dim=8, num_heads=2, dropout=0.1\n"), std::string::npos)
      << mha.repr();
}

TEST(MultiheadAttention, MatchesTheCompositeWithAndWithoutPadding) {
  manual_seed(1);
  MultiheadAttention mha(E, H);
  const Tensor x = randn({N, S, E});
  NoGradGuard no_grad;
  EXPECT_LT(max_abs_diff(mha.forward(x), attention_composite(mha, x, Tensor())), 1e-5);
  EXPECT_LT(max_abs_diff(mha.forward(x, padding_mask()), attention_composite(mha, x, padding_mask())), 1e-5);
  EXPECT_GT(max_abs_diff(mha.forward(x), mha.forward(x, padding_mask())), 1e-3);  // the mask does something
}

TEST(MultiheadAttention, GradientsMatchTheComposite) {
  manual_seed(2);
  MultiheadAttention mha(E, H);
  const Tensor x = randn({N, S, E}).requires_grad_();
  const Tensor w = randn({N, S, E});
  sum(mha.forward(x, padding_mask()) * w).backward();
  const Tensor gx = x.grad(), gq = mha.query->weight.grad(), gv = mha.value->bias.grad();
  x.set_grad(Tensor());
  for (const Tensor& p : mha.parameters()) p.set_grad(Tensor());
  sum(attention_composite(mha, x, padding_mask()) * w).backward();
  EXPECT_LT(max_abs_diff(gx, x.grad()), 1e-4);
  EXPECT_LT(max_abs_diff(gq, mha.query->weight.grad()), 1e-4);
  EXPECT_LT(max_abs_diff(gv, mha.value->bias.grad()), 1e-4);
}

TEST(MultiheadAttention, RejectsBadArguments) {
  EXPECT_THROW(MultiheadAttention(10, 3), ValueError);  // 10 % 3 != 0
  EXPECT_THROW(MultiheadAttention(0, 1), ValueError);
  EXPECT_THROW(MultiheadAttention(8, 2, 1.0), ValueError);
  MultiheadAttention mha(E, H);
  EXPECT_THROW(mha.forward(randn({S, E})), ShapeError);
  EXPECT_THROW(mha.forward(randn({N, S, E + 1})), ShapeError);
  EXPECT_THROW(mha.forward(randn({N, S, E}), zeros({N, S})), DTypeError);                    // float mask
  EXPECT_THROW(mha.forward(randn({N, S, E}), padding_mask().narrow(1, 0, 4)), ShapeError);  // wrong S
}

TEST(TransformerEncoderLayer, StateDictNamesAreBertLayers) {
  TransformerEncoderLayer layer(layer_options());
  const std::vector<std::string> expected{"attention.self.query.weight",
                                          "attention.self.query.bias",
                                          "attention.self.key.weight",
                                          "attention.self.key.bias",
                                          "attention.self.value.weight",
                                          "attention.self.value.bias",
                                          "attention.output.dense.weight",
                                          "attention.output.dense.bias",
                                          "attention.output.LayerNorm.weight",
                                          "attention.output.LayerNorm.bias",
                                          "intermediate.dense.weight",
                                          "intermediate.dense.bias",
                                          "output.dense.weight",
                                          "output.dense.bias",
                                          "output.LayerNorm.weight",
                                          "output.LayerNorm.bias"};
  EXPECT_EQ(keys(layer), expected);
  EXPECT_EQ(layer.state_dict().at("intermediate.dense.weight").shape(), (Shape{F, E}));
  EXPECT_EQ(layer.state_dict().at("output.dense.weight").shape(), (Shape{E, F}));

  TransformerEncoder encoder(layer_options(), 3);
  EXPECT_EQ(encoder.num_layers(), 3);
  EXPECT_TRUE(encoder.state_dict().count("layer.2.output.LayerNorm.bias"));
  EXPECT_EQ(encoder.named_parameters().size(), 3 * expected.size());
}

TEST(TransformerEncoderLayer, PostLnAndPreLnOrderings) {
  for (bool norm_first : {false, true}) {
    manual_seed(3);
    TransformerEncoderLayer layer(layer_options(norm_first));
    // Non-trivial LayerNorm affines, so a misplaced norm cannot hide.
    for (auto& [name, p] : layer.named_parameters())
      if (name.find("LayerNorm") != std::string::npos) {
        NoGradGuard no_grad;
        p.copy_(randn(p.shape()) * 0.5 + (name.find("weight") != std::string::npos ? 1.0 : 0.0));
      }
    const Tensor x = randn({N, S, E});
    NoGradGuard no_grad;
    auto& attn_out = *layer.attention->output;
    auto& out = *layer.output;
    auto ln = [](LayerNorm& norm, const Tensor& t) { return layer_norm(t, {E}, norm.weight, norm.bias, 1e-12); };
    auto ffn = [&](const Tensor& t) {
      return linear(gelu(linear(t, layer.intermediate->dense->weight, layer.intermediate->dense->bias)),
                    out.dense->weight, out.dense->bias);
    };
    auto attend = [&](const Tensor& t) {
      return linear(attention_composite(*layer.attention->self, t, padding_mask()), attn_out.dense->weight,
                    attn_out.dense->bias);
    };
    Tensor expected;
    if (norm_first) {
      const Tensor h = x + attend(ln(*attn_out.layer_norm, x));
      expected = h + ffn(ln(*out.layer_norm, h));
    } else {
      const Tensor h = ln(*attn_out.layer_norm, x + attend(x));
      expected = ln(*out.layer_norm, h + ffn(h));
    }
    EXPECT_LT(max_abs_diff(layer.forward(x, padding_mask()), expected), 1e-4) << "norm_first=" << norm_first;
  }
}

TEST(TransformerEncoderLayer, ActivationsDiffer) {
  manual_seed(4);
  const Tensor x = randn({N, S, E});
  std::vector<Tensor> outputs;
  for (auto act : {TransformerActivation::gelu, TransformerActivation::gelu_tanh, TransformerActivation::relu}) {
    manual_seed(5);
    auto o = layer_options();
    o.activation = act;
    TransformerEncoderLayer layer(o);
    NoGradGuard no_grad;
    outputs.push_back(layer.forward(x));
  }
  EXPECT_GT(max_abs_diff(outputs[0], outputs[1]), 1e-6);  // the tanh form is close to erf's, not equal
  EXPECT_GT(max_abs_diff(outputs[0], outputs[2]), 1e-3);
  EXPECT_STREQ(transformer_activation_name(TransformerActivation::gelu_tanh), "gelu_new");
}

TEST(TransformerEncoder, PaddingNeverReachesRealTokens) {
  for (bool norm_first : {false, true}) {
    manual_seed(6);
    TransformerEncoder encoder(layer_options(norm_first), 2);
    encoder.eval();
    const Tensor x = randn({N, S, E});
    Tensor scribbled = x.clone();
    {
      NoGradGuard no_grad;
      scribbled.select(0, 1).narrow(0, 3, 2).copy_(randn({2, E}) * 10.0);  // sequence 1's padding
    }
    NoGradGuard no_grad;
    const Tensor a = encoder.forward(x, padding_mask()), b = encoder.forward(scribbled, padding_mask());
    EXPECT_LT(max_abs_diff(a.narrow(1, 0, 3), b.narrow(1, 0, 3)), 1e-5);
    // And sequence 1 alone, unpadded, gives the same real-token outputs.
    const Tensor alone = encoder.forward(x.narrow(0, 1, 1).narrow(1, 0, 3));
    EXPECT_LT(max_abs_diff(alone.select(0, 0), a.select(0, 1).narrow(0, 0, 3)), 1e-5);
  }
}

TEST(TransformerEncoder, DropoutOnlyWhileTraining) {
  manual_seed(7);
  TransformerEncoder encoder(layer_options(false, 0.3), 2);
  const Tensor x = randn({N, S, E});
  NoGradGuard no_grad;
  const Tensor t1 = encoder.forward(x, padding_mask()), t2 = encoder.forward(x, padding_mask());
  EXPECT_GT(max_abs_diff(t1, t2), 1e-3);  // fresh dropout masks each call
  encoder.eval();
  const Tensor e1 = encoder.forward(x, padding_mask()), e2 = encoder.forward(x, padding_mask());
  EXPECT_EQ(max_abs_diff(e1, e2), 0.0);
  manual_seed(8);
  encoder.train();
  const Tensor s1 = encoder.forward(x, padding_mask());
  manual_seed(8);
  EXPECT_EQ(max_abs_diff(s1, encoder.forward(x, padding_mask())), 0.0);  // a seed fixes the masks
}

TEST(TransformerEncoder, BackwardReachesEveryParameter) {
  for (bool norm_first : {false, true}) {
    manual_seed(9);
    TransformerEncoder encoder(layer_options(norm_first, 0.1), 2);
    const Tensor x = randn({N, S, E}).requires_grad_();
    sum(encoder.forward(x, padding_mask()) * randn({N, S, E})).backward();
    ASSERT_TRUE(x.grad().defined());
    for (const auto& [name, p] : encoder.named_parameters()) {
      ASSERT_TRUE(p.grad().defined()) << name;
      EXPECT_GT(max(abs(p.grad())).item(), 0.0) << name;
    }
  }
}

TEST(TransformerEncoderLayer, RejectsBadOptions) {
  auto o = layer_options();
  o.num_heads = 3;
  EXPECT_THROW(TransformerEncoderLayer{o}, ValueError);
  o = layer_options();
  o.dim_feedforward = 0;
  EXPECT_THROW(TransformerEncoderLayer{o}, ValueError);
  o = layer_options();
  o.layer_norm_eps = 0;
  EXPECT_THROW(TransformerEncoderLayer{o}, ValueError);
  EXPECT_THROW(TransformerEncoder(layer_options(), 0), ValueError);
  TransformerEncoderLayer layer(layer_options());
  EXPECT_THROW(layer.forward(randn({N, S, E + 1})), ShapeError);
  EXPECT_THROW(layer.forward(randn({S, E})), ShapeError);
}
