// The backward engine's contract: accumulation, retain_graph, hooks, guards, depth, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "tensor/ops.h"

using namespace graft;

TEST(Engine, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = from_vector<float>({1, 2, 3}).requires_grad_();
  (x * x).sum().backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2, 4, 6}));
  (x * 3.0).sum().backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{5, 7, 9}));
  x.set_grad(Tensor());
  EXPECT_FALSE(x.grad().defined());
}

TEST(Engine, DiamondGraphSumsBothPaths) {
  Tensor x = from_vector<double>({0.5, -1.0}).requires_grad_();
  Tensor y = exp(x);
  Tensor z = (y * y + y * 3.0).sum();  // d/dx = 2 e^{2x} + 3 e^x
  z.backward();
  auto g = x.grad().to_vector<double>();
  EXPECT_NEAR(g[0], 2 * std::exp(1.0) + 3 * std::exp(0.5), 1e-12);
  EXPECT_NEAR(g[1], 2 * std::exp(-2.0) + 3 * std::exp(-1.0), 1e-12);
}

TEST(Engine, SecondBackwardNeedsRetainGraph) {
  Tensor x = from_vector<float>({1, 2}).requires_grad_();
  Tensor y = (exp(x) * 2.0).sum();
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();  // allowed: the graph was retained
  auto g = x.grad().to_vector<float>();
  EXPECT_NEAR(g[0], 4 * std::exp(1.0f), 1e-5);
  try {
    y.backward();
    FAIL() << "expected AutogradError";
  } catch (const AutogradError& e) {
    EXPECT_NE(std::string(e.what()).find("second time"), std::string::npos) << e.what();
  }
}

TEST(Engine, ExplicitGradientForNonScalarOutputs) {
  Tensor x = from_vector<float>({1, 2, 3}).requires_grad_();
  Tensor y = x * 2.0;
  EXPECT_THROW(y.backward(), AutogradError);
  y.backward(from_vector<float>({1, 0, -1}));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2, 0, -2}));
  EXPECT_THROW(y.backward(ones({2})), AutogradError);  // wrong gradient shape
}

TEST(Engine, HooksSeeAndReplaceGradients) {
  Tensor x = from_vector<float>({1, 2}).requires_grad_();
  Tensor h = x * 3.0;
  std::vector<float> seen;
  h.register_hook([&](const Tensor& g) {
    seen = g.to_vector<float>();
    return g * 10.0;  // replace
  });
  x.register_hook([](const Tensor& g) { return g + 1.0; });
  (h * 2.0).sum().backward();
  EXPECT_EQ(seen, (std::vector<float>{2, 2}));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{61, 61}));
}

TEST(Engine, RetainGradOnNonLeaf) {
  Tensor x = from_vector<float>({1, 2}).requires_grad_();
  Tensor h = x * x;
  h.retain_grad();
  (h * 5.0).sum().backward();
  EXPECT_EQ(h.grad().to_vector<float>(), (std::vector<float>{5, 5}));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{10, 20}));
}

TEST(Engine, NoGradGuardAndDetachRecordNothing) {
  Tensor x = ones({2}).requires_grad_();
  {
    NoGradGuard guard;
    Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
    {
      EnableGradGuard enable;
      EXPECT_TRUE((x * 2.0).requires_grad());
    }
  }
  Tensor d = (x * 2.0).detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_TRUE((x * 2.0).requires_grad());
}

TEST(Engine, DeepChainRunsIteratively) {
  // 20,000 nodes deep: a recursive engine would overflow the stack.
  Tensor x = from_vector<double>({1.0}).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = y * 1.0001;
  y.sum().backward();
  EXPECT_NEAR(x.grad().item(), std::pow(1.0001, 20000), 1e-6);
}

TEST(Engine, DeterministicAccumulation) {
  auto run = [] {
    Generator g(7);
    Tensor w = randn({64, 32}, {}, &g).requires_grad_();
    Tensor x = randn({16, 64}, {}, &g);
    Tensor out = tanh(matmul(x, w));
    (out * out).sum().backward();
    (out.sum() * 0.0).backward();  // nothing: out's graph is freed
    return w.grad().to_vector<float>();
  };
  EXPECT_THROW(run(), AutogradError);
  auto run_ok = [] {
    Generator g(7);
    Tensor w = randn({64, 32}, {}, &g).requires_grad_();
    Tensor x = randn({16, 64}, {}, &g);
    Tensor out = tanh(matmul(x, w));
    Tensor loss = (out * out).sum() + softmax(out, 1).sum({0}).sum() * 0.5;
    loss.backward();
    return w.grad().to_vector<float>();
  };
  EXPECT_EQ(run_ok(), run_ok());
}

TEST(Engine, MissingBackwardThrowsNamingTheOp) {
  Tensor x = ones({3}).requires_grad_();
  Tensor y = autograd::record("my_custom_op", x * 1.0, {x}, autograd::backward_not_implemented("my_custom_op"));
  try {
    y.sum().backward();
    FAIL() << "expected NotImplementedError";
  } catch (const NotImplementedError& e) {
    EXPECT_NE(std::string(e.what()).find("my_custom_op"), std::string::npos) << e.what();
  }
}

TEST(Engine, UserOpsCanBeGradchecked) {
  // A custom op with a hand-written backward, checked by the public gradcheck.
  auto cube = [](const Tensor& x) {
    Tensor y = ops::unary(ops::UnaryOp::pow_scalar, x, 3.0);
    return autograd::record("cube", y, {x}, [x](const Tensor& g) { return std::vector<Tensor>{g * x * x * 3.0}; });
  };
  auto r = gradcheck([&](auto& v) { return cube(v[0]); }, {randn({3, 2}, DType::f64)});
  EXPECT_TRUE(r.ok) << r.message;
  auto wrong = [](const Tensor& x) {
    Tensor y = ops::unary(ops::UnaryOp::pow_scalar, x, 3.0);
    return autograd::record("cube", y, {x}, [x](const Tensor& g) { return std::vector<Tensor>{g * x * x * 2.0}; });
  };
  auto bad = gradcheck([&](auto& v) { return wrong(v[0]); }, {randn({3, 2}, DType::f64)});
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.message.find("mismatch"), std::string::npos);
}

TEST(Engine, RequiresGradRules) {
  EXPECT_THROW(zeros({2}, DType::i64).requires_grad_(), DTypeError);
  Tensor x = ones({2}).requires_grad_();
  EXPECT_THROW(x.fill_(3.0), AutogradError);  // in-place on a leaf that requires grad
  {
    NoGradGuard guard;
    x.fill_(3.0);  // allowed: how optimizers update parameters
  }
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{3, 3}));
  EXPECT_THROW((x * 2.0).requires_grad_(false), AutogradError);
  EXPECT_FALSE(argmax(x, 0).requires_grad());  // integer outputs carry no gradient
}
