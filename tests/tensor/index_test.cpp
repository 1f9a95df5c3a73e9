// embedding, index_select and gather against plain loops; out-of-range indices are IndexErrors.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "reference.h"

using namespace graft;
using namespace graft::testing;

TEST(Index, EmbeddingPicksRows) {
  manual_seed(40);
  Tensor w = randn({11, 6});
  Tensor idx = randint(0, 11, {3, 5});
  Tensor e = embedding(w, idx);
  ASSERT_EQ(e.shape(), (Shape{3, 5, 6}));
  const auto wv = values(w), ev = values(e);
  const auto iv = idx.to_vector<int64_t>();
  for (size_t i = 0; i < iv.size(); ++i)
    for (size_t c = 0; c < 6; ++c) ASSERT_EQ(ev[i * 6 + c], wv[static_cast<size_t>(iv[i]) * 6 + c]);
  // i32 indices, and a non-contiguous weight
  Tensor wt = randn({6, 11}).t();
  Tensor e32 = embedding(wt, idx.to(DType::i32));
  EXPECT_EQ(values(e32), values(embedding(wt.contiguous(), idx)));
  EXPECT_TRUE(throws_with<IndexError>([&] { embedding(w, from_vector<int64_t>({0, 11})); }, {"11"}));
  EXPECT_THROW(embedding(w, from_vector<float>({0, 1})), DTypeError);
  EXPECT_THROW(embedding(randn({11}), idx), ShapeError);
}

TEST(Index, IndexSelectAnyDim) {
  manual_seed(41);
  const Shape shape{4, 5, 3};
  Tensor x = randn({3, 5, 4}).permute({2, 1, 0});
  const auto xv = values(x);
  for (int64_t dim : {0, 1, 2, -1}) {
    const int64_t d = dim < 0 ? dim + 3 : dim;
    const int64_t n = shape[static_cast<size_t>(d)];
    Tensor idx = from_vector<int64_t>({n - 1, 0, 0, -1, 1});  // repeats and a negative (wraps)
    Tensor y = index_select(x, dim, idx);
    Shape ys = shape;
    ys[static_cast<size_t>(d)] = 5;
    ASSERT_EQ(y.shape(), ys);
    const std::vector<int64_t> pick{n - 1, 0, 0, n - 1, 1};
    const auto yv = values(y);
    for (int64_t i = 0; i < y.numel(); ++i) {
      auto yi = unravel(i, ys);
      yi[static_cast<size_t>(d)] = pick[static_cast<size_t>(yi[static_cast<size_t>(d)])];
      ASSERT_EQ(yv[static_cast<size_t>(i)], xv[static_cast<size_t>(ravel(yi, shape))]) << dim;
    }
  }
  EXPECT_TRUE(throws_with<IndexError>([&] { index_select(x, 0, from_vector<int64_t>({4})); },
                                      {"index_select", "index 4", "size 4"}));
  EXPECT_THROW(index_select(x, 0, from_vector<int64_t>({-5})), IndexError);
  EXPECT_THROW(index_select(x, 3, from_vector<int64_t>({0})), IndexError);
  EXPECT_THROW(index_select(x, 0, from_vector<int64_t>({0, 1}, {1, 2})), ShapeError);
  EXPECT_EQ(index_select(x, 1, from_vector<int64_t>(std::vector<int64_t>{}, {0})).shape(), (Shape{4, 0, 3}));
}

TEST(Index, GatherAnyDim) {
  manual_seed(42);
  const Shape shape{3, 6, 4};
  Tensor x = randn({4, 6, 3}, DType::f64).permute({2, 1, 0});
  const auto xv = values(x);
  for (int64_t dim : {0, 1, 2, -2}) {
    const int64_t d = dim < 0 ? dim + 3 : dim;
    Shape is = shape;
    is[static_cast<size_t>(d)] = 5;  // gather more than the dim has: repeats
    Tensor idx = randint(0, shape[static_cast<size_t>(d)], is);
    Tensor y = gather(x, dim, idx);
    ASSERT_EQ(y.shape(), is);
    const auto iv = idx.to_vector<int64_t>();
    const auto yv = values(y);
    for (int64_t i = 0; i < y.numel(); ++i) {
      auto xi = unravel(i, is);
      xi[static_cast<size_t>(d)] = iv[static_cast<size_t>(i)];
      ASSERT_EQ(yv[static_cast<size_t>(i)], xv[static_cast<size_t>(ravel(xi, shape))]);
    }
  }
  EXPECT_THROW(gather(x, 1, from_vector<int64_t>({6, 0, 0}, {3, 1, 1}).expand({3, 1, 4})), IndexError);
  EXPECT_TRUE(throws_with<ShapeError>([&] { gather(x, 1, zeros({3, 2}, DType::i64)); }, {"gather", "[3, 2]", "[3, 6, 4]"}));
  EXPECT_THROW(gather(x, 1, zeros({2, 2, 4}, DType::i64)), ShapeError);
}
