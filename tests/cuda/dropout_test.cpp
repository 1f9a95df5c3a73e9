// Dropout and the random factories on CUDA draw the CPU's Philox elements: the same seed and
// counter give the same mask and the same numbers on both devices.
#include <vector>

#include "cuda_test_util.h"
#include "tensor/ops.h"

using namespace graft;
using namespace graft::testing;

namespace {

const Device kCuda = Device::cuda(0);
const std::vector<DType> kFloatTypes{DType::f32, DType::f64, DType::bf16, DType::f16};
const std::vector<Shape> kShapes{{1}, {7}, {33, 5}, {1037}, {3, 1000, 3}};

::testing::AssertionResult equal(const Tensor& got, const Tensor& want) { return all_close(got, want, 0.0); }

// The CPU's fused dropout runs on f32 / f64; 16-bit inputs are compared on their f32 values.
DType cpu_dtype(DType dtype) { return dtype == DType::f64 ? DType::f64 : DType::f32; }

}  // namespace

TEST(CudaDropout, FusedAppliesToFloatTypes) {
  GRAFT_REQUIRE_CUDA();
  for (DType dtype : kFloatTypes)
    EXPECT_TRUE(ops::dropout_fused_applies(empty({2}, TensorOptions(dtype).with_device(kCuda)))) << dtype_name(dtype);
  EXPECT_FALSE(ops::dropout_fused_applies(empty({2}, TensorOptions(DType::i64).with_device(kCuda))));
}

TEST(CudaDropout, MaskAndOutputEqualCpu) {
  GRAFT_REQUIRE_CUDA();
  const uint64_t seed = test_seed();
  uint64_t salt = 0;
  for (DType dtype : kFloatTypes) {
    for (const Shape& shape : kShapes) {
      for (double p : {0.1, 0.5, 0.9}) {
        const uint64_t counter = 12345 + salt;  // any counter: a draw may start anywhere in the stream
        const Tensor x = random_cpu(shape, dtype, ++salt);
        auto [y, keep] = ops::dropout_forward(x.to(kCuda), p, seed, counter);
        auto [y_cpu, keep_cpu] = ops::dropout_forward(x.to(cpu_dtype(dtype)), p, seed, counter);
        // the mask, exactly: both as the fused CPU kernel and as bernoulli at the same generator state
        EXPECT_TRUE(equal(keep, keep_cpu)) << dtype_name(dtype) << " " << shape_str(shape) << " p " << p;
        Generator g(seed);
        g.set_offset(counter);
        EXPECT_TRUE(equal(keep, bernoulli(shape, 1.0 - p, Device::cpu(), &g)));
        // the output: the same product for f32 / f64, one rounding of it for the 16-bit types
        EXPECT_TRUE(all_close(y, y_cpu, dtype == DType::f32 || dtype == DType::f64 ? 0.0 : default_rtol(dtype)))
            << dtype_name(dtype) << " " << shape_str(shape) << " p " << p;
      }
    }
  }
}

TEST(CudaDropout, BackwardEqualsCpu) {
  GRAFT_REQUIRE_CUDA();
  const uint64_t seed = test_seed();
  uint64_t salt = 0;
  for (DType dtype : kFloatTypes) {
    for (const Shape& shape : kShapes) {
      const double p = 0.3;
      const Tensor x = random_cpu(shape, dtype, ++salt);
      const Tensor g = random_cpu(shape, dtype, ++salt);
      auto [y, keep] = ops::dropout_forward(x.to(kCuda), p, seed, 7);
      auto [y_cpu, keep_cpu] = ops::dropout_forward(x.to(cpu_dtype(dtype)), p, seed, 7);
      const Tensor gx = ops::dropout_backward(g.to(kCuda), keep, p);
      const Tensor gx_cpu = ops::dropout_backward(g.to(cpu_dtype(dtype)), keep_cpu, p);
      EXPECT_TRUE(all_close(gx, gx_cpu, dtype == DType::f32 || dtype == DType::f64 ? 0.0 : default_rtol(dtype)))
          << dtype_name(dtype) << " " << shape_str(shape);
    }
  }
}

TEST(CudaDropout, AutogradDropoutMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  for (DType dtype : {DType::f32, DType::f64}) {
    const Tensor x = random_cpu({33, 41}, dtype);
    const Tensor g = random_cpu({33, 41}, dtype, 1);
    Generator ga(test_seed()), gb(test_seed());
    Tensor xa = x.clone();
    xa.requires_grad_(true);
    Tensor ya = dropout(xa, 0.25, true, &ga);
    ya.backward(g);
    Tensor xb = x.to(kCuda);
    xb.requires_grad_(true);
    Tensor yb = dropout(xb, 0.25, true, &gb);
    yb.backward(g.to(kCuda));
    EXPECT_TRUE(equal(yb, ya)) << dtype_name(dtype);
    EXPECT_TRUE(equal(xb.grad(), xa.grad())) << dtype_name(dtype);
    EXPECT_EQ(gb.offset(), ga.offset());  // both reserved the same counters
  }
  // a non-contiguous input: the mask follows the view's row-major order, as on the CPU
  const Tensor x = random_cpu({41, 33});
  Generator ga(1), gb(1);
  EXPECT_TRUE(equal(dropout(x.to(kCuda).t(), 0.5, true, &gb), dropout(x.t(), 0.5, true, &ga)));
}

TEST(CudaDropout, ErrorsAreTyped) {
  GRAFT_REQUIRE_CUDA();
  const Tensor x = random_cpu({4}).to(kCuda);
  EXPECT_THROW(ops::dropout_forward(x, 1.0, 1, 0), ValueError);
  EXPECT_THROW(ops::dropout_forward(from_vector<int64_t>({1, 2}).to(kCuda), 0.5, 1, 0), DTypeError);
  auto [y, keep] = ops::dropout_forward(x, 0.5, 1, 0);
  EXPECT_THROW(ops::dropout_backward(random_cpu({4}), keep, 0.5), DeviceError);
  EXPECT_THROW(ops::dropout_backward(random_cpu({5}).to(kCuda), keep, 0.5), ShapeError);
}

TEST(CudaRandom, DrawsEqualCpu) {
  GRAFT_REQUIRE_CUDA();
  for (DType dtype : kFloatTypes) {
    // f32: up to the last bit of the double transform; 16-bit: up to one rounding step
    const double rtol = dtype == DType::f64 ? 1e-12 : dtype == DType::f32 ? 1e-6 : default_rtol(dtype);
    const double atol = dtype == DType::f64 ? 1e-14 : 1e-7;
    for (const Shape& shape : kShapes) {
      const TensorOptions cpu(dtype), gpu = TensorOptions(dtype).with_device(kCuda);
      Generator a(test_seed()), b(test_seed());
      a.set_offset(5);
      b.set_offset(5);
      EXPECT_TRUE(all_close(rand(shape, gpu, &b), rand(shape, cpu, &a), rtol, atol)) << dtype_name(dtype);
      EXPECT_TRUE(all_close(randn(shape, gpu, &b), randn(shape, cpu, &a), rtol, atol)) << dtype_name(dtype);
      EXPECT_TRUE(all_close(uniform(shape, -2.0, 3.0, gpu, &b), uniform(shape, -2.0, 3.0, cpu, &a), rtol, atol))
          << dtype_name(dtype);
      EXPECT_TRUE(all_close(normal(shape, 1.5, 0.5, gpu, &b), normal(shape, 1.5, 0.5, cpu, &a), rtol, atol))
          << dtype_name(dtype);
      EXPECT_TRUE(equal(bernoulli(shape, 0.3, kCuda, &b), bernoulli(shape, 0.3, Device::cpu(), &a)));
      EXPECT_EQ(b.offset(), a.offset());
    }
  }
  // requires_grad carries over; non-floating dtypes are refused as on the CPU
  EXPECT_TRUE(randn({3}, TensorOptions(DType::f32).with_device(kCuda).with_requires_grad()).requires_grad());
  EXPECT_THROW(rand({3}, TensorOptions(DType::i64).with_device(kCuda)), DTypeError);
  EXPECT_EQ(randn({0, 4}, TensorOptions(DType::f32).with_device(kCuda)).numel(), 0);
}
