// Bad input gets a typed graft::Error whose message names the op and what it was given.
#include <gtest/gtest.h>

#include "autograd/ops.h"

using namespace graft;

namespace {
template <class E, class F>
void expect_error(F f, std::initializer_list<const char*> fragments) {
  try {
    f();
    FAIL() << "expected an exception";
  } catch (const E& e) {
    for (const char* s : fragments) EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(Errors, MismatchedShapesNameOpAndShapes) {
  expect_error<ShapeError>([] { add(ones({2, 3}), ones({4})); }, {"add", "[2, 3]", "[4]"});
  expect_error<ShapeError>([] { matmul(ones({2, 3}), ones({4, 5})); }, {"matmul", "[2, 3]", "[4, 5]"});
  expect_error<ShapeError>([] { cat({ones({2, 3}), ones({3, 3})}, 1); }, {"cat", "[3, 3]"});
  expect_error<ShapeError>([] { ones({6}).reshape({4, -1}); }, {"[4, -1]", "6"});
}

TEST(Errors, MismatchedDtypesAndDevices) {
  expect_error<DTypeError>([] { mul(ones({2}), ones({2}, DType::f64)); }, {"mul", "f32", "f64"});
  expect_error<DTypeError>([] { exp(ones({2}, DType::i64)); }, {"exp", "i64"});
  expect_error<DTypeError>([] { ones({2}, DType::bf16).to(DType::f32) + ones({2}, DType::bf16); }, {"add"});
  expect_error<DeviceError>([] { ones({2}).to(Device::cuda(7)); }, {"cuda:7"});
}

TEST(Errors, IndexAndValueErrors) {
  expect_error<IndexError>([] { sum(ones({2, 3}), {2}); }, {"sum", "dim 2"});
  expect_error<IndexError>([] { embedding(ones({4, 2}), from_vector<int64_t>({0, 4})); }, {"index 4", "size 4"});
  expect_error<IndexError>([] { cross_entropy(ones({2, 3}), from_vector<int64_t>({0, 3})); }, {"cross_entropy", "3"});
  expect_error<ValueError>([] { dropout(ones({2}), 1.5); }, {"dropout"});
  expect_error<ShapeError>([] { ones({2}).item(); }, {"item"});
}

TEST(Printing, ShowsValuesShapeDtypeAndAbbreviates) {
  std::string small = from_vector<float>({1.5f, -2.0f}, {1, 2}).str();
  EXPECT_NE(small.find("1.5000"), std::string::npos) << small;
  EXPECT_NE(small.find("shape=[1, 2]"), std::string::npos) << small;
  EXPECT_NE(small.find("dtype=f32"), std::string::npos) << small;
  EXPECT_NE(small.find("device=cpu"), std::string::npos) << small;
  std::string big = zeros({50, 50}).str();
  EXPECT_NE(big.find("..."), std::string::npos);
  EXPECT_LT(big.size(), 1000u);
}
