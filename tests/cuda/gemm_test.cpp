// matmul / linear on CUDA (cuBLASLt) against the CPU on the same fresh random inputs: odd sizes,
// batch broadcast, transposed and sliced views, f32 / f64 / tf32 / bf16 / f16, the bias and
// gelu_bias epilogues, and the errors that can be checked.
//
// Tolerances: relative at the dtype's rtol, with an absolute floor of rtol * max(|A| |B|), because
// an output that cancels to near zero carries the rounding of its large terms (the standard GEMM
// error bound is proportional to |A| |B|, not to |A B|).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cuda_test_util.h"
#include "kernels/gemm/gemm.h"  // gemm_cuda with the gelu_bias epilogue, the TF32 switch
#include "tensor/ops.h"

namespace {

using namespace graft;
using graft::testing::all_close;
using graft::testing::random_cpu;

const Device kCuda = Device::cuda(0);

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to(Device::cpu()).to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

// The scale of a product's rounding error: max over the output of sum_k |a_ik| |b_kj| (CPU operands).
double product_scale(const Tensor& a, const Tensor& b) {
  const DType dtype = a.dtype() == DType::f64 ? DType::f64 : DType::f32;
  return max_abs(matmul(abs(a.to(dtype)), abs(b.to(dtype))));
}

::testing::AssertionResult close(const Tensor& got, const Tensor& want, double rtol, double scale) {
  return all_close(got, want, rtol, rtol * scale);
}

// Random values already rounded to `dtype` (kept in f32 on the CPU): the CPU reference and the GPU
// then see the same numbers.
Tensor rounded_cpu(const Shape& shape, DType dtype, uint64_t salt) {
  return random_cpu(shape, DType::f32, salt).to(dtype).to(DType::f32);
}

class Tf32Scope {
 public:
  explicit Tf32Scope(bool on) : previous_(kernels::cuda_allow_tf32()) { kernels::set_cuda_allow_tf32(on); }
  ~Tf32Scope() { kernels::set_cuda_allow_tf32(previous_); }

 private:
  bool previous_;
};

// a [.., M, K] x b [.., K, N] on both devices (the CPU result in f32/f64 of the same values).
void expect_matmul_matches(const Tensor& a, const Tensor& b, DType dtype, double rtol) {
  const DType cpu_dtype = dtype == DType::f64 ? DType::f64 : DType::f32;
  const Tensor want = matmul(a.to(cpu_dtype), b.to(cpu_dtype));
  const Tensor got = matmul(a.to(dtype).to(kCuda), b.to(dtype).to(kCuda));
  EXPECT_EQ(got.device(), kCuda);
  EXPECT_EQ(got.dtype(), dtype);
  EXPECT_TRUE(close(got, want, rtol, product_scale(a, b))) << "a " << shape_str(a.shape()) << " b " << shape_str(b.shape()) << " "
                                      << dtype_name(dtype);
}

struct Mkn {
  int64_t M, K, N;
};
const Mkn kSizes[] = {{1, 1, 1}, {7, 33, 5}, {128, 256, 64}, {33, 1000, 7}, {1, 1000, 1}, {65, 17, 129}};

void expect_shapes_match(DType dtype, double rtol) {
  const DType src = dtype == DType::f64 ? DType::f64 : DType::f32;
  uint64_t salt = 0;
  for (const Mkn& s : kSizes) {
    const Tensor a = rounded_cpu({s.M, s.K}, dtype, ++salt).to(src);
    const Tensor b = rounded_cpu({s.K, s.N}, dtype, ++salt).to(src);
    expect_matmul_matches(a, b, dtype, rtol);
  }
}

}  // namespace

TEST(CudaGemm, MatmulF32MatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  expect_shapes_match(DType::f32, 1e-5);
}

TEST(CudaGemm, MatmulF64MatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  expect_shapes_match(DType::f64, 1e-12);
}

TEST(CudaGemm, MatmulTf32MatchesCpuWhenAllowed) {
  GRAFT_REQUIRE_CUDA();
  Tf32Scope tf32(true);
  expect_shapes_match(DType::f32, 1e-3);
}

TEST(CudaGemm, MatmulBf16MatchesCpuOnRoundedInputs) {
  GRAFT_REQUIRE_CUDA();
  expect_shapes_match(DType::bf16, 1e-2);
}

TEST(CudaGemm, MatmulF16MatchesCpuOnRoundedInputs) {
  GRAFT_REQUIRE_CUDA();
  expect_shapes_match(DType::f16, 1e-2);
}

TEST(CudaGemm, BatchedAndBroadcastBatchMatchCpu) {
  GRAFT_REQUIRE_CUDA();
  // same batch; b broadcast over a's batch (folded into one GEMM); a broadcast over b's (stride 0);
  // broadcast on both sides; 1-D operands.
  expect_matmul_matches(random_cpu({4, 7, 33}, DType::f32, 1), random_cpu({4, 33, 5}, DType::f32, 2), DType::f32, 1e-5);
  expect_matmul_matches(random_cpu({2, 3, 7, 33}, DType::f32, 3), random_cpu({33, 5}, DType::f32, 4), DType::f32, 1e-5);
  expect_matmul_matches(random_cpu({7, 33}, DType::f32, 5), random_cpu({3, 33, 9}, DType::f32, 6), DType::f32, 1e-5);
  expect_matmul_matches(random_cpu({2, 1, 7, 33}, DType::f32, 7), random_cpu({1, 3, 33, 5}, DType::f32, 8), DType::f32,
                        1e-5);
  expect_matmul_matches(random_cpu({33}, DType::f32, 9), random_cpu({33, 5}, DType::f32, 10), DType::f32, 1e-5);
  expect_matmul_matches(random_cpu({3, 7, 33}, DType::f32, 11), random_cpu({33}, DType::f32, 12), DType::f32, 1e-5);
  expect_matmul_matches(random_cpu({2, 5, 64, 32}, DType::bf16, 13), random_cpu({2, 5, 32, 48}, DType::bf16, 14),
                        DType::bf16, 1e-2);
}

TEST(CudaGemm, TransposedAndSlicedViewsMatchCpu) {
  GRAFT_REQUIRE_CUDA();
  // Each view is taken on each device from the same base, so the GPU GEMM gets the strided view
  // itself (moving a view with .to() would hand it a contiguous copy).
  auto check = [](const Tensor& a_base, const Tensor& b_base, auto view_a, auto view_b) {
    const Tensor want = matmul(view_a(a_base), view_b(b_base));
    const Tensor got = matmul(view_a(a_base.to(kCuda)), view_b(b_base.to(kCuda)));
    EXPECT_TRUE(close(got, want, 1e-5, product_scale(view_a(a_base), view_b(b_base)))) << "a " << shape_str(a_base.shape()) << " b " << shape_str(b_base.shape());
  };
  auto same = [](const Tensor& t) { return t; };
  auto t2 = [](const Tensor& t) { return t.transpose(-1, -2); };
  // transposes (op = T on one or both sides, also batched)
  check(random_cpu({33, 7}, DType::f32, 1), random_cpu({33, 5}, DType::f32, 2), t2, same);
  check(random_cpu({7, 33}, DType::f32, 3), random_cpu({5, 33}, DType::f32, 4), same, t2);
  check(random_cpu({129, 65}, DType::f32, 5), random_cpu({17, 129}, DType::f32, 6), t2, t2);
  check(random_cpu({4, 33, 7}, DType::f32, 7), random_cpu({4, 5, 33}, DType::f32, 8), t2, t2);
  // slices: a leading dimension larger than the row, and a start that is not 16-byte aligned
  auto cols_3_to_36 = [](const Tensor& t) { return t.slice(-1, 3, 36); };
  auto rows_1_to_34 = [](const Tensor& t) { return t.slice(-2, 1, 34); };
  check(random_cpu({7, 40}, DType::f32, 9), random_cpu({35, 5}, DType::f32, 10), cols_3_to_36, rows_1_to_34);
  check(random_cpu({3, 7, 40}, DType::f32, 11), random_cpu({3, 35, 6}, DType::f32, 12), cols_3_to_36, rows_1_to_34);
}

TEST(CudaGemm, EmptyInnerDimGivesZeros) {
  GRAFT_REQUIRE_CUDA();
  const Tensor got = matmul(random_cpu({3, 0}).to(kCuda), random_cpu({0, 4}).to(kCuda));
  ASSERT_EQ(got.shape(), (Shape{3, 4}));
  for (float v : got.to_vector<float>()) EXPECT_EQ(v, 0.f);
}

TEST(CudaGemm, LinearWithAndWithoutBiasMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  for (int64_t out : {5, 16, 64}) {
    const Tensor x = random_cpu({4, 7, 33}, DType::f32, 1), w = random_cpu({out, 33}, DType::f32, 2);
    const Tensor bias = random_cpu({out}, DType::f32, 3), bias_base = random_cpu({out + 1}, DType::f32, 4);
    const double scale = product_scale(x, w.t()) + std::max(max_abs(bias), max_abs(bias_base));
    const Tensor xg = x.to(kCuda), wg = w.to(kCuda);
    EXPECT_TRUE(close(ops::linear(xg, wg, Tensor()), ops::linear(x, w, Tensor()), 1e-5, scale)) << out;
    EXPECT_TRUE(close(ops::linear(xg, wg, bias.to(kCuda)), ops::linear(x, w, bias), 1e-5, scale)) << out;
    // A bias view that starts 4 bytes into its storage: not aligned as cuBLASLt's epilogue may want.
    // (Moved by .to(), it becomes a fresh tensor; the view is taken on the GPU.)
    EXPECT_TRUE(close(ops::linear(xg, wg, bias_base.to(kCuda).slice(0, 1, out + 1)),
                      ops::linear(x, w, bias_base.slice(0, 1, out + 1)), 1e-5, scale))
        << out;
    // bf16 end to end (the CPU on the rounded values in f32)
    const Tensor xr = rounded_cpu({4, 7, 33}, DType::bf16, 5), wr = rounded_cpu({out, 33}, DType::bf16, 6);
    const Tensor br = rounded_cpu({out}, DType::bf16, 7);
    const Tensor got = ops::linear(xr.to(DType::bf16).to(kCuda), wr.to(DType::bf16).to(kCuda), br.to(DType::bf16).to(kCuda));
    EXPECT_EQ(got.dtype(), DType::bf16);
    EXPECT_TRUE(close(got, ops::linear(xr, wr, br), 1e-2, product_scale(xr, wr.t()) + max_abs(br))) << out;
  }
}

TEST(CudaGemm, RunsAreBitIdentical) {
  GRAFT_REQUIRE_CUDA();
  const Tensor a = random_cpu({128, 256}, DType::f32, 1).to(kCuda), b = random_cpu({256, 64}, DType::f32, 2).to(kCuda);
  const auto first = matmul(a, b).to_vector<float>(), second = matmul(a, b).to_vector<float>();
  ASSERT_EQ(first.size(), second.size());
  EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)), 0);
}

#if GRAFT_WITH_CUDA  // gemm_cuda is defined only in CUDA builds (elsewhere these tests skip anyway)
namespace {

// gemm_cuda called directly with the gelu_bias epilogue: C = gelu_tanh(A B + bias), aux = A B + bias.
void expect_gelu_bias_matches(int64_t batch, int64_t M, int64_t K, int64_t N, DType ab, double rtol) {
  const Tensor a = rounded_cpu({batch, M, K}, ab, 1), b = rounded_cpu({batch, K, N}, ab, 2);
  const Tensor bias = random_cpu({N}, DType::f32, 3);
  const Tensor pre = matmul(a, b) + bias;
  const Tensor want = gelu(pre, GeluApproximation::tanh);
  const double scale = product_scale(a, b) + max_abs(bias);

  const Tensor a_gpu = a.to(ab).to(kCuda), b_gpu = b.to(ab).to(kCuda), bias_gpu = bias.to(kCuda);
  const Tensor c = empty({batch, M, N}, TensorOptions(DType::f32).with_device(kCuda));
  const Tensor aux = empty({batch, M, N}, TensorOptions(DType::f32).with_device(kCuda));
  kernels::CudaGemmArgs args;
  args.shape.batch = batch;
  args.shape.M = M;
  args.shape.N = N;
  args.shape.K = K;
  args.shape.lda = K;
  args.shape.ldb = N;
  args.shape.batch_stride_a = M * K;
  args.shape.batch_stride_b = K * N;
  args.ab_type = ab == DType::bf16 ? kernels::GemmType::bf16 : kernels::GemmType::f32;
  args.c_type = kernels::GemmType::f32;  // bf16 inputs with an f32 C: autocast's case
  args.a = a_gpu.data_ptr();
  args.b = b_gpu.data_ptr();
  args.c = c.data_ptr();
  args.bias = bias_gpu.data_ptr();
  args.aux = aux.data_ptr();
  args.epilogue = kernels::GemmEpilogue::gelu_bias;
  args.device = kCuda.index;
  kernels::gemm_cuda(args);
  const std::string what = "batch " + std::to_string(batch) + " M " + std::to_string(M) + " K " + std::to_string(K) +
                           " N " + std::to_string(N) + " " + dtype_name(ab);
  EXPECT_TRUE(close(aux, pre, rtol, scale)) << what;
  // cuBLASLt may evaluate tanh with the hardware approximation (about 11 bits): 1e-3 for the activation.
  EXPECT_TRUE(close(c, want, std::max(rtol, 1e-3), scale)) << what;
}

}  // namespace
#endif

TEST(CudaGemm, GeluBiasEpilogueMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
#if GRAFT_WITH_CUDA
  expect_gelu_bias_matches(1, 7, 33, 16, DType::f32, 1e-5);    // N % 8 == 0: cuBLASLt's fused epilogue if it has one
  expect_gelu_bias_matches(1, 7, 33, 5, DType::f32, 1e-5);     // N odd: plain GEMM + the epilogue kernel
  expect_gelu_bias_matches(3, 64, 128, 96, DType::f32, 1e-5);  // batched
  expect_gelu_bias_matches(2, 33, 64, 40, DType::bf16, 1e-2);  // bf16 inputs, f32 output
#endif
}

TEST(CudaGemm, ErrorsAreTyped) {
  GRAFT_REQUIRE_CUDA();
  const Tensor a = random_cpu({3, 4}), b = random_cpu({4, 5});
  EXPECT_THROW(matmul(a, b.to(kCuda)), DeviceError);
  EXPECT_THROW(matmul(a.to(kCuda), b), DeviceError);
  EXPECT_THROW(ops::linear(a.to(kCuda), random_cpu({5, 4}).to(kCuda), random_cpu({5})), DeviceError);
  EXPECT_THROW(matmul(a.to(kCuda), b.to(DType::f64).to(kCuda)), DTypeError);
  EXPECT_THROW(matmul(randint(0, 5, {3, 4}).to(kCuda), randint(0, 5, {4, 5}).to(kCuda)), DTypeError);
  EXPECT_THROW(matmul(a.to(kCuda), random_cpu({3, 5}).to(kCuda)), ShapeError);

#if GRAFT_WITH_CUDA
  kernels::CudaGemmArgs bad;  // f32 inputs cannot give a bf16 C
  bad.shape.M = bad.shape.N = bad.shape.K = bad.shape.lda = bad.shape.ldb = 1;
  bad.c_type = kernels::GemmType::bf16;
  EXPECT_THROW(kernels::gemm_cuda(bad), DTypeError);
#endif
}
