// layer_norm forward and backward on CUDA against the CPU on the same fresh random inputs: odd
// widths (1, 7, 384, 1000), row counts that are not multiples of the kernels' row chunks, with and
// without weight/bias, f32 / f64 / bf16 / f16, a non-contiguous input, run-to-run bit identity,
// the autograd op, and the errors that can be checked.
//
// Tolerances: relative at the dtype's rtol with an absolute floor of rtol * max(1, max|want|):
// gradients that cancel to near zero carry the rounding of their large terms.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cuda_test_util.h"
#include "tensor/ops.h"

namespace {

using namespace graft;
using graft::testing::all_close;
using graft::testing::random_cpu;

const Device kCuda = Device::cuda(0);

::testing::AssertionResult close(const Tensor& got, const Tensor& want, double rtol) {
  double scale = 1;
  for (double v : want.to(Device::cpu()).to_vector<double>()) scale = std::max(scale, std::abs(v));
  return all_close(got, want, rtol, rtol * scale);
}

DType cpu_dtype(DType dtype) { return dtype == DType::f64 ? DType::f64 : DType::f32; }

// Random values rounded to `dtype`, held on the CPU in its compute type (f64 or f32): the CPU
// reference and the GPU see the same numbers.
Tensor rounded(const Shape& shape, DType dtype, uint64_t salt) {
  return random_cpu(shape, DType::f32, salt).to(dtype).to(cpu_dtype(dtype));
}

struct Options {
  bool weight = true, bias = true;
  bool transposed_input = false;  // x as the transpose of a [cols, rows] tensor (2-D only)
  double eps = 1e-5;
};

// Forward and backward (all three gradients) on both devices, compared.
void expect_layer_norm_matches(DType dtype, double rtol, const Shape& lead, int64_t cols, const Options& o) {
  Shape shape = lead;
  shape.push_back(cols);
  const int64_t rows = shape_numel(lead);
  Tensor x_base = o.transposed_input ? rounded({cols, rows}, dtype, 1) : rounded(shape, dtype, 1);
  auto view = [&](const Tensor& base) { return o.transposed_input ? base.t() : base; };
  const Tensor w = o.weight ? rounded({cols}, dtype, 2) : Tensor();
  const Tensor b = o.bias ? rounded({cols}, dtype, 3) : Tensor();
  const Tensor gy = rounded(shape, dtype, 4);
  auto gpu = [&](const Tensor& t) { return t.defined() ? t.to(dtype).to(kCuda) : Tensor(); };

  const Tensor x = view(x_base);
  auto [y, mean, rstd] = ops::layer_norm_forward(x, 1, w, b, o.eps);
  auto [gx, gw, gb] = ops::layer_norm_backward(gy, x, mean, rstd, 1, w, o.weight, o.bias);

  const Tensor xg = view(gpu(x_base));
  auto [yg, mean_g, rstd_g] = ops::layer_norm_forward(xg, 1, gpu(w), gpu(b), o.eps);
  auto [gxg, gwg, gbg] = ops::layer_norm_backward(gpu(gy), xg, mean_g, rstd_g, 1, gpu(w), o.weight, o.bias);

  const std::string what = std::string(dtype_name(dtype)) + " " + shape_str(shape) + (o.weight ? " weight" : "") +
                           (o.bias ? " bias" : "") + (o.transposed_input ? " transposed" : "");
  EXPECT_EQ(yg.dtype(), dtype) << what;
  EXPECT_EQ(mean_g.dtype(), dtype == DType::f64 ? DType::f64 : DType::f32) << what;
  EXPECT_TRUE(close(yg, y, rtol)) << what << " y";
  // bf16/f16 statistics are f32 math on the GPU against double math on the CPU: tight but not 1e-5.
  const double stat_rtol = dtype == DType::bf16 || dtype == DType::f16 ? 1e-4 : rtol;
  EXPECT_TRUE(close(mean_g, mean, stat_rtol)) << what << " mean";
  EXPECT_TRUE(close(rstd_g, rstd, stat_rtol)) << what << " rstd";
  EXPECT_TRUE(close(gxg, gx, rtol)) << what << " grad_x";
  EXPECT_EQ(gwg.defined(), o.weight) << what;
  EXPECT_EQ(gbg.defined(), o.bias) << what;
  if (o.weight) {
    EXPECT_TRUE(close(gwg, gw, rtol)) << what << " grad_weight";
  }
  if (o.bias) {
    EXPECT_TRUE(close(gbg, gb, rtol)) << what << " grad_bias";
  }
}

void expect_widths_match(DType dtype, double rtol) {
  for (int64_t cols : {1, 7, 384, 1000}) {
    expect_layer_norm_matches(dtype, rtol, {2, 35}, cols, {});                                  // 70 rows: chunks 32, 32, 6
    expect_layer_norm_matches(dtype, rtol, {3}, cols, {.weight = false, .bias = false});        // no parameters
    expect_layer_norm_matches(dtype, rtol, {33}, cols, {.weight = true, .bias = false});        // weight only
    expect_layer_norm_matches(dtype, rtol, {5}, cols, {.weight = false, .bias = true, .eps = 1e-12});  // BERT's eps
  }
}

}  // namespace

TEST(CudaLayerNorm, F32MatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  expect_widths_match(DType::f32, 1e-5);
}

TEST(CudaLayerNorm, F64MatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  expect_widths_match(DType::f64, 1e-12);
}

TEST(CudaLayerNorm, Bf16MatchesCpuOnRoundedInputs) {
  GRAFT_REQUIRE_CUDA();
  expect_widths_match(DType::bf16, 1e-2);
}

TEST(CudaLayerNorm, F16MatchesCpuOnRoundedInputs) {
  GRAFT_REQUIRE_CUDA();
  expect_widths_match(DType::f16, 1e-2);
}

TEST(CudaLayerNorm, ManyRowsAndNonContiguousInputMatchCpu) {
  GRAFT_REQUIRE_CUDA();
  expect_layer_norm_matches(DType::f32, 1e-5, {1000}, 7, {});  // many short rows, 32 chunks
  expect_layer_norm_matches(DType::f32, 1e-5, {4096}, 384, {});  // BERT-base's LayerNorm at batch 32 x 128
  expect_layer_norm_matches(DType::f32, 1e-5, {33}, 384, {.transposed_input = true});
}

TEST(CudaLayerNorm, RunsAreBitIdentical) {
  GRAFT_REQUIRE_CUDA();
  const Tensor x = random_cpu({70, 1000}, DType::f32, 1).to(kCuda), gy = random_cpu({70, 1000}, DType::f32, 2).to(kCuda);
  const Tensor w = random_cpu({1000}, DType::f32, 3).to(kCuda), b = random_cpu({1000}, DType::f32, 4).to(kCuda);
  auto run = [&] {
    auto [y, mean, rstd] = ops::layer_norm_forward(x, 1, w, b, 1e-5);
    auto [gx, gw, gb] = ops::layer_norm_backward(gy, x, mean, rstd, 1, w, true, true);
    std::vector<float> all;
    for (const Tensor& t : {y, mean, rstd, gx, gw, gb}) {
      const auto v = t.to_vector<float>();
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  const auto first = run(), second = run();
  ASSERT_EQ(first.size(), second.size());
  EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)), 0);
}

TEST(CudaLayerNorm, EmptyRowsGiveZeroParameterGradients) {
  GRAFT_REQUIRE_CUDA();
  const Tensor x = random_cpu({0, 7}).to(kCuda), w = random_cpu({7}).to(kCuda);
  auto [y, mean, rstd] = ops::layer_norm_forward(x, 1, w, Tensor(), 1e-5);
  EXPECT_EQ(y.shape(), (Shape{0, 7}));
  auto [gx, gw, gb] = ops::layer_norm_backward(x, x, mean, rstd, 1, w, true, true);
  for (float v : gw.to_vector<float>()) EXPECT_EQ(v, 0.f);
  for (float v : gb.to_vector<float>()) EXPECT_EQ(v, 0.f);
}

TEST(CudaLayerNorm, AutogradMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  const Tensor x0 = random_cpu({6, 384}, DType::f32, 1), w0 = random_cpu({384}, DType::f32, 2);
  const Tensor b0 = random_cpu({384}, DType::f32, 3), gy = random_cpu({6, 384}, DType::f32, 4);
  auto grads = [&](Device device) {
    Tensor x = x0.to(device).detach().requires_grad_(), w = w0.to(device).detach().requires_grad_();
    Tensor b = b0.to(device).detach().requires_grad_();
    layer_norm(x, {384}, w, b, 1e-12).backward(gy.to(device));
    return std::vector<Tensor>{x.grad(), w.grad(), b.grad()};
  };
  const auto want = grads(Device::cpu()), got = grads(kCuda);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(close(got[i], want[i], 1e-5)) << "gradient " << i;
}

TEST(CudaLayerNorm, ErrorsAreTyped) {
  GRAFT_REQUIRE_CUDA();
  const Tensor x = random_cpu({3, 7}).to(kCuda), w = random_cpu({7});
  EXPECT_THROW(ops::layer_norm_forward(x, 1, w, Tensor(), 1e-5), DeviceError);
  EXPECT_THROW(ops::layer_norm_forward(x, 1, w.to(DType::f64).to(kCuda), Tensor(), 1e-5), DTypeError);
  EXPECT_THROW(ops::layer_norm_forward(x, 1, random_cpu({6}).to(kCuda), Tensor(), 1e-5), ShapeError);
  EXPECT_THROW(ops::layer_norm_forward(randint(0, 5, {3, 7}).to(kCuda), 1, Tensor(), Tensor(), 1e-5), DTypeError);
  auto [y, mean, rstd] = ops::layer_norm_forward(x, 1, Tensor(), Tensor(), 1e-5);
  EXPECT_THROW(ops::layer_norm_backward(x, x, mean.to(Device::cpu()), rstd, 1, Tensor(), false, false), DeviceError);
  EXPECT_THROW(ops::layer_norm_backward(x.to(Device::cpu()), x, mean, rstd, 1, Tensor(), false, false), DeviceError);
  EXPECT_THROW(ops::layer_norm_backward(x, x, mean.to(DType::f64), rstd, 1, Tensor(), false, false), ValueError);
}
