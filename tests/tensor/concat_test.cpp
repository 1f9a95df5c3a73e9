// cat, stack, split and chunk: values, shapes, views sharing storage, and shape errors.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "reference.h"

using namespace graft;
using namespace graft::testing;

TEST(Concat, CatAnyDimNonContiguousInputs) {
  manual_seed(50);
  Tensor a = randn({3, 4}), b = randn({5, 3}).t(), c = randn({3, 1});  // b: [3, 5] non-contiguous
  Tensor y = cat({a, b, c}, 1);
  ASSERT_EQ(y.shape(), (Shape{3, 10}));
  const auto av = values(a), bv = values(b), cv = values(c), yv = values(y);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 10; ++j) {
      const double want = j < 4 ? av[static_cast<size_t>(i * 4 + j)]
                          : j < 9 ? bv[static_cast<size_t>(i * 5 + j - 4)]
                                  : cv[static_cast<size_t>(i)];
      ASSERT_EQ(yv[static_cast<size_t>(i * 10 + j)], want);
    }
  Tensor z = cat({a, a.narrow(0, 1, 2)}, -2);
  EXPECT_EQ(z.shape(), (Shape{5, 4}));
  std::vector<double> zw = av;
  zw.insert(zw.end(), av.begin() + 4, av.end());
  EXPECT_EQ(values(z), zw);
  EXPECT_EQ(values(cat({a}, 0)), av);
  EXPECT_EQ(cat({a, zeros({0, 4})}, 0).shape(), (Shape{3, 4}));
  Tensor i = cat({from_vector<int64_t>({1, 2}), from_vector<int64_t>({3}, {1})});
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(throws_with<ShapeError>([&] { cat({a, randn({2, 3})}, 0); }, {"cat", "[2, 3]", "[3, 4]"}));
  EXPECT_THROW(cat({a, a.to(DType::f64)}, 0), DTypeError);
  EXPECT_THROW(cat({}, 0), ValueError);
  EXPECT_THROW(cat({a, a}, 2), IndexError);
}

TEST(Concat, StackInsertsANewDim) {
  manual_seed(51);
  Tensor a = randn({2, 3}), b = randn({3, 2}).t();
  for (int64_t dim : {0, 1, 2, -1}) {
    Tensor s = stack({a, b}, dim);
    const int64_t d = dim < 0 ? dim + 3 : dim;
    Shape want{2, 3};
    want.insert(want.begin() + d, 2);
    ASSERT_EQ(s.shape(), want);
    EXPECT_EQ(values(s.select(d, 0)), values(a));
    EXPECT_EQ(values(s.select(d, 1)), values(b));
  }
  EXPECT_TRUE(throws_with<ShapeError>([&] { stack({a, randn({3, 2})}); }, {"stack", "[3, 2]", "[2, 3]"}));
}

TEST(Concat, SplitAndChunkAreViews) {
  Tensor x = arange(0, 35, 1).reshape({5, 7});
  auto parts = split(x, 3, 1);  // 3, 3, 1
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].shape(), (Shape{5, 3}));
  EXPECT_EQ(parts[2].shape(), (Shape{5, 1}));
  EXPECT_EQ(parts[1].impl()->storage, x.impl()->storage);
  EXPECT_EQ(static_cast<char*>(parts[1].data_ptr()), static_cast<char*>(x.data_ptr()) + 3 * sizeof(float));
  EXPECT_EQ(values(parts[2]), (std::vector<double>{6, 13, 20, 27, 34}));
  EXPECT_EQ(values(cat(parts, 1)), values(x));

  auto sized = split(x, std::vector<int64_t>{1, 0, 4}, 0);
  ASSERT_EQ(sized.size(), 3u);
  EXPECT_EQ(sized[1].shape(), (Shape{0, 7}));
  EXPECT_EQ(sized[2].shape(), (Shape{4, 7}));
  EXPECT_EQ(values(sized[0]), (std::vector<double>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_TRUE(throws_with<ShapeError>([&] { split(x, std::vector<int64_t>{2, 2}, 0); }, {"split", "[5, 7]"}));
  EXPECT_THROW(split(x, 0, 0), ValueError);

  auto ch = chunk(x, 3, -1);  // ceil(7/3) = 3 -> 3, 3, 1 (torch semantics)
  ASSERT_EQ(ch.size(), 3u);
  EXPECT_EQ(ch[0].shape(), (Shape{5, 3}));
  EXPECT_EQ(ch[2].shape(), (Shape{5, 1}));
  auto ch2 = chunk(x, 2, 0);  // 3, 2
  ASSERT_EQ(ch2.size(), 2u);
  EXPECT_EQ(ch2[1].shape(), (Shape{2, 7}));
  EXPECT_EQ(values(ch2[1]).front(), 21);
  EXPECT_EQ(chunk(x, 10, 0).size(), 5u);
  EXPECT_THROW(chunk(x, 0, 0), ValueError);
}
