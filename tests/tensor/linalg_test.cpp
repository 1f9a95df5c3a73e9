// matmul (torch.matmul semantics), linear and layer_norm against naive double loops.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/ops.h"
#include "reference.h"

using namespace graft;
using namespace graft::testing;

namespace {

// Naive torch.matmul reference in double.
std::vector<double> matmul_ref(const Tensor& a_in, const Tensor& b_in, Shape* out_shape) {
  Shape as = a_in.shape(), bs = b_in.shape();
  const bool av = as.size() == 1, bv = bs.size() == 1;
  if (av) as.insert(as.begin(), 1);
  if (bv) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  const Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  const Shape batch = broadcast(ab, bb);
  const auto a = values(a_in), b = values(b_in);
  std::vector<double> out;
  for (int64_t p = 0; p < std::max<int64_t>(shape_numel(batch), 1); ++p) {
    auto bi = unravel(p, batch);
    const int64_t pa = broadcast_index(bi, ab), pb = broadcast_index(bi, bb);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += a[static_cast<size_t>((pa * M + i) * K + k)] * b[static_cast<size_t>((pb * K + k) * N + j)];
        out.push_back(s);
      }
  }
  *out_shape = batch;
  if (!av) out_shape->push_back(M);
  if (!bv) out_shape->push_back(N);
  return out;
}

void check_matmul(const Tensor& a, const Tensor& b, double tol = 1e-4) {
  Shape want_shape;
  const auto want = matmul_ref(a, b, &want_shape);
  Tensor c = matmul(a, b);
  EXPECT_EQ(c.shape(), want_shape) << shape_str(a.shape()) << " @ " << shape_str(b.shape());
  EXPECT_TRUE(all_close(values(c), want, tol, tol)) << shape_str(a.shape()) << " @ " << shape_str(b.shape());
  bool nonzero = false;
  for (double v : values(c)) nonzero |= v != 0;
  EXPECT_TRUE(nonzero || c.numel() == 0);
}

}  // namespace

TEST(Matmul, VectorCases) {
  manual_seed(30);
  check_matmul(randn({7}), randn({7}));            // dot -> 0-d
  EXPECT_EQ(matmul(randn({7}), randn({7})).dim(), 0);
  check_matmul(randn({7}), randn({7, 5}));         // [5]
  check_matmul(randn({5, 7}), randn({7}));         // [5]
  check_matmul(randn({1}), randn({1, 1}));
  check_matmul(randn({3, 2, 7}), randn({7}));      // batched matrix-vector
  check_matmul(randn({7}), randn({4, 7, 3}));      // vector-batched matrix
  check_matmul(randn({9}, DType::f64), randn({9, 2}, DType::f64), 1e-12);
}

TEST(Matmul, OddSizesAndTransposedOperands) {
  manual_seed(31);
  for (auto [M, K, N] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 1, 1}, {1, 7, 1}, {7, 1, 5}, {97, 33, 7}, {13, 129, 17}, {65, 64, 63}}) {
    check_matmul(randn({M, K}), randn({K, N}));
    check_matmul(randn({K, M}).t(), randn({K, N}));          // transposed A
    check_matmul(randn({M, K}), randn({N, K}).t());          // transposed B
    check_matmul(randn({K, M}).t(), randn({N, K}).t());      // both
    check_matmul(randn({M, 2 * K}).slice(1, 0, 2 * K, 2), randn({K, N + 3}).narrow(1, 1, N));  // strided views
  }
  check_matmul(randn({6, 5}, DType::f64).t(), randn({6, 4}, DType::f64), 1e-12);
}

TEST(Matmul, BatchedWithBroadcastBatchDims) {
  manual_seed(32);
  check_matmul(randn({3, 5, 7}), randn({3, 7, 4}));
  check_matmul(randn({2, 1, 5, 7}), randn({3, 7, 4}));  // [2,1] x [3] -> [2,3]
  check_matmul(randn({5, 7}), randn({4, 7, 6}));        // 2-D left broadcast over batch
  check_matmul(randn({4, 5, 7}), randn({7, 6}));        // the Linear case
  check_matmul(randn({2, 3, 5, 7}).transpose(2, 3).transpose(2, 3), randn({1, 3, 7, 2}));
  check_matmul(randn({2, 7, 5}).transpose(1, 2), randn({2, 4, 7}).transpose(1, 2));  // batched transposes
  check_matmul(randn({4, 3, 5, 7}).permute({1, 0, 2, 3}), randn({7, 2}));            // non-viewable fold
  check_matmul(randn({1, 5, 7}).expand({3, 5, 7}), randn({3, 7, 2}));                // stride-0 batch
  check_matmul(randn({3, 5, 7}), randn({7, 1}).expand({7, 4}));                      // stride-0 columns
  check_matmul(randn({2, 2, 3, 4}, DType::f64), randn({2, 1, 4, 5}, DType::f64), 1e-12);
}

TEST(Matmul, EmptyOperands) {
  EXPECT_EQ(matmul(ones({0, 3}), ones({3, 4})).shape(), (Shape{0, 4}));
  EXPECT_EQ(matmul(ones({0}), ones({0})).item(), 0.0);
  // An empty inner dim gives zeros, as torch.matmul does.
  EXPECT_NO_THROW(EXPECT_EQ(values(matmul(ones({2, 0}), ones({0, 3}))), std::vector<double>(6, 0.0)));
  EXPECT_NO_THROW(EXPECT_EQ(values(matmul(ones({3, 0}), ones({0}))), std::vector<double>(3, 0.0)));
}

TEST(Matmul, Errors) {
  EXPECT_TRUE(throws_with<ShapeError>([] { matmul(ones({2, 3}), ones({4, 5})); }, {"matmul", "[2, 3]", "[4, 5]"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { matmul(ones({3}), ones({4})); }, {"matmul", "[3]", "[4]"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { matmul(ones({2, 2, 3}), ones({3, 3, 1})); }, {"matmul", "[2, 2, 3]", "[3, 3, 1]"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { matmul(scalar_tensor(1), ones({3})); }, {"matmul"}));
  EXPECT_TRUE(throws_with<DTypeError>([] { matmul(ones({2, 2}), ones({2, 2}, DType::f64)); }, {"matmul", "f32", "f64"}));
  EXPECT_THROW(matmul(ones({2, 2}, DType::i64), ones({2, 2}, DType::i64)), DTypeError);
}

TEST(Linear, MatchesXWtPlusB) {
  manual_seed(33);
  Tensor x = randn({2, 3, 11}), w = randn({5, 11}), b = randn({5});
  Tensor y = linear(x, w, b);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 5}));
  const auto xv = values(x), wv = values(w), bv = values(b), yv = values(y);
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t o = 0; o < 5; ++o) {
      double s = bv[static_cast<size_t>(o)];
      for (int64_t k = 0; k < 11; ++k) s += xv[static_cast<size_t>(r * 11 + k)] * wv[static_cast<size_t>(o * 11 + k)];
      ASSERT_NEAR(yv[static_cast<size_t>(r * 5 + o)], s, 1e-5);
    }
  EXPECT_TRUE(all_close(values(linear(x, w)), values(matmul(x, w.t()))));
  EXPECT_THROW(linear(x, randn({5, 10})), ShapeError);
  EXPECT_THROW(linear(x, w, randn({4})), ShapeError);
}

TEST(LayerNorm, AgainstReference) {
  manual_seed(34);
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Shape& norm : std::vector<Shape>{{7}, {3, 5}, {1}}) {
      Shape shape{4, 3};
      shape.insert(shape.end(), norm.begin(), norm.end());
      Tensor x = (randn(shape, dt) * 3.0 + 1.0);
      Tensor xt = x.transpose(0, 1).contiguous().transpose(0, 1);  // same values, non-contiguous
      Tensor w = randn(norm, dt), b = randn(norm, dt);
      const int64_t cols = shape_numel(norm), rows = x.numel() / cols;
      const auto xv = values(x), wv = values(w), bv = values(b);
      const double eps = 1e-5;
      std::vector<double> y, yplain;
      for (int64_t r = 0; r < rows; ++r) {
        double m = 0, v = 0;
        for (int64_t c = 0; c < cols; ++c) m += xv[static_cast<size_t>(r * cols + c)];
        m /= static_cast<double>(cols);
        for (int64_t c = 0; c < cols; ++c) v += std::pow(xv[static_cast<size_t>(r * cols + c)] - m, 2);
        v /= static_cast<double>(cols);  // biased, as torch
        for (int64_t c = 0; c < cols; ++c) {
          const double n = (xv[static_cast<size_t>(r * cols + c)] - m) / std::sqrt(v + eps);
          yplain.push_back(n);
          y.push_back(n * wv[static_cast<size_t>(c)] + bv[static_cast<size_t>(c)]);
        }
      }
      const double tol = dt == DType::f64 ? 1e-12 : 2e-5;
      EXPECT_TRUE(all_close(values(layer_norm(xt, norm, w, b, eps)), y, tol, tol)) << shape_str(norm);
      EXPECT_TRUE(all_close(values(layer_norm(x, norm)), yplain, tol, tol)) << shape_str(norm);
      EXPECT_EQ(layer_norm(x, norm).shape(), shape);
    }
  }
  // Constant rows normalise to zero (eps keeps them finite).
  auto z = values(layer_norm(full({2, 4}, 3.0), {4}));
  for (double v : z) EXPECT_EQ(v, 0.0);
  EXPECT_TRUE(throws_with<ShapeError>([] { layer_norm(ones({2, 4}), {3}); }, {"layer_norm", "[3]", "[2, 4]"}));
  EXPECT_THROW(layer_norm(ones({2, 4}), {4}, ones({3})), ShapeError);
  EXPECT_THROW(layer_norm(ones({2, 4}), {4}, ones({4}, DType::f64)), DTypeError);
  EXPECT_THROW(layer_norm(ones({2, 4}, DType::i64), {4}), DTypeError);
}

TEST(Linear, FusedNodeMatchesMatmulPlusBias) {
  // linear is one node (bias inside the GEMM, weight gradient as g^T x, bias gradient a column
  // sum); it must agree with the composition it replaces, forward and backward, 2-D and 3-D.
  manual_seed(41);
  for (const Shape& xs : {Shape{37, 19}, Shape{3, 13, 19}}) {
    Tensor x = randn(xs).requires_grad_(true), w = randn({23, 19}).requires_grad_(true),
           b = randn({23}).requires_grad_(true);
    Tensor x2 = x.detach().requires_grad_(true), w2 = w.detach().requires_grad_(true),
           b2 = b.detach().requires_grad_(true);
    Tensor y = linear(x, w, b), y2 = matmul(x2, w2.t()) + b2;
    EXPECT_TRUE(allclose(y, y2, 1e-5, 1e-5));
    Tensor up = randn(y.shape());
    y.backward(up);
    y2.backward(up);
    EXPECT_TRUE(allclose(x.grad(), x2.grad(), 1e-5, 1e-5));
    EXPECT_TRUE(allclose(w.grad(), w2.grad(), 1e-5, 1e-5));
    EXPECT_TRUE(w.grad().is_contiguous());
    EXPECT_TRUE(allclose(b.grad(), b2.grad(), 1e-5, 1e-5));
    Tensor no_bias = linear(x, w);
    EXPECT_TRUE(allclose(no_bias, matmul(x, w.t()), 1e-5, 1e-5));
  }
}
