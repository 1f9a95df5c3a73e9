// Factories: zeros/ones/full/arange/linspace/eye/*_like, from_vector (copies) and from_blob (no copy).
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/ops.h"
#include "reference.h"

using namespace graft;
using namespace graft::testing;

TEST(Creation, FilledTensors) {
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::boolean}) {
    Tensor z = zeros({2, 3}, dt), o = ones({3, 1, 2}, dt);
    EXPECT_EQ(z.dtype(), dt);
    EXPECT_EQ(z.shape(), (Shape{2, 3}));
    EXPECT_TRUE(z.is_contiguous());
    EXPECT_EQ(values(z), std::vector<double>(6, 0.0)) << dtype_name(dt);
    EXPECT_EQ(values(o), std::vector<double>(6, 1.0)) << dtype_name(dt);
    EXPECT_EQ(z.device(), Device::cpu());
  }
  EXPECT_EQ(values(full({4}, -2.5)), std::vector<double>(4, -2.5));
  EXPECT_EQ(full({2}, 7.9, DType::i64).to_vector<int64_t>(), (std::vector<int64_t>{7, 7}));
  Tensor s = scalar_tensor(3.5, DType::f64);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item(), 3.5);
  EXPECT_EQ(zeros({0, 5}).numel(), 0);
  EXPECT_EQ(zeros({}).numel(), 1);
  EXPECT_THROW(zeros({2, -1}), ShapeError);
  Tensor base = randn({2, 5}, DType::f64);
  EXPECT_EQ(zeros_like(base).dtype(), DType::f64);
  EXPECT_EQ(ones_like(base).shape(), base.shape());
  EXPECT_EQ(values(full_like(base, 4)), std::vector<double>(10, 4.0));
  EXPECT_EQ(empty_like(base).shape(), base.shape());
  EXPECT_TRUE(ones({2}, TensorOptions().with_requires_grad()).requires_grad());
}

TEST(Creation, ArangeLinspaceEye) {
  EXPECT_EQ(values(arange(0, 5, 1)), (std::vector<double>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(0, 5, 1).dtype(), DType::f32);
  EXPECT_EQ(arange(5).dtype(), DType::i64);
  EXPECT_EQ(arange(5).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(values(arange(1, 2, 0.25, DType::f64)), (std::vector<double>{1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(values(arange(3, -3, -2)), (std::vector<double>{3, 1, -1}));
  EXPECT_EQ(arange(0, 1, 0.1, DType::f64).numel(), 10);  // as torch: end excluded
  EXPECT_EQ(arange(5, 5, 1).numel(), 0);
  EXPECT_EQ(arange(5, 0, 1).numel(), 0);
  EXPECT_THROW(arange(0, 5, 0), ValueError);

  auto l = values(linspace(-1, 1, 5, DType::f64));
  EXPECT_EQ(l, (std::vector<double>{-1, -0.5, 0, 0.5, 1}));
  auto l7 = values(linspace(0, 1, 7, DType::f64));
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(l7[static_cast<size_t>(i)], i / 6.0, 1e-15);
  EXPECT_EQ(values(linspace(3, 9, 1)), (std::vector<double>{3}));
  EXPECT_EQ(linspace(3, 9, 0).numel(), 0);
  EXPECT_THROW(linspace(0, 1, -1), ValueError);

  Tensor e = eye(4, DType::i32);
  EXPECT_EQ(e.dtype(), DType::i32);
  EXPECT_EQ(e.shape(), (Shape{4, 4}));
  auto ev = values(e);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) EXPECT_EQ(ev[static_cast<size_t>(i * 4 + j)], i == j ? 1.0 : 0.0);
  EXPECT_EQ(eye(0).numel(), 0);
  manual_seed(60);
  Tensor m = randn({4, 4});
  EXPECT_TRUE(all_close(values(matmul(m, eye(4))), values(m)));
}

TEST(Creation, FromVectorCopies) {
  std::vector<float> v{1, 2, 3, 4, 5, 6};
  Tensor t = from_vector(v, {2, 3});
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.dtype(), DType::f32);
  v[0] = 100;
  EXPECT_EQ(values(t)[0], 1);  // a copy
  EXPECT_NE(t.data_ptr(), static_cast<void*>(v.data()));
  EXPECT_EQ(from_vector(v).shape(), (Shape{6}));  // default 1-D
  EXPECT_EQ(from_vector<double>({2.5}).dim(), 0);  // a single value gives a 0-d tensor
  EXPECT_EQ(from_vector<double>({2.5}, {1}).shape(), (Shape{1}));
  EXPECT_EQ(from_vector<int32_t>({1, 2}).dtype(), DType::i32);
  EXPECT_EQ(from_vector<int64_t>({1, 2}, {}, DType::f32).dtype(), DType::f32);  // converted
  EXPECT_EQ(from_vector<bool>({true, false}).dtype(), DType::boolean);
  EXPECT_EQ(from_vector<bool>({true, false}).to_vector<bool>(), (std::vector<bool>{true, false}));
  EXPECT_TRUE(throws_with<ShapeError>([] { from_vector<float>({1, 2, 3}, {2, 2}); }, {"from_vector", "[2, 2]"}));
}

TEST(Creation, FromBlobSharesMemory) {
  std::vector<double> buf{1, 2, 3, 4, 5, 6};
  Tensor t = from_blob(buf.data(), {3, 2}, DType::f64);
  EXPECT_EQ(t.data_ptr(), static_cast<void*>(buf.data()));
  EXPECT_EQ(values(t), buf);
  buf[5] = -6;  // caller's writes are visible
  EXPECT_EQ(values(t)[5], -6);
  t.narrow(0, 0, 1).fill_(9);  // and graft's writes reach the caller
  EXPECT_EQ(buf[0], 9);
  EXPECT_EQ(buf[1], 9);
  EXPECT_EQ(t.t().data_ptr(), static_cast<void*>(buf.data()));

  int deleted = 0;
  {
    auto* owned = new float[4]{1, 2, 3, 4};
    Tensor o = from_blob(owned, {4}, DType::f32, [&deleted](void* p) {
      delete[] static_cast<float*>(p);
      ++deleted;
    });
    Tensor view = o.narrow(0, 1, 2);
    o = Tensor();
    EXPECT_EQ(deleted, 0);  // the view keeps the storage alive
    EXPECT_EQ(values(view), (std::vector<double>{2, 3}));
  }
  EXPECT_EQ(deleted, 1);
  EXPECT_THROW(from_blob(nullptr, {2}, DType::f32), ValueError);
}

TEST(Storage, FreedLargeCpuBlocksAreReusedNotRefaulted) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the block cache is off under AddressSanitizer, so that reuse never hides a use-after-free";
#else
  // A freed block of >= 1 MiB waits for the next request of its size (tensor/storage.cpp): the
  // same memory comes back, already paged in. Small blocks go straight back to malloc.
  const void* first = nullptr;
  {
    Tensor big = empty({1 << 19}, DType::f32);  // 2 MiB
    first = big.data_ptr();
    big.fill_(1.0);
  }
  Tensor again = empty({1 << 19}, DType::f32);
  EXPECT_EQ(again.data_ptr(), first);
  Tensor other_size = empty({(1 << 19) + 16}, DType::f32);
  EXPECT_NE(other_size.data_ptr(), first);
#endif
}
