// Views share storage (data_ptr relations) and read the right elements; non-viewable requests
// throw; contiguous() copies only when needed.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "reference.h"

using namespace graft;
using namespace graft::testing;

namespace {
Tensor iota(const Shape& shape, DType dtype = DType::f32) {
  return arange(0, static_cast<double>(shape_numel(shape)), 1, dtype).reshape(shape);
}
const char* base(const Tensor& t) { return static_cast<const char*>(t.impl()->storage->data()); }
const char* ptr(const Tensor& t) { return static_cast<const char*>(t.data_ptr()); }
}  // namespace

TEST(Views, ReshapeAndViewShareStorage) {
  Tensor x = iota({2, 3, 4});
  Tensor r = x.reshape({4, -1});
  EXPECT_EQ(r.shape(), (Shape{4, 6}));
  EXPECT_EQ(ptr(r), ptr(x));
  EXPECT_EQ(r.impl()->storage, x.impl()->storage);
  Tensor v = x.view({24});
  EXPECT_EQ(ptr(v), ptr(x));
  EXPECT_EQ(values(v), values(x));
  // Writes through a view are visible in the base.
  v.narrow(0, 5, 1).fill_(-1);
  EXPECT_EQ(x.select(0, 0).select(0, 1).select(0, 1).item(), -1);
}

TEST(Views, PermuteTransposeReadTheRightElements) {
  const Shape s{3, 4, 5};
  Tensor x = iota(s, DType::f64);
  Tensor p = x.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{5, 3, 4}));
  EXPECT_EQ(ptr(p), ptr(x));
  EXPECT_FALSE(p.is_contiguous());
  auto pv = values(p);
  for (int64_t i = 0; i < p.numel(); ++i) {
    auto idx = unravel(i, p.shape());  // [k, i, j] -> x[i, j, k]
    ASSERT_EQ(pv[static_cast<size_t>(i)], static_cast<double>(ravel({idx[1], idx[2], idx[0]}, s)));
  }
  Tensor t = x.transpose(0, -1);
  EXPECT_EQ(t.shape(), (Shape{5, 4, 3}));
  auto tv = values(t);
  for (int64_t i = 0; i < t.numel(); ++i) {
    auto idx = unravel(i, t.shape());
    ASSERT_EQ(tv[static_cast<size_t>(i)], static_cast<double>(ravel({idx[2], idx[1], idx[0]}, s)));
  }
  Tensor m = iota({3, 7});
  EXPECT_EQ(m.t().shape(), (Shape{7, 3}));
  EXPECT_EQ(m.t().strides(), (Shape{1, 7}));
  EXPECT_EQ(values(m.t().t()), values(m));
}

TEST(Views, NarrowSliceSelectOffsets) {
  Tensor x = iota({5, 7});
  Tensor n = x.narrow(1, 2, 3);
  EXPECT_EQ(n.shape(), (Shape{5, 3}));
  EXPECT_EQ(ptr(n), ptr(x) + 2 * sizeof(float));
  EXPECT_EQ(values(n.select(0, 1)), (std::vector<double>{9, 10, 11}));
  Tensor neg = x.narrow(-1, -2, 2);  // negative dim and start
  EXPECT_EQ(values(neg.select(0, 0)), (std::vector<double>{5, 6}));

  Tensor s = x.slice(1, 1, 7, 3);  // columns 1, 4
  EXPECT_EQ(s.shape(), (Shape{5, 2}));
  EXPECT_EQ(s.strides(), (Shape{7, 3}));
  EXPECT_EQ(ptr(s), ptr(x) + sizeof(float));
  EXPECT_EQ(values(s.select(0, 2)), (std::vector<double>{15, 18}));
  Tensor s2 = x.slice(0, -3, 100, 2);  // python semantics: rows 2, 4
  EXPECT_EQ(values(s2.select(1, 0)), (std::vector<double>{14, 28}));
  EXPECT_EQ(x.slice(0, 4, 2).numel(), 0);  // empty, not an error
  // slice of a slice: every second of every second
  Tensor ss = iota({20}).slice(0, 1, 20, 2).slice(0, 0, 10, 3);
  EXPECT_EQ(values(ss), (std::vector<double>{1, 7, 13, 19}));

  Tensor sel = x.select(1, -1);
  EXPECT_EQ(sel.shape(), (Shape{5}));
  EXPECT_EQ(ptr(sel), ptr(x) + 6 * sizeof(float));
  EXPECT_EQ(values(sel), (std::vector<double>{6, 13, 20, 27, 34}));
  EXPECT_THROW(x.select(0, 5), IndexError);
  EXPECT_THROW(x.narrow(1, 5, 3), IndexError);
  EXPECT_THROW(x.slice(0, 0, 5, 0), ValueError);
}

TEST(Views, ExpandSqueezeUnsqueezeFlatten) {
  Tensor x = iota({3, 1});
  Tensor e = x.expand({2, 3, 4});
  EXPECT_EQ(e.strides(), (Shape{0, 1, 0}));
  EXPECT_EQ(ptr(e), ptr(x));
  auto ev = values(e);
  for (int64_t i = 0; i < e.numel(); ++i) ASSERT_EQ(ev[static_cast<size_t>(i)], unravel(i, e.shape())[1]);
  EXPECT_EQ(x.expand({-1, 5}).shape(), (Shape{3, 5}));
  EXPECT_THROW(x.expand({4, 1}), ShapeError);

  Tensor y = iota({1, 3, 1, 2});
  EXPECT_EQ(y.squeeze().shape(), (Shape{3, 2}));
  EXPECT_EQ(y.squeeze(2).shape(), (Shape{1, 3, 2}));
  EXPECT_EQ(y.squeeze(1).shape(), y.shape());  // size 3: a no-op, as in PyTorch
  EXPECT_EQ(y.squeeze(-2).shape(), (Shape{1, 3, 2}));
  EXPECT_EQ(ptr(y.squeeze()), ptr(y));
  EXPECT_EQ(values(y.squeeze()), values(y));

  Tensor z = iota({3, 4}).t();  // non-contiguous
  for (int64_t d : {0, 1, 2, -1, -3}) {
    Tensor u = z.unsqueeze(d);
    EXPECT_EQ(u.dim(), 3);
    EXPECT_EQ(ptr(u), ptr(z));
    EXPECT_EQ(values(u), values(z)) << d;
  }
  EXPECT_EQ(z.unsqueeze(-1).shape(), (Shape{4, 3, 1}));
  EXPECT_EQ(z.unsqueeze(1).shape(), (Shape{4, 1, 3}));

  Tensor f = iota({2, 3, 4, 5});
  EXPECT_EQ(f.flatten().shape(), (Shape{120}));
  EXPECT_EQ(f.flatten(1, 2).shape(), (Shape{2, 12, 5}));
  EXPECT_EQ(f.flatten(-2).shape(), (Shape{2, 3, 20}));
  EXPECT_EQ(ptr(f.flatten(1, 2)), ptr(f));
  Tensor ft = f.transpose(1, 2).flatten(1, 2);  // not viewable: a copy with the same values
  EXPECT_EQ(values(ft), values(f.transpose(1, 2).contiguous().reshape({2, 12, 5})));
}

TEST(Views, ViewOnNonViewableThrowsReshapeCopies) {
  Tensor x = iota({4, 6});
  Tensor t = x.t();
  EXPECT_THROW(t.view({24}), ShapeError);
  EXPECT_TRUE(throws_with<ShapeError>([&] { t.view({24}); }, {"view", "[24]", "[6, 4]"}));
  Tensor r = t.reshape({24});
  EXPECT_NE(r.impl()->storage, x.impl()->storage);  // copied
  EXPECT_EQ(values(r), values(t.contiguous()));
  // A non-contiguous tensor can still be viewed where its strides allow it.
  Tensor n = iota({4, 6, 5}).narrow(1, 1, 4);  // [4, 4, 5], rows of 5 contiguous
  Tensor nv = n.view({4, 2, 2, 5});
  EXPECT_EQ(ptr(nv), ptr(n));
  EXPECT_EQ(values(nv), values(n));
  EXPECT_THROW(n.view({80}), ShapeError);
  EXPECT_THROW(x.view({5, -1}), ShapeError);
  EXPECT_THROW(x.view({-1, -1}), ShapeError);
}

TEST(Views, ContiguousCopiesOnlyWhenNeeded) {
  Tensor x = iota({5, 3});
  EXPECT_EQ(ptr(x.contiguous()), ptr(x));
  Tensor t = x.t();
  Tensor c = t.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_NE(base(c), base(x));
  EXPECT_EQ(values(c), values(t));
  EXPECT_EQ(c.strides(), (Shape{5, 1}));
  // Expanded and sliced tensors materialise correctly.
  Tensor e = iota({3}).expand({2, 3}).contiguous();
  EXPECT_EQ(values(e), (std::vector<double>{0, 1, 2, 0, 1, 2}));
  Tensor cl = x.clone();
  EXPECT_NE(base(cl), base(x));
  cl.fill_(7);
  EXPECT_EQ(x.select(0, 0).select(0, 0).item(), 0);
}

TEST(Views, EmptyTensorsAreContiguous) {
  // As in PyTorch, a tensor with no elements is contiguous whatever its shape.
  EXPECT_TRUE(zeros({0, 3}).is_contiguous());
  EXPECT_TRUE(zeros({2, 0}).is_contiguous());
  EXPECT_TRUE(zeros({2, 0, 3}).is_contiguous());
  EXPECT_NO_THROW(EXPECT_EQ(zeros({2, 0}).view({0, 5}).shape(), (Shape{0, 5})));
  EXPECT_NO_THROW(EXPECT_EQ(zeros({2, 0}).reshape({0, 5}).shape(), (Shape{0, 5})));
  EXPECT_TRUE(zeros({2, 0}).reshape({0, 5}).defined());
}

TEST(Views, CopyIntoAViewWritesTheBase) {
  Tensor x = zeros({3, 4});
  x.t().narrow(0, 1, 2).copy_(from_vector<float>({1, 2, 3}, {1, 3}));  // broadcast into columns 1..2
  EXPECT_EQ(values(x), (std::vector<double>{0, 1, 1, 0, 0, 2, 2, 0, 0, 3, 3, 0}));
  EXPECT_THROW(x.copy_(ones({2})), ShapeError);
}
