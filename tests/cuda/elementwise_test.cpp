// CUDA elementwise ops, copies, casts and fills against the CPU on the same fresh random inputs:
// every UnaryOp and BinaryOp, every dtype the CPU defines them for, odd sizes around the block
// size, broadcasting, non-contiguous operands and destinations, and the host <-> device moves.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "cuda_test_util.h"
#include "tensor/ops.h"

using namespace graft;
using namespace graft::testing;
using graft::ops::BinaryOp;
using graft::ops::UnaryOp;

namespace {

const Device kGpu = Device::cuda(0);
const std::vector<DType> kAllDTypes = {DType::f32, DType::f64, DType::bf16, DType::f16,
                                       DType::i32, DType::i64, DType::boolean};
const std::vector<DType> kFloatDTypes = {DType::f32, DType::f64, DType::bf16, DType::f16};

// Sizes around the block size (256), a 0-d tensor and an empty one.
const std::vector<Shape> kShapes = {{}, {1}, {7}, {33}, {1000}, {3, 517}, {0}};

bool is_int(DType dtype) { return dtype == DType::i32 || dtype == DType::i64; }

// Fresh values of `dtype` on the CPU: normal floats, small integers of both signs, or a mask.
Tensor sample(const Shape& shape, DType dtype, uint64_t salt, double int_scale = 20.0) {
  if (dtype == DType::boolean) return gt(random_cpu(shape, DType::f32, salt), 0.0);
  if (is_int(dtype)) return (random_cpu(shape, DType::f32, salt) * int_scale).to(dtype);  // truncates
  return random_cpu(shape, dtype, salt);
}

// The GPU result stays on the GPU, has the CPU result's dtype, and matches it.
::testing::AssertionResult matches(const Tensor& got, const Tensor& want, double rtol = 0.0, double atol = 0.0) {
  if (!got.device().is_cuda()) return ::testing::AssertionFailure() << "result is on " << got.device().str();
  if (got.dtype() != want.dtype())
    return ::testing::AssertionFailure() << "dtype " << dtype_name(got.dtype()) << ", want " << dtype_name(want.dtype());
  return all_close(got, want, rtol, atol);
}

struct UnaryCase {
  UnaryOp op;
  double a = 0, b = 0;
};

// Every UnaryOp (pow with several exponents), or those defined on integers.
std::vector<UnaryCase> unary_cases(bool floating) {
  std::vector<UnaryCase> cases;
  for (int i = 0; i <= static_cast<int>(UnaryOp::isinf); ++i) {
    const auto op = static_cast<UnaryOp>(i);
    if (!floating && kernels::unary_op_needs_float(op)) continue;
    if (op == UnaryOp::pow_scalar) {
      for (double e : {2.0, 3.0, -1.0, 0.5, 1.7}) cases.push_back({op, e});
    } else if (op == UnaryOp::clamp) {
      cases.push_back({op, -0.5, 0.7});
      cases.push_back({op, -3.0, 5.0});
    } else {
      cases.push_back({op});
    }
  }
  return cases;
}

// x moved into the op's domain (on the CPU, before the copy to the GPU).
Tensor in_domain(const UnaryCase& c, const Tensor& x) {
  switch (c.op) {
    case UnaryOp::log:
    case UnaryOp::sqrt:
    case UnaryOp::rsqrt: return abs(x) + 0.1;
    case UnaryOp::log1p: return abs(x) - 0.5;
    case UnaryOp::pow_scalar: return std::floor(c.a) == c.a ? x : abs(x) + 0.1;
    default: return x;
  }
}

// Both sides round the same math differently by an ulp or so. Where the formula cancels (1 + tanh
// for x << 0 in the tanh GELUs, erf's 1 + erf in f64/16-bit GELUs), that ulp is absolute, not
// relative to the small result: an absolute floor covers it.
double unary_atol(UnaryOp op, DType dtype) {
  switch (dtype) {
    case DType::f32: return op == UnaryOp::gelu_tanh || op == UnaryOp::gelu_tanh_grad ? 1e-5 : 1e-6;
    case DType::f64: return 1e-13;
    case DType::bf16:
    case DType::f16: return 1e-4;
    default: return 0.0;
  }
}

// NaN, ±inf, ±0 and ordinary values, f32 on the CPU.
Tensor special_values() {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  return from_vector<float>({0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -2.5f, 3.0f, 1e-30f, -1e-30f, 80.0f, -80.0f,
                             100.0f, -100.0f, inf, -inf, nan});
}

}  // namespace

TEST(CudaElementwise, UnaryF32EveryOpMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  uint64_t salt = 0;
  for (const UnaryCase& c : unary_cases(true)) {
    for (const Shape& shape : kShapes) {
      const Tensor x = in_domain(c, random_cpu(shape, DType::f32, ++salt));
      const Tensor want = ops::unary(c.op, x, c.a, c.b);
      const Tensor got = ops::unary(c.op, x.to(kGpu), c.a, c.b);
      EXPECT_TRUE(matches(got, want, default_rtol(DType::f32), unary_atol(c.op, DType::f32)))
          << kernels::unary_op_name(c.op) << "(a=" << c.a << ", b=" << c.b << ") on " << shape_str(shape);
    }
  }
}

TEST(CudaElementwise, UnaryOtherFloatDTypesMatchCpu) {
  GRAFT_REQUIRE_CUDA();
  uint64_t salt = 0;
  for (DType dtype : {DType::f64, DType::bf16, DType::f16}) {
    for (const UnaryCase& c : unary_cases(true)) {
      for (const Shape& shape : {Shape{7}, Shape{1000}}) {
        const Tensor x = in_domain(c, random_cpu(shape, dtype, ++salt));
        const Tensor want = ops::unary(c.op, x, c.a, c.b);
        const Tensor got = ops::unary(c.op, x.to(kGpu), c.a, c.b);
        EXPECT_TRUE(matches(got, want, default_rtol(dtype), unary_atol(c.op, dtype)))
            << kernels::unary_op_name(c.op) << "(a=" << c.a << ") " << dtype_name(dtype) << " " << shape_str(shape);
      }
    }
  }
}

TEST(CudaElementwise, UnaryIntegersMatchCpuExactly) {
  GRAFT_REQUIRE_CUDA();
  uint64_t salt = 0;
  for (DType dtype : {DType::i32, DType::i64}) {
    for (const UnaryCase& c : unary_cases(false)) {
      for (const Shape& shape : {Shape{1}, Shape{33}, Shape{1000}}) {
        const Tensor x = sample(shape, dtype, ++salt);
        EXPECT_TRUE(matches(ops::unary(c.op, x.to(kGpu), c.a, c.b), ops::unary(c.op, x, c.a, c.b)))
            << kernels::unary_op_name(c.op) << " " << dtype_name(dtype) << " " << shape_str(shape);
      }
    }
    // The float-only ops are refused on the GPU as on the CPU.
    EXPECT_THROW(ops::unary(UnaryOp::exp, sample({4}, dtype, 99).to(kGpu)), DTypeError);
  }
  EXPECT_THROW(ops::unary(UnaryOp::neg, sample({4}, DType::boolean, 98).to(kGpu)), DTypeError);
}

TEST(CudaElementwise, SpecialValuesFollowTheCpu) {
  GRAFT_REQUIRE_CUDA();
  const Tensor x = special_values();
  const Tensor gx = x.to(kGpu);
  for (const UnaryCase& c : unary_cases(true)) {
    EXPECT_TRUE(matches(ops::unary(c.op, gx, c.a, c.b), ops::unary(c.op, x, c.a, c.b), 1e-5, 1e-6))
        << kernels::unary_op_name(c.op) << "(a=" << c.a << ")";
  }
  // Every pair of specials: NaN handling of maximum/minimum, x/0, pow's special cases, comparisons.
  const int64_t n = x.numel();
  const Tensor a = x.reshape({n, 1}).expand({n, n}), b = x.reshape({1, n}).expand({n, n});
  const Tensor ga = gx.reshape({n, 1}).expand({n, n}), gb = gx.reshape({1, n}).expand({n, n});
  for (int i = 0; i <= static_cast<int>(BinaryOp::ge); ++i) {
    const auto op = static_cast<BinaryOp>(i);
    // The absolute floor: pow's results in f32's subnormal range keep only a few digits.
    EXPECT_TRUE(matches(ops::binary(op, ga, gb), ops::binary(op, a, b), 1e-5, 1e-30)) << kernels::binary_op_name(op);
  }
}

TEST(CudaElementwise, BinaryEveryOpAndDTypeMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  // Same shapes of odd sizes, the broadcast, tensor-with-scalar both ways, an empty one.
  const std::vector<std::pair<Shape, Shape>> shapes = {{{1}, {1}},       {{7}, {7}},         {{33}, {33}},
                                                       {{1000}, {1000}}, {{5, 1, 7}, {3, 1}}, {{1000}, {}},
                                                       {{}, {3, 4}},     {{2, 0}, {2, 1}}};
  uint64_t salt = 0;
  for (DType dtype : kAllDTypes) {
    for (int i = 0; i <= static_cast<int>(BinaryOp::logical_or); ++i) {
      const auto op = static_cast<BinaryOp>(i);
      const bool logical = op == BinaryOp::logical_and || op == BinaryOp::logical_or;
      const bool defined = dtype == DType::boolean ? (logical || op == BinaryOp::eq || op == BinaryOp::ne)
                                                   : !logical && !(op == BinaryOp::pow && is_int(dtype));
      if (!defined) {  // refused on the GPU as on the CPU
        const Tensor g = sample({3}, dtype, 77).to(kGpu);
        EXPECT_THROW(ops::binary(op, g, g), DTypeError) << kernels::binary_op_name(op) << " " << dtype_name(dtype);
        continue;
      }
      for (const auto& [sa, sb] : shapes) {
        Tensor a = sample(sa, dtype, ++salt);
        Tensor b = sample(sb, dtype, ++salt, 3.0);  // small integers: zeros and negatives for div
        if (op == BinaryOp::pow) a = abs(a) + 0.1;
        if (sa == sb && dtype != DType::boolean) b = where(gt(a, 0.5), a, b);  // ties for the comparisons
        const Tensor want = ops::binary(op, a, b);
        const Tensor got = ops::binary(op, a.to(kGpu), b.to(kGpu));
        EXPECT_TRUE(matches(got, want, default_rtol(dtype)))
            << kernels::binary_op_name(op) << " " << dtype_name(dtype) << " " << shape_str(sa) << " with "
            << shape_str(sb);
      }
    }
  }
}

TEST(CudaElementwise, NonContiguousInputsMatchCpu) {
  GRAFT_REQUIRE_CUDA();
  const Tensor base_a = random_cpu({33, 17}, DType::f32, 1), base_b = random_cpu({17, 67}, DType::f32, 2);
  const Tensor gbase_a = base_a.to(kGpu), gbase_b = base_b.to(kGpu);
  const Tensor a = base_a.t(), ga = gbase_a.t();                                      // [17, 33] transposed
  const Tensor b = base_b.slice(1, 0, 66, 2), gb = gbase_b.slice(1, 0, 66, 2);        // [17, 33] step 2
  const Tensor row = base_b.select(0, 3).narrow(0, 0, 33), grow = gbase_b.select(0, 3).narrow(0, 0, 33);
  const Tensor c = row.unsqueeze(0).expand({17, 33}), gc = grow.unsqueeze(0).expand({17, 33});  // stride 0
  ASSERT_FALSE(ga.is_contiguous());
  ASSERT_FALSE(gb.is_contiguous());
  const double rtol = default_rtol(DType::f32);
  EXPECT_TRUE(matches(ops::unary(UnaryOp::exp, ga), ops::unary(UnaryOp::exp, a), rtol));
  EXPECT_TRUE(matches(ops::unary(UnaryOp::gelu_erf, gb), ops::unary(UnaryOp::gelu_erf, b), rtol, 1e-6));
  EXPECT_TRUE(matches(ops::binary(BinaryOp::add, ga, gb), ops::binary(BinaryOp::add, a, b), rtol));
  EXPECT_TRUE(matches(ops::binary(BinaryOp::mul, gb, gc), ops::binary(BinaryOp::mul, b, c), rtol));
  EXPECT_TRUE(matches(ops::binary(BinaryOp::lt, gc, ga), ops::binary(BinaryOp::lt, c, a)));
  EXPECT_TRUE(matches(ops::where(ops::binary(BinaryOp::gt, ga, gb), gc, ga),
                      ops::where(ops::binary(BinaryOp::gt, a, b), c, a)));
  // A 3-D permutation against a broadcast operand: nothing coalesces.
  const Tensor x = random_cpu({4, 5, 6}, DType::f32, 3), y = random_cpu({6, 1, 1}, DType::f32, 4);
  const Tensor px = x.permute({2, 0, 1}), gpx = x.to(kGpu).permute({2, 0, 1});
  EXPECT_TRUE(matches(ops::binary(BinaryOp::sub, gpx, y.to(kGpu)), ops::binary(BinaryOp::sub, px, y), rtol));
  EXPECT_TRUE(matches(ops::unary(UnaryOp::tanh, gpx), ops::unary(UnaryOp::tanh, px), rtol, 1e-6));
  // A large transposed case: many blocks, every index goes through the general offset walk.
  const Tensor big = random_cpu({1025, 1023}, DType::f32, 5);
  const Tensor gbig = big.to(kGpu);
  EXPECT_TRUE(matches(ops::binary(BinaryOp::maximum, gbig.t(), gbig.t()), ops::binary(BinaryOp::maximum, big.t(), big.t())));
  EXPECT_TRUE(matches(gbig.t().contiguous(), big.t().contiguous()));
}

TEST(CudaElementwise, ResultsAreBitIdenticalRunToRun) {
  GRAFT_REQUIRE_CUDA();
  const Tensor x = random_cpu({3, 1000}, DType::f32, 1).to(kGpu), y = random_cpu({1000}, DType::f32, 2).to(kGpu);
  EXPECT_TRUE(matches(ops::unary(UnaryOp::gelu_tanh, x), ops::unary(UnaryOp::gelu_tanh, x).to(Device::cpu())));
  EXPECT_TRUE(matches(ops::binary(BinaryOp::div, x, y), ops::binary(BinaryOp::div, x, y).to(Device::cpu())));
}

TEST(CudaElementwise, WhereMatchesCpuForEveryDType) {
  GRAFT_REQUIRE_CUDA();
  uint64_t salt = 0;
  for (DType dtype : kAllDTypes) {
    const Tensor cond = sample({5, 1, 7}, DType::boolean, ++salt);
    const Tensor a = sample({3, 1}, dtype, ++salt), b = sample({7}, dtype, ++salt);  // all three broadcast
    EXPECT_TRUE(matches(ops::where(cond.to(kGpu), a.to(kGpu), b.to(kGpu)), ops::where(cond, a, b)))
        << dtype_name(dtype);
    const Tensor c2 = sample({1000}, DType::boolean, ++salt);
    const Tensor a2 = sample({1000}, dtype, ++salt), b2 = sample({1000}, dtype, ++salt);
    EXPECT_TRUE(matches(ops::where(c2.to(kGpu), a2.to(kGpu), b2.to(kGpu)), ops::where(c2, a2, b2)))
        << dtype_name(dtype);
  }
  const Tensor x = random_cpu({33}, DType::f32, ++salt);
  EXPECT_TRUE(matches(where(gt(x.to(kGpu), 0.0), x.to(kGpu), -1.5), where(gt(x, 0.0), x, -1.5)));
}

TEST(CudaElementwise, CastBetweenAllDTypesOnDevice) {
  GRAFT_REQUIRE_CUDA();
  uint64_t salt = 0;
  for (DType src : kAllDTypes) {
    // Wide-ranged values with fractions and both signs; the casts to integers truncate.
    const Tensor x = is_int(src) || src == DType::boolean ? sample({1000}, src, ++salt)
                                                          : (random_cpu({1000}, DType::f32, ++salt) * 300.0).to(src);
    const Tensor gx = x.to(kGpu);
    for (DType dst : kAllDTypes) {
      EXPECT_TRUE(matches(gx.to(dst), x.to(dst))) << dtype_name(src) << " -> " << dtype_name(dst);
    }
    // Non-contiguous source.
    const Tensor m = x.reshape({25, 40});
    for (DType dst : kFloatDTypes)
      EXPECT_TRUE(matches(gx.reshape({25, 40}).t().to(dst), m.t().to(dst))) << dtype_name(src) << " -> " << dtype_name(dst) << " transposed";
  }
  // Rounding edges between the float types: halfway cases, f16 overflow and subnormals, NaN, ±inf.
  const Tensor edges = from_vector<double>({0.0, -0.0, 1.0 / 3.0, 1.00390625, 1.01171875, 65519.0, 65520.0, 1e6,
                                            6.0e-8, 3.0e-8, 1e-40, 1e39, -1e39, 2.5, -2.5,
                                            std::numeric_limits<double>::infinity(),
                                            -std::numeric_limits<double>::infinity(),
                                            std::numeric_limits<double>::quiet_NaN()});
  for (DType src : kFloatDTypes) {
    const Tensor x = edges.to(src);
    for (DType dst : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::boolean})
      EXPECT_TRUE(matches(x.to(kGpu).to(dst), x.to(dst))) << "edges " << dtype_name(src) << " -> " << dtype_name(dst);
  }
}

TEST(CudaElementwise, CopyIntoNonContiguousCudaDestination) {
  GRAFT_REQUIRE_CUDA();
  Tensor want = zeros({10, 21});
  Tensor got = zeros({10, 21}, kGpu);
  // From the host, another dtype, into every other column (stride 2).
  const Tensor src = random_cpu({10, 10}, DType::f64, 1);
  want.slice(1, 1, 21, 2).copy_(src);
  got.slice(1, 1, 21, 2).copy_(src);
  EXPECT_TRUE(matches(got, want));
  // On the device, from a transposed bf16 source.
  const Tensor src2 = random_cpu({10, 10}, DType::bf16, 2);
  want.slice(1, 0, 20, 2).copy_(src2.t());
  got.slice(1, 0, 20, 2).copy_(src2.to(kGpu).t());
  EXPECT_TRUE(matches(got, want));
  // Into a column (stride 21), and a host row broadcast over three rows.
  const Tensor col = random_cpu({10}, DType::f32, 3), row = random_cpu({21}, DType::f16, 4);
  want.select(1, 20).copy_(col);
  got.select(1, 20).copy_(col.to(kGpu));
  want.narrow(0, 2, 3).copy_(row);
  got.narrow(0, 2, 3).copy_(row);
  EXPECT_TRUE(matches(got, want));
  // Back to a non-contiguous host destination, converting on the way.
  Tensor host_want = zeros({21, 10}, DType::f64), host_got = zeros({21, 10}, DType::f64);
  host_want.t().copy_(want);
  host_got.t().copy_(got);
  EXPECT_TRUE(all_close(host_got, host_want, 0.0));
}

TEST(CudaElementwise, FillMatchesCpuForEveryDType) {
  GRAFT_REQUIRE_CUDA();
  for (DType dtype : kAllDTypes) {
    for (double value : {0.0, -0.0, 1.0 / 3.0, -2.75, 7.9, 1e5}) {
      for (const Shape& shape : {Shape{}, Shape{1}, Shape{1000}, Shape{257, 3}}) {
        EXPECT_TRUE(matches(full(shape, value, TensorOptions(dtype).with_device(kGpu)), full(shape, value, dtype)))
            << dtype_name(dtype) << " " << value << " " << shape_str(shape);
      }
      // Every third column of a non-contiguous view; the rest must stay as they were.
      Tensor want = sample({6, 35}, dtype, 1), got = want.to(kGpu);
      want.slice(1, 0, 35, 3).fill_(value);
      got.slice(1, 0, 35, 3).fill_(value);
      EXPECT_TRUE(matches(got, want)) << dtype_name(dtype) << " " << value << " strided";
    }
  }
  Tensor z = ones({1 << 20}, kGpu);
  z.zero_();
  EXPECT_TRUE(matches(z, zeros({1 << 20})));
}

TEST(CudaElementwise, ToCudaAndBackRoundTrips) {
  GRAFT_REQUIRE_CUDA();
  uint64_t salt = 0;
  for (DType dtype : kAllDTypes) {
    const Tensor x = sample({7, 33}, dtype, ++salt);
    const Tensor g = x.to(kGpu);
    EXPECT_EQ(g.device(), kGpu);
    EXPECT_TRUE(all_close(g.to(Device::cpu()), x, 0.0)) << dtype_name(dtype);
    EXPECT_TRUE(all_close(x.t().to(kGpu).to(Device::cpu()), x.t(), 0.0)) << dtype_name(dtype) << " host view";
    EXPECT_TRUE(all_close(g.t().to(Device::cpu()), x.t(), 0.0)) << dtype_name(dtype) << " device view";
    EXPECT_TRUE(all_close(g.slice(1, 1, 33, 4).to(Device::cpu()), x.slice(1, 1, 33, 4), 0.0)) << dtype_name(dtype);
  }
}

TEST(CudaElementwise, GeluErfBackwardMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  for (DType dtype : {DType::f32, DType::bf16}) {
    const Tensor g = random_cpu({1000}, dtype, 1), x = random_cpu({1000}, dtype, 2);
    EXPECT_TRUE(matches(ops::gelu_erf_backward(g.to(kGpu), x.to(kGpu)), ops::gelu_erf_backward(g, x),
                        default_rtol(dtype), unary_atol(UnaryOp::gelu_erf_grad, dtype)))
        << dtype_name(dtype);
  }
}

TEST(CudaElementwise, MixedDevicesThrowDeviceError) {
  GRAFT_REQUIRE_CUDA();
  const Tensor a = random_cpu({4}, DType::f32, 1);
  const Tensor b = a.to(kGpu);
  EXPECT_THROW(ops::binary(BinaryOp::add, a, b), DeviceError);
  EXPECT_THROW(ops::binary(BinaryOp::mul, b, a), DeviceError);
  EXPECT_THROW(ops::binary(BinaryOp::lt, b, a), DeviceError);
  EXPECT_THROW(ops::where(gt(a, 0.0), a, b), DeviceError);
  EXPECT_THROW(ops::where(gt(b, 0.0), a, a), DeviceError);
  EXPECT_THROW(add(a, b), DeviceError);
}
