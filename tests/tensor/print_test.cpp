// str() / operator<<: values, shape, dtype, device, abbreviation of big tensors.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "autograd/ops.h"

using namespace graft;

namespace {
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST(Print, SmallTensorShowsEverything) {
  std::string s = from_vector<float>({1.5f, -2.0f, 0.25f, 4.0f}, {2, 2}).str();
  EXPECT_TRUE(has(s, "1.5000")) << s;
  EXPECT_TRUE(has(s, "-2.0000")) << s;
  EXPECT_TRUE(has(s, "0.2500")) << s;
  EXPECT_TRUE(has(s, "shape=[2, 2]")) << s;
  EXPECT_TRUE(has(s, "dtype=f32")) << s;
  EXPECT_TRUE(has(s, "device=cpu")) << s;
  EXPECT_FALSE(has(s, "...")) << s;
  std::ostringstream os;
  os << from_vector<float>({1.5f, -2.0f, 0.25f, 4.0f}, {2, 2});
  EXPECT_EQ(os.str(), s);
}

TEST(Print, DtypesAndSpecialValues) {
  std::string i = from_vector<int64_t>({3, -7}).str();
  EXPECT_TRUE(has(i, "-7")) << i;
  EXPECT_FALSE(has(i, "-7.0")) << i;
  EXPECT_TRUE(has(i, "dtype=i64")) << i;
  EXPECT_TRUE(has(from_vector<bool>({true, false}).str(), "dtype=bool"));
  EXPECT_TRUE(has(ones({2}, DType::bf16).str(), "dtype=bf16"));
  EXPECT_TRUE(has(ones({2}, DType::f64).str(), "dtype=f64"));
  std::string sp = from_vector<float>({NAN, INFINITY, -INFINITY}).str();
  EXPECT_TRUE(has(sp, "nan")) << sp;
  EXPECT_TRUE(has(sp, "inf")) << sp;
  EXPECT_TRUE(has(sp, "-inf")) << sp;
  std::string sci = from_vector<float>({1e6f, 1.0f}).str();
  EXPECT_TRUE(has(sci, "e+06")) << sci;
  std::string scalar = scalar_tensor(2.0).str();
  EXPECT_TRUE(has(scalar, "2.0000")) << scalar;
  EXPECT_TRUE(has(scalar, "shape=[]")) << scalar;
  EXPECT_TRUE(has(ones({2}, TensorOptions().with_requires_grad()).str(), "requires_grad"));
  EXPECT_EQ(Tensor().str(), "tensor(undefined)");
  // A non-contiguous view prints its own (logical) order.
  std::string t = from_vector<float>({1, 2, 3, 4}, {2, 2}).t().str();
  EXPECT_TRUE(has(t, "[[1.0000, 3.0000],")) << t;
}

TEST(Print, BigTensorsAreAbbreviated) {
  Tensor big = arange(0, 2500, 1).reshape({50, 50});
  std::string s = big.str();
  EXPECT_TRUE(has(s, "...")) << s;
  EXPECT_TRUE(has(s, "shape=[50, 50]")) << s;
  EXPECT_TRUE(has(s, "2499.0000")) << s;  // the last element is shown
  EXPECT_TRUE(has(s, "[0.0000, 1.0000, 2.0000, ..., 47.0000")) << s;
  EXPECT_FALSE(has(s, "1000.0000")) << s;  // the middle is not
  EXPECT_LT(s.size(), 1000u);
  std::string small = arange(0, 1000, 1).str();  // at the threshold: printed in full
  EXPECT_FALSE(has(small, "...")) << small.substr(0, 200);
}
