// Integer arithmetic, casts between every dtype, and bf16/f16 storage round trips.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "autograd/ops.h"
#include "reference.h"

using namespace graft;
using namespace graft::testing;

TEST(DType, NamesSizesAndKinds) {
  EXPECT_STREQ(dtype_name(DType::f32), "f32");
  EXPECT_STREQ(dtype_name(DType::bf16), "bf16");
  EXPECT_STREQ(dtype_name(DType::boolean), "bool");
  EXPECT_EQ(dtype_size(DType::f64), 8u);
  EXPECT_EQ(dtype_size(DType::f16), 2u);
  EXPECT_EQ(dtype_size(DType::i32), 4u);
  EXPECT_EQ(dtype_size(DType::boolean), 1u);
  EXPECT_TRUE(is_floating(DType::bf16));
  EXPECT_FALSE(is_floating(DType::i64));
  EXPECT_TRUE(is_integral(DType::i32));
  EXPECT_FALSE(is_integral(DType::boolean));
}

TEST(DType, IntegerArithmeticIsExact) {
  for (DType dt : {DType::i32, DType::i64}) {
    manual_seed(10);
    Tensor a = randint(-1000, 1000, {7, 9}, dt).t();
    Tensor b = randint(1, 50, {7}, dt);
    ASSERT_EQ(a.dtype(), dt);
    const auto av = a.to_vector<int64_t>(), bv = b.to_vector<int64_t>();
    auto ref = [&](std::function<int64_t(int64_t, int64_t)> f) {
      std::vector<int64_t> out;
      for (int i = 0; i < 9; ++i)
        for (int j = 0; j < 7; ++j) out.push_back(f(av[static_cast<size_t>(i * 7 + j)], bv[static_cast<size_t>(j)]));
      return out;
    };
    Tensor s = add(a, b);
    EXPECT_EQ(s.dtype(), dt);
    EXPECT_EQ(s.to_vector<int64_t>(), ref(std::plus<int64_t>()));
    EXPECT_EQ(sub(a, b).to_vector<int64_t>(), ref(std::minus<int64_t>()));
    EXPECT_EQ(mul(a, b).to_vector<int64_t>(), ref(std::multiplies<int64_t>()));
    EXPECT_EQ(div(a, b).to_vector<int64_t>(), ref([](int64_t x, int64_t y) { return x / y; }));  // truncates
    EXPECT_EQ(maximum(a, b).to_vector<int64_t>(), ref([](int64_t x, int64_t y) { return std::max(x, y); }));
    EXPECT_EQ(lt(a, b).to_vector<int64_t>(), ref([](int64_t x, int64_t y) { return int64_t(x < y); }));
    EXPECT_EQ(eq(a, b).to_vector<int64_t>(), ref([](int64_t x, int64_t y) { return int64_t(x == y); }));
    EXPECT_EQ((a + 3.0).to_vector<int64_t>(), ref([](int64_t x, int64_t) { return x + 3; }));
    EXPECT_EQ(neg(a).to_vector<int64_t>(), ref([](int64_t x, int64_t) { return -x; }));
    EXPECT_EQ(abs(a).to_vector<int64_t>(), ref([](int64_t x, int64_t) { return x < 0 ? -x : x; }));
    EXPECT_EQ(relu(a).to_vector<int64_t>(), ref([](int64_t x, int64_t) { return x > 0 ? x : 0; }));
    EXPECT_EQ(clamp(a, -5.0, 5.0).to_vector<int64_t>(), ref([](int64_t x, int64_t) { return std::clamp<int64_t>(x, -5, 5); }));
    EXPECT_THROW(exp(a), DTypeError);
    EXPECT_THROW(mean(a), DTypeError);
    EXPECT_THROW(a.requires_grad_(), DTypeError);
  }
}

TEST(DType, I64KeepsValuesBeyondDoublePrecision) {
  const int64_t big = (int64_t{1} << 53) + 1;  // not representable in double
  Tensor a = from_vector<int64_t>({big, -big});
  EXPECT_EQ(a.to_vector<int64_t>(), (std::vector<int64_t>{big, -big}));
  EXPECT_EQ(add(a, from_vector<int64_t>({2, -2})).to_vector<int64_t>(), (std::vector<int64_t>{big + 2, -big - 2}));
  EXPECT_EQ(a.clone().to_vector<int64_t>(), a.to_vector<int64_t>());
  EXPECT_EQ(a.reshape({2, 1}).t().contiguous().to_vector<int64_t>(), a.to_vector<int64_t>());
}

TEST(DType, I64SumIsExact) {
  // torch.sum over i64 is exact integer arithmetic.
  const int64_t big = int64_t{1} << 53;
  Tensor a = from_vector<int64_t>({big, 1, 1});
  EXPECT_EQ(sum(a).dtype(), DType::i64);
  EXPECT_EQ(sum(a).to_vector<int64_t>()[0], big + 2);
}

TEST(DType, CastsBetweenAllTypes) {
  Tensor x = from_vector<float>({-2.75f, -1.0f, 0.0f, 0.5f, 1.0f, 3.25f, 100.0f}, {7});
  EXPECT_EQ(x.to(DType::i32).to_vector<int32_t>(), (std::vector<int32_t>{-2, -1, 0, 0, 1, 3, 100}));  // truncation
  EXPECT_EQ(x.to(DType::i64).to_vector<int64_t>(), (std::vector<int64_t>{-2, -1, 0, 0, 1, 3, 100}));
  EXPECT_EQ(x.to(DType::boolean).to_vector<bool>(), (std::vector<bool>{true, true, false, true, true, true, true}));
  EXPECT_EQ(x.to(DType::f64).to_vector<double>(), values(x));
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::boolean}) {
    Tensor y = x.to(dt);
    EXPECT_EQ(y.dtype(), dt);
    EXPECT_EQ(y.shape(), x.shape());
    EXPECT_EQ(y.element_size(), dtype_size(dt));
    // Small integers survive a round trip through every type (bool: only 0/1).
    Tensor ints = from_vector<int64_t>({0, 1, 1, 0});
    EXPECT_EQ(ints.to(dt).to(DType::i64).to_vector<int64_t>(), ints.to_vector<int64_t>()) << dtype_name(dt);
  }
  // Casting a non-contiguous view gives a contiguous tensor with the view's values.
  Tensor m = arange(0, 12, 1).reshape({3, 4}).t();
  Tensor mc = m.to(DType::i32);
  EXPECT_TRUE(mc.is_contiguous());
  EXPECT_EQ(values(mc), values(m));
  EXPECT_THROW(x.data_ptr<double>(), DTypeError);
}

TEST(DType, Bf16RoundTripErrorBound) {
  manual_seed(11);
  Tensor x = randn({4097}) * 100.0;
  const auto xv = values(x);
  Tensor h = x.to(DType::bf16);
  EXPECT_EQ(h.dtype(), DType::bf16);
  const auto back = values(h.to(DType::f32));
  for (size_t i = 0; i < xv.size(); ++i)
    ASSERT_LE(std::abs(back[i] - xv[i]), std::abs(xv[i]) * std::ldexp(1.0, -8)) << xv[i];  // half an ulp of 8 bits
  // Round to nearest even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7.
  Tensor ties = from_vector<float>({1.0f + std::ldexp(1.0f, -8), 1.0f + 3 * std::ldexp(1.0f, -8)});
  EXPECT_EQ(values(ties.to(DType::bf16)), (std::vector<double>{1.0, 1.0 + std::ldexp(1.0, -6)}));
  // Special values.
  Tensor s = from_vector<float>({INFINITY, -INFINITY, NAN, 0.0f, -0.0f, 3.0e38f});
  const auto sv = values(s.to(DType::bf16));
  EXPECT_EQ(sv[0], INFINITY);
  EXPECT_EQ(sv[1], -INFINITY);
  EXPECT_TRUE(std::isnan(sv[2]));
  EXPECT_EQ(sv[3], 0.0);
  EXPECT_TRUE(std::signbit(sv[4]));
  EXPECT_TRUE(std::isfinite(sv[5]));
  EXPECT_TRUE(std::isinf(values(from_vector<float>({3.4e38f}).to(DType::bf16))[0]));  // rounds past the max
}

TEST(DType, F16RoundTripSubnormalsInfNan) {
  manual_seed(12);
  Tensor x = randn({4097}) * 10.0;
  const auto xv = values(x);
  const auto back = values(x.to(DType::f16).to(DType::f32));
  for (size_t i = 0; i < xv.size(); ++i)
    ASSERT_LE(std::abs(back[i] - xv[i]), std::max(std::abs(xv[i]) * std::ldexp(1.0, -11), std::ldexp(1.0, -25)))
        << xv[i];
  const double min_sub = std::ldexp(1.0, -24), min_normal = std::ldexp(1.0, -14);
  Tensor s = from_vector<double>({min_sub, 3 * min_sub, min_normal, min_normal - min_sub, min_sub / 2,
                                  min_sub * 0.51, 65504.0, 65520.0, 1e6, -1e6, INFINITY, NAN, -0.0},
                                 {13});
  const auto sv = values(s.to(DType::f32).to(DType::f16));
  EXPECT_EQ(sv[0], min_sub);
  EXPECT_EQ(sv[1], 3 * min_sub);
  EXPECT_EQ(sv[2], min_normal);
  EXPECT_EQ(sv[3], min_normal - min_sub);  // largest subnormal
  EXPECT_EQ(sv[4], 0.0);                   // halfway to the smallest subnormal: ties to even (0)
  EXPECT_EQ(sv[5], min_sub);               // just above halfway rounds up
  EXPECT_EQ(sv[6], 65504.0);               // max finite
  EXPECT_EQ(sv[7], INFINITY);              // halfway past max: rounds to inf
  EXPECT_EQ(sv[8], INFINITY);
  EXPECT_EQ(sv[9], -INFINITY);
  EXPECT_EQ(sv[10], INFINITY);
  EXPECT_TRUE(std::isnan(sv[11]));
  EXPECT_TRUE(std::signbit(sv[12]));
}

TEST(DType, HalfStorageComputesInF32) {
  manual_seed(13);
  for (DType dt : {DType::bf16, DType::f16}) {
    Tensor a = randn({9, 5}).to(dt).t(), b = randn({9}).to(dt);
    Tensor c = add(a, b);
    EXPECT_EQ(c.dtype(), dt);
    // reference: the f32 sum of the stored values, rounded to dt once.
    Tensor want = add(a.to(DType::f32), b.to(DType::f32)).to(dt);
    EXPECT_EQ(values(c), values(want)) << dtype_name(dt);
    EXPECT_EQ(values(exp(a)), values(exp(a.to(DType::f32)).to(dt))) << dtype_name(dt);
    Tensor s = sum(a, {1});
    EXPECT_EQ(s.dtype(), dt);
    EXPECT_TRUE(all_close(values(s), values(sum(a.to(DType::f32), {1})), 1e-2, 1e-2)) << dtype_name(dt);
    EXPECT_THROW(add(a, a.to(DType::f32)), DTypeError);
  }
}
