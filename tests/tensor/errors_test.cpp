// Bad input gets a typed graft::Error whose message names the op and what it was given (both
// shapes, both dtypes, both devices).
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "reference.h"

using namespace graft;
using graft::testing::throws_with;

TEST(Errors, AllAreGraftErrors) {
  EXPECT_THROW(add(ones({2, 3}), ones({4})), Error);
  EXPECT_THROW(add(ones({2, 3}), ones({4})), std::runtime_error);
  EXPECT_THROW(Tensor().shape(), ValueError);  // undefined tensor
}

TEST(Errors, MismatchedShapesNameOpAndBothShapes) {
  EXPECT_TRUE(throws_with<ShapeError>([] { add(ones({2, 3}), ones({4})); }, {"add", "[2, 3]", "[4]"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { sub(ones({5, 1, 3}), ones({2, 4})); }, {"sub", "[5, 1, 3]", "[2, 4]"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { mul(ones({3}), ones({2, 2})); }, {"mul", "[3]", "[2, 2]"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { div(ones({3}), ones({2})); }, {"div", "[3]", "[2]"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { maximum(ones({3}), ones({2})); }, {"maximum", "[3]", "[2]"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { lt(ones({3}), ones({2})); }, {"lt", "[3]", "[2]"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { where(ones({3}, DType::boolean), ones({3}), ones({2})); },
                                      {"where", "[3]", "[2]"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { matmul(ones({2, 3}), ones({4, 5})); }, {"matmul", "[2, 3]", "[4, 5]"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { matmul(ones({7}), ones({4, 5})); }, {"matmul", "[7]", "[4, 5]"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { cat({ones({2, 3}), ones({3, 3})}, 1); }, {"cat", "[3, 3]", "[2, 3]"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { ones({6}).reshape({4, -1}); }, {"[4, -1]", "6"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { ones({2, 3}).expand({4, 3, 2}); }, {"expand", "[2, 3]", "[4, 3, 2]"}));
  EXPECT_TRUE(throws_with<ShapeError>([] { ones({2}).item(); }, {"item", "[2]"}));
}

TEST(Errors, MismatchedDtypesNameBoth) {
  EXPECT_TRUE(throws_with<DTypeError>([] { add(ones({2}), ones({2}, DType::f64)); }, {"add", "f32", "f64"}));
  EXPECT_TRUE(throws_with<DTypeError>([] { mul(ones({2}), ones({2}, DType::f64)); }, {"mul", "f32", "f64"}));
  EXPECT_TRUE(throws_with<DTypeError>([] { ones({2}, DType::i32) + ones({2}, DType::i64); }, {"add", "i32", "i64"}));
  EXPECT_TRUE(throws_with<DTypeError>([] { eq(ones({2}, DType::bf16), ones({2})); }, {"eq", "bf16", "f32"}));
  EXPECT_TRUE(throws_with<DTypeError>([] { where(ones({2}, DType::boolean), ones({2}), ones({2}, DType::f16)); },
                                      {"where", "f32", "f16"}));
  EXPECT_TRUE(throws_with<DTypeError>([] { exp(ones({2}, DType::i64)); }, {"exp", "i64"}));
  EXPECT_TRUE(throws_with<DTypeError>([] { ones({2}).data_ptr<int32_t>(); }, {"f32", "i32"}));
}

TEST(Errors, DevicesAreCheckedAndNamed) {
  // Without a GPU (or without CUDA in the build), moving to cuda is a DeviceError naming it.
  if (!cuda_is_available()) {
    EXPECT_TRUE(throws_with<DeviceError>([] { ones({2}).to(Device::cuda(0)); }, {"cuda:0"}));
  }
  EXPECT_TRUE(throws_with<DeviceError>([] { ones({2}).to(Device::cuda(7)); }, {"cuda:7"}));
  EXPECT_TRUE(throws_with<DeviceError>([] { zeros({2}, Device::cuda(cuda_device_count())); }, {"cuda"}));
}

TEST(Errors, IndexErrors) {
  EXPECT_TRUE(throws_with<IndexError>([] { sum(ones({2, 3}), {2}); }, {"sum", "dim 2"}));
  EXPECT_TRUE(throws_with<IndexError>([] { ones({2, 3}).select(1, 3); }, {"select", "3", "[2, 3]"}));
  EXPECT_TRUE(throws_with<IndexError>([] { ones({2, 3}).narrow(0, 1, 2); }, {"narrow", "[2, 3]"}));
  EXPECT_TRUE(throws_with<IndexError>([] { ones({2, 3}).permute({0, 0}); }, {"permute"}));
  EXPECT_TRUE(throws_with<IndexError>([] { ones({2, 3}).transpose(0, 2); }, {"transpose", "2"}));
  EXPECT_TRUE(throws_with<IndexError>([] { ones({2, 3}).size(2); }, {"size", "2"}));
  EXPECT_TRUE(throws_with<IndexError>([] { softmax(ones({2, 3}), -3); }, {"softmax", "-3"}));
  EXPECT_TRUE(throws_with<IndexError>([] { index_select(ones({4, 2}), 0, from_vector<int64_t>({0, 4})); },
                                      {"index_select", "index 4", "size 4"}));
  EXPECT_TRUE(throws_with<IndexError>([] { cross_entropy(ones({2, 3}), from_vector<int64_t>({0, 3})); },
                                      {"cross_entropy", "3"}));
}

TEST(Errors, EmbeddingOutOfRangeNamesTheOp) {
  EXPECT_TRUE(throws_with<IndexError>([] { embedding(ones({4, 2}), from_vector<int64_t>({0, 4})); },
                                      {"embedding", "index 4", "size 4"}));
}

TEST(Errors, ValueErrors) {
  EXPECT_TRUE(throws_with<ValueError>([] { dropout(ones({2}), 1.5); }, {"dropout", "1.5"}));
  EXPECT_TRUE(throws_with<ValueError>([] { ones({4}).slice(0, 0, 4, -1); }, {"slice", "-1"}));
  EXPECT_TRUE(throws_with<ValueError>([] { split(ones({4}), 0); }, {"split"}));
  EXPECT_TRUE(throws_with<ValueError>([] { randint(5, 1, {2}); }, {"randint"}));
}
