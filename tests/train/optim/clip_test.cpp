// Gradient clipping against hand-computed values and torch's clip_grad_norm_ (golden), and the
// finiteness check.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "tensor/factory.h"
#include "train/optim/clip.h"

using namespace graft;
using namespace graft::optim;

namespace {

Tensor with_grad(std::vector<double> grad, const Shape& shape = {}) {
  Tensor p = zeros(shape.empty() ? Shape{static_cast<int64_t>(grad.size())} : shape, DType::f64).requires_grad_();
  p.set_grad(from_vector<double>(grad, p.shape()));
  return p;
}

}  // namespace

TEST(Clip, GradNormByHand) {
  Tensor a = with_grad({3, 4}), b = with_grad({12}), none = zeros({2}, DType::f64).requires_grad_();
  const double total = clip_grad_norm({a, b, none}, 6.5);
  EXPECT_DOUBLE_EQ(total, 13.0);
  const double coef = 6.5 / (13.0 + 1e-6);
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{3 * coef, 4 * coef}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{12 * coef}));
  EXPECT_FALSE(none.grad().defined());

  Tensor c = with_grad({3, -4});
  EXPECT_DOUBLE_EQ(clip_grad_norm({c}, 100.0), 5.0);
  EXPECT_EQ(c.grad().to_vector<double>(), (std::vector<double>{3, -4})) << "no clipping below max_norm";
  EXPECT_DOUBLE_EQ(clip_grad_norm({c}, 100.0, std::numeric_limits<double>::infinity()), 4.0);
  EXPECT_DOUBLE_EQ(clip_grad_norm({c}, 100.0, 1.0), 7.0);
  EXPECT_EQ(clip_grad_norm({none}, 1.0), 0.0);
  EXPECT_THROW(clip_grad_norm({c}, -1.0), ValueError);
  EXPECT_THROW(clip_grad_norm({c}, 1.0, 0.0), ValueError);
}

TEST(Clip, GradNormMatchesTorch) {
  std::ifstream in(std::string(GRAFT_TEST_DATA_DIR) + "/golden/optim/clip.json");
  ASSERT_TRUE(in) << "run /usr/bin/python3 tests/golden/make_optim_golden.py";
  const auto golden = nlohmann::json::parse(in);
  int cases = 0;
  for (const auto& c : golden.at("cases")) {
    for (DType dtype : {DType::f64, DType::f32}) {
      std::vector<Tensor> params;
      for (std::size_t i = 0; i < golden.at("grads").size(); ++i) {
        const auto shape = golden.at("shapes")[i].get<Shape>();
        Tensor p = zeros(shape, dtype).requires_grad_();
        p.set_grad(from_vector<double>(golden.at("grads")[i].get<std::vector<double>>(), shape).to(dtype));
        params.push_back(p);
      }
      const double norm_type = c.at("norm_type").is_string() ? std::numeric_limits<double>::infinity()
                                                             : c.at("norm_type").get<double>();
      const double tol = dtype == DType::f64 ? 1e-12 : 1e-5;
      const double total = clip_grad_norm(params, c.at("max_norm").get<double>(), norm_type);
      EXPECT_NEAR(total, c.at("total_norm").get<double>(), tol * c.at("total_norm").get<double>()) << c.dump();
      for (std::size_t i = 0; i < params.size(); ++i) {
        const auto got = params[i].grad().to_vector<double>();
        const auto want = c.at("clipped")[i].get<std::vector<double>>();
        for (std::size_t k = 0; k < got.size(); ++k)
          EXPECT_NEAR(got[k], want[k], tol * std::abs(want[k]) + tol * 1e-3) << "norm " << norm_type << " param " << i;
      }
      ++cases;
    }
  }
  EXPECT_EQ(cases, 24);
}

TEST(Clip, NonFiniteNorm) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  Tensor a = with_grad({1, nan}), b = with_grad({2});
  EXPECT_THROW(clip_grad_norm({a, b}, 1.0, 2.0, /*error_if_nonfinite=*/true), NumericError);
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{2})) << "grads unchanged on error";
  EXPECT_TRUE(std::isnan(clip_grad_norm({a, b}, 1.0)));
  EXPECT_TRUE(std::isnan(clip_grad_norm({a, b}, 1.0, inf)));
  Tensor c = with_grad({inf, 1.0});
  EXPECT_THROW(clip_grad_norm({c}, 1.0, inf, true), NumericError);
  EXPECT_EQ(clip_grad_norm({c}, 1.0), inf);
  EXPECT_EQ(c.grad().to_vector<double>()[1], 0.0) << "an infinite norm zeroes the finite grads, as torch";
}

TEST(Clip, GradValue) {
  Tensor a = with_grad({-3, 0.5, 2, 1}, {2, 2});
  Tensor f = zeros({3}).requires_grad_();
  f.set_grad(from_vector<float>({-0.25f, 7.f, 0.f}));
  clip_grad_value({a, f}, 1.0);
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{-1, 0.5, 1, 1}));
  EXPECT_EQ(f.grad().to_vector<float>(), (std::vector<float>{-0.25f, 1.f, 0.f}));
  EXPECT_THROW(clip_grad_value({a}, -1.0), ValueError);

  Tensor t = zeros({2, 2}, DType::f64).requires_grad_();  // a non-contiguous grad is replaced, not written through
  Tensor source = from_vector<double>({5, -5, 0.1, 2}, {2, 2});
  t.set_grad(source.t());
  clip_grad_value({t}, 1.0);
  EXPECT_EQ(t.grad().to_vector<double>(), (std::vector<double>{1, 0.1, -1, 1}));
  EXPECT_EQ(source.to_vector<double>(), (std::vector<double>{5, -5, 0.1, 2}));
}

TEST(Clip, GradsAreFinite) {
  Tensor a = with_grad({1, 2}), none = zeros({2}).requires_grad_();
  EXPECT_TRUE(grads_are_finite({a, none}));
  EXPECT_TRUE(grads_are_finite({}));
  Tensor n = with_grad({0, std::numeric_limits<double>::quiet_NaN()});
  EXPECT_FALSE(grads_are_finite({a, n}));
  Tensor i = zeros({3}).requires_grad_();
  i.set_grad(from_vector<float>({0.f, -std::numeric_limits<float>::infinity(), 1.f}));
  EXPECT_FALSE(grads_are_finite({i}));
  Tensor big = zeros({100000}).requires_grad_();
  Tensor g = zeros({100000});
  g.data_ptr<float>()[99999] = std::numeric_limits<float>::infinity();
  big.set_grad(g);
  EXPECT_FALSE(grads_are_finite({big}));
}
