// bf16 and f16 conversions (kernels/common/half.h) checked exhaustively against an independent
// reference: every 16-bit pattern round-trips, and f32 -> 16-bit rounds to nearest even.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>

#include "kernels/common/half.h"

using graft::bf16;
using graft::f16;

namespace {

// Value of an IEEE binary16 bit pattern, computed with ldexp.
double f16_value(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v;
  if (exp == 0) v = std::ldexp(mant, -24);
  else if (exp == 31) v = mant ? NAN : INFINITY;
  else v = std::ldexp(1024 + mant, exp - 25);
  return sign ? -v : v;
}

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Nearest-even rounding of f to the 16-bit format whose values `value_of` gives, by search over
// all finite patterns of the same sign (slow but obviously right; used on a sample).
template <class ValueOf>
uint16_t round_reference(float f, ValueOf value_of, uint16_t max_finite) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::abs(static_cast<double>(f));
  // Binary search over magnitude patterns (monotone in value for finite patterns).
  uint16_t lo = 0, hi = max_finite;
  if (a >= value_of(max_finite)) {
    // Beyond the max: round to inf when at or past the halfway point to the next power.
    const double next = value_of(max_finite) + (value_of(max_finite) - value_of(static_cast<uint16_t>(max_finite - 1)));
    const double half = (value_of(max_finite) + next) / 2;
    return static_cast<uint16_t>(sign | (a >= half ? max_finite + 1 : max_finite));
  }
  while (hi - lo > 1) {
    const uint16_t mid = static_cast<uint16_t>((lo + hi) / 2);
    if (value_of(mid) <= a) lo = mid;
    else hi = mid;
  }
  const double dl = a - value_of(lo), dh = value_of(hi) - a;
  uint16_t pick = dl < dh ? lo : dh < dl ? hi : ((lo & 1) ? hi : lo);
  return static_cast<uint16_t>(sign | pick);
}

}  // namespace

TEST(Half, F16EveryPatternRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    f16 x;
    x.bits = static_cast<uint16_t>(h);
    const float f = static_cast<float>(x);
    const double want = f16_value(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_TRUE(std::isnan(static_cast<float>(f16(f)))) << std::hex << h;
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), want) << std::hex << h;
    ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << h;
    ASSERT_EQ(f16(f).bits, h) << std::hex << h;  // exact values convert back to the same pattern
  }
}

TEST(Half, Bf16EveryPatternRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    bf16 x;
    x.bits = static_cast<uint16_t>(h);
    const float f = static_cast<float>(x);
    ASSERT_EQ(std::memcmp(&f, &f, 4), 0);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    ASSERT_EQ(u, h << 16) << std::hex << h;
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(static_cast<float>(bf16(f)))) << std::hex << h;
      continue;
    }
    ASSERT_EQ(bf16(f).bits, h) << std::hex << h;
  }
}

TEST(Half, F16RoundsToNearestEven) {
  std::mt19937 rng(std::random_device{}());
  auto value_of = [](uint16_t h) { return f16_value(h); };
  // Random f32 bit patterns across the f16 range (exponents -30 .. 17), plus halfway cases.
  std::uniform_int_distribution<uint32_t> mant(0, 0x7fffff), exp(127 - 30, 127 + 17), sign(0, 1);
  for (int i = 0; i < 200000; ++i) {
    const float f = bits_to_float((sign(rng) << 31) | (exp(rng) << 23) | mant(rng));
    ASSERT_EQ(f16(f).bits, round_reference(f, value_of, 0x7bff)) << f;
  }
  for (uint16_t h = 0; h < 0x7bff; ++h) {  // exact midpoints between neighbours
    const float mid = static_cast<float>((f16_value(h) + f16_value(static_cast<uint16_t>(h + 1))) / 2);
    ASSERT_EQ(f16(mid).bits, (h & 1) ? h + 1 : h) << std::hex << h;
    ASSERT_EQ(f16(-mid).bits, static_cast<uint16_t>(0x8000 | ((h & 1) ? h + 1 : h))) << std::hex << h;
  }
  EXPECT_EQ(f16(65519.0f).bits, 0x7bff);
  EXPECT_EQ(f16(65520.0f).bits, 0x7c00);
  EXPECT_EQ(f16(1e-8f).bits, 0);
  EXPECT_EQ(f16(-1e-8f).bits, 0x8000);
  EXPECT_EQ(f16(INFINITY).bits, 0x7c00);
  EXPECT_EQ(f16(-INFINITY).bits, 0xfc00);
  EXPECT_TRUE(std::isnan(static_cast<float>(f16(NAN))));
}

TEST(Half, Bf16RoundsToNearestEven) {
  std::mt19937 rng(std::random_device{}());
  auto value_of = [](uint16_t h) { return static_cast<double>(bits_to_float(static_cast<uint32_t>(h) << 16)); };
  std::uniform_int_distribution<uint32_t> bits(0, 0xffffffffu);
  for (int i = 0; i < 200000; ++i) {
    const float f = bits_to_float(bits(rng));
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(static_cast<float>(bf16(f))));
      continue;
    }
    ASSERT_EQ(bf16(f).bits, round_reference(f, value_of, 0x7f7f)) << f;
  }
  // A signalling-looking NaN whose payload sits in the low bits stays NaN (not inf).
  EXPECT_TRUE(std::isnan(static_cast<float>(bf16(bits_to_float(0x7f800001u)))));
  EXPECT_EQ(bf16(bits_to_float(0x3f808000u)).bits, 0x3f80);  // tie, even stays
  EXPECT_EQ(bf16(bits_to_float(0x3f818000u)).bits, 0x3f82);  // tie, odd rounds up
}
