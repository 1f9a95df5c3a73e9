// The fused scaled-dot-product attention on CUDA (kernels/attention/cuda.cu through the fused
// autograd node) against the CPU's fused kernel on the same random inputs: the output and the
// gradients of q, k, v from backward(), for odd and tile-crossing sizes, Sq != Sk, Dv != D, head dim
// 128, causal, key padding with fully masked rows, dropout with the same seed, strided and broadcast
// views, bf16/f16 on rounded inputs; bit-identical reruns; typed errors.
// Shape letters: B batch, H heads, Sq queries, Sk keys, D head dim of q and k, Dv head dim of v.
#include <cmath>
#include <functional>
#include <vector>

#include "graft.h"
#include "tests/cuda/cuda_test_util.h"

using namespace graft;
using graft::testing::all_close;
using graft::testing::default_rtol;
using graft::testing::random_cpu;

namespace {

using Impl = AttentionImplementation;

struct Dims {
  int64_t B, H, Sq, Sk, D, Dv;
};

struct Inputs {
  Tensor q, k, v, dout;  // CPU, f32
};

Inputs random_inputs(const Dims& d) {
  return {random_cpu({d.B, d.H, d.Sq, d.D}, DType::f32, 1), random_cpu({d.B, d.H, d.Sk, d.D}, DType::f32, 2),
          random_cpu({d.B, d.H, d.Sk, d.Dv}, DType::f32, 3), random_cpu({d.B, d.H, d.Sq, d.Dv}, DType::f32, 4)};
}

struct AttentionRun {
  Tensor out, dq, dk, dv;
};

// Maps the three leaves to the q, k, v given to attention (views of them, or themselves).
using Views = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
std::vector<Tensor> same(const std::vector<Tensor>& leaves) { return leaves; }

// out and the gradients of the leaves under out.backward(dout), with q, k, v and dout (given on
// the CPU in f32) converted to `dtype` and moved to `device`.
AttentionRun run_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout,
                           AttentionOptions options, Device device, DType dtype, const Views& views = same) {
  std::vector<Tensor> leaves;
  for (const Tensor& t : {q, k, v}) {
    Tensor leaf = t.to(dtype).to(device).detach();  // detach: a fresh leaf even where to() changed nothing
    leaf.requires_grad_();
    leaves.push_back(leaf);
  }
  if (options.key_padding_mask.defined()) options.key_padding_mask = options.key_padding_mask.to(device);
  const std::vector<Tensor> qkv = views(leaves);
  const Tensor out = scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], options, Impl::fused);
  out.backward(dout.to(dtype).to(device));
  return {out.detach(), leaves[0].grad(), leaves[1].grad(), leaves[2].grad()};
}

AttentionRun run_cuda(const Inputs& in, const AttentionOptions& options, DType dtype = DType::f32,
                      const Views& views = same) {
  return run_attention(in.q, in.k, in.v, in.dout, options, Device::cuda(), dtype, views);
}

// The CPU's fused f32 kernel on the inputs rounded to `dtype` first (what the GPU was given).
AttentionRun run_cpu(const Inputs& in, const AttentionOptions& options, DType dtype = DType::f32,
                     const Views& views = same) {
  auto rounded = [dtype](const Tensor& t) { return t.to(dtype).to(DType::f32); };
  return run_attention(rounded(in.q), rounded(in.k), rounded(in.v), rounded(in.dout), options, Device::cpu(),
                       DType::f32, views);
}

// all_close with the tolerance relative to the CPU result's scale: max |want|, at least 0.1 (with
// one key the softmax is constant and dq, dk are rounding residue around zero on either device).
::testing::AssertionResult close(const Tensor& got, const Tensor& want, double rtol) {
  double scale = 0.1;
  for (double x : want.to(Device::cpu()).to(DType::f64).to_vector<double>()) scale = std::fmax(scale, std::fabs(x));
  return all_close(got, want, rtol, rtol * scale);
}

void expect_same_as_cpu(const AttentionRun& gpu, const AttentionRun& cpu, double rtol, const std::string& what) {
  EXPECT_TRUE(close(gpu.out, cpu.out, rtol)) << "out of " << what;
  EXPECT_TRUE(close(gpu.dq, cpu.dq, rtol)) << "dq of " << what;
  EXPECT_TRUE(close(gpu.dk, cpu.dk, rtol)) << "dk of " << what;
  EXPECT_TRUE(close(gpu.dv, cpu.dv, rtol)) << "dv of " << what;
}

std::string dims_str(const Dims& d) {
  return "B " + std::to_string(d.B) + " H " + std::to_string(d.H) + " Sq " + std::to_string(d.Sq) + " Sk " +
         std::to_string(d.Sk) + " D " + std::to_string(d.D) + " Dv " + std::to_string(d.Dv);
}

// GPU against CPU, f32, on fresh inputs of these dims.
void expect_f32_matches_cpu(const Dims& d, const AttentionOptions& options = {}) {
  const Inputs in = random_inputs(d);
  expect_same_as_cpu(run_cuda(in, options), run_cpu(in, options), default_rtol(DType::f32),
                     dims_str(d) + (options.causal ? " causal" : ""));
}

// A bool [B, Sk] key padding mask (CPU) from per-batch lists of masked keys.
Tensor padding_mask(int64_t B, int64_t Sk, const std::vector<std::vector<int64_t>>& masked) {
  std::vector<bool> m(static_cast<size_t>(B * Sk), false);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j : masked[static_cast<size_t>(b)]) m[static_cast<size_t>(b * Sk + j)] = true;
  return from_vector<bool>(m, {B, Sk});
}

bool all_finite(const Tensor& t) {
  for (double x : t.to(Device::cpu()).to(DType::f64).to_vector<double>())
    if (!std::isfinite(x)) return false;
  return true;
}

// The bits of t as f32 (exact for bf16 and f16), for bit-identity checks.
std::vector<float> bits(const Tensor& t) { return t.to(Device::cpu()).to(DType::f32).to_vector<float>(); }

}  // namespace

TEST(CudaAttention, OneQueryOneKeyHeadDimOne) {
  GRAFT_REQUIRE_CUDA();
  expect_f32_matches_cpu({1, 1, 1, 1, 1, 1});
}

TEST(CudaAttention, OddSizesAcrossTiles) {
  GRAFT_REQUIRE_CUDA();
  expect_f32_matches_cpu({2, 3, 37, 53, 64, 64});
  expect_f32_matches_cpu({1, 2, 65, 129, 7, 7});  // one past the 64-row tiles
}

TEST(CudaAttention, ManyHeads) {
  GRAFT_REQUIRE_CUDA();
  expect_f32_matches_cpu({2, 12, 128, 128, 32, 32});
}

TEST(CudaAttention, QueriesAndKeysOfDifferentLengthsAndHeadDims) {
  GRAFT_REQUIRE_CUDA();
  expect_f32_matches_cpu({1, 2, 70, 130, 24, 40});  // Sq < Sk, Dv > D
  expect_f32_matches_cpu({2, 1, 100, 33, 16, 5});   // Sq > Sk, Dv < D
}

TEST(CudaAttention, HeadDim128) {
  GRAFT_REQUIRE_CUDA();
  expect_f32_matches_cpu({1, 2, 65, 70, 128, 128});
  expect_f32_matches_cpu({1, 1, 9, 20, 128, 3});
  expect_f32_matches_cpu({1, 1, 9, 20, 5, 128});
}

TEST(CudaAttention, LongKeySequence) {
  GRAFT_REQUIRE_CUDA();
  expect_f32_matches_cpu({1, 2, 33, 1025, 16, 16});
}

TEST(CudaAttention, Causal) {
  GRAFT_REQUIRE_CUDA();
  AttentionOptions options;
  options.causal = true;
  expect_f32_matches_cpu({2, 3, 130, 130, 32, 32}, options);
  expect_f32_matches_cpu({1, 2, 70, 40, 16, 24}, options);   // Sq > Sk
  expect_f32_matches_cpu({1, 2, 40, 150, 16, 8}, options);   // Sq < Sk
  options.scale = 0.3;
  expect_f32_matches_cpu({1, 1, 1, 1, 1, 1}, options);
}

TEST(CudaAttention, KeyPaddingWithFullyMaskedRowsGivesZerosNotNaN) {
  GRAFT_REQUIRE_CUDA();
  const Dims d{2, 3, 37, 70, 16, 12};
  const Inputs in = random_inputs(d);
  // Batch 1: every key masked. Batch 0: keys 0..2 and a whole tile's worth further on; under
  // causal its first three queries then see only masked keys.
  std::vector<int64_t> batch0{0, 1, 2};
  for (int64_t j = 5; j < 69; ++j) batch0.push_back(j);
  std::vector<int64_t> batch1;
  for (int64_t j = 0; j < d.Sk; ++j) batch1.push_back(j);
  AttentionOptions options;
  options.key_padding_mask = padding_mask(d.B, d.Sk, {batch0, batch1});
  for (bool causal : {false, true}) {
    options.causal = causal;
    const AttentionRun gpu = run_cuda(in, options), cpu = run_cpu(in, options);
    const std::string what = std::string("key padding") + (causal ? " + causal" : "");
    expect_same_as_cpu(gpu, cpu, default_rtol(DType::f32), what);
    for (const Tensor& t : {gpu.out, gpu.dq, gpu.dk, gpu.dv}) EXPECT_TRUE(all_finite(t)) << what;
    // Batch 1 is all masked: its output and every gradient are exactly zero.
    for (const Tensor& t : {gpu.out, gpu.dq, gpu.dk, gpu.dv})
      for (float x : bits(t.to(Device::cpu()).select(0, 1))) ASSERT_EQ(x, 0.0f) << what;
    if (causal) {  // batch 0's first three queries see only masked keys
      for (const Tensor& t : {gpu.out, gpu.dq})
        for (float x : bits(t.to(Device::cpu()).select(0, 0).narrow(1, 0, 3))) ASSERT_EQ(x, 0.0f) << what;
    }
  }
}

TEST(CudaAttention, DropoutMatchesCpuForTheSameSeed) {
  GRAFT_REQUIRE_CUDA();
  const Dims d{2, 3, 37, 53, 16, 24};
  const Inputs in = random_inputs(d);
  AttentionOptions options;
  options.dropout_p = 0.1;
  for (bool causal : {false, true}) {
    options.causal = causal;
    Generator gpu_gen(1234), cpu_gen(1234);
    options.generator = &gpu_gen;
    const AttentionRun gpu = run_cuda(in, options);
    options.generator = &cpu_gen;
    const AttentionRun cpu = run_cpu(in, options);
    expect_same_as_cpu(gpu, cpu, default_rtol(DType::f32), causal ? "dropout + causal" : "dropout");
    // The mask really dropped something: the output differs from the one without dropout.
    AttentionOptions no_dropout;
    no_dropout.causal = causal;
    EXPECT_FALSE(close(gpu.out, run_cuda(in, no_dropout).out, 1e-3));
  }
}

TEST(CudaAttention, StridedAndBroadcastViews) {
  GRAFT_REQUIRE_CUDA();
  const int64_t B = 2, H = 3, Sq = 37, Sk = 53, D = 16, Dv = 24;
  // q from [B, Sq, H, D] (heads split off the features, as attention layers make them), k a slice
  // of wider rows, v one head broadcast over all H; the grads flow back to those bases.
  const Tensor q = random_cpu({B, Sq, H, D}, DType::f32, 1), k = random_cpu({B, H, Sk, D + 5}, DType::f32, 2),
               v = random_cpu({B, 1, Sk, Dv}, DType::f32, 3), dout = random_cpu({B, H, Sq, Dv}, DType::f32, 4);
  const Views views = [=](const std::vector<Tensor>& x) {
    return std::vector<Tensor>{x[0].transpose(1, 2), x[1].narrow(3, 2, D), x[2].expand({B, H, Sk, Dv})};
  };
  AttentionOptions options;
  options.causal = true;
  const AttentionRun gpu = run_attention(q, k, v, dout, options, Device::cuda(), DType::f32, views);
  const AttentionRun cpu = run_attention(q, k, v, dout, options, Device::cpu(), DType::f32, views);
  expect_same_as_cpu(gpu, cpu, default_rtol(DType::f32), "strided views");
  // A last dim that is not contiguous (k^T transposed back): the node copies it first.
  const Tensor kt = random_cpu({B, H, D, Sk}, DType::f32, 5);
  const Views transposed = [](const std::vector<Tensor>& x) {
    return std::vector<Tensor>{x[0], x[1].transpose(2, 3), x[2]};
  };
  const Tensor q2 = random_cpu({B, H, Sq, D}, DType::f32, 6), v2 = random_cpu({B, H, Sk, Dv}, DType::f32, 7);
  expect_same_as_cpu(run_attention(q2, kt, v2, dout, {}, Device::cuda(), DType::f32, transposed),
                     run_attention(q2, kt, v2, dout, {}, Device::cpu(), DType::f32, transposed),
                     default_rtol(DType::f32), "non-contiguous last dim");
}

TEST(CudaAttention, HalfPrecisionMatchesCpuOnRoundedInputs) {
  GRAFT_REQUIRE_CUDA();
  const Dims d{2, 3, 37, 53, 64, 32};
  const Inputs in = random_inputs(d);
  AttentionOptions options;
  options.key_padding_mask = padding_mask(d.B, d.Sk, {{0, 7}, {50, 51, 52}});
  for (DType dtype : {DType::bf16, DType::f16})
    for (bool causal : {false, true}) {
      options.causal = causal;
      const AttentionRun gpu = run_cuda(in, options, dtype);
      EXPECT_EQ(gpu.out.dtype(), dtype);
      EXPECT_EQ(gpu.dq.dtype(), dtype);
      expect_same_as_cpu(gpu, run_cpu(in, options, dtype), 1e-2,
                         std::string(dtype_name(dtype)) + (causal ? " causal" : ""));
    }
}

TEST(CudaAttention, BitIdenticalTwice) {
  GRAFT_REQUIRE_CUDA();
  const Dims d{2, 4, 100, 130, 32, 48};
  const Inputs in = random_inputs(d);
  AttentionOptions options;
  options.causal = true;
  options.dropout_p = 0.1;
  options.key_padding_mask = padding_mask(d.B, d.Sk, {{3, 4}, {}});
  for (DType dtype : {DType::f32, DType::bf16}) {
    Generator first_gen(99), second_gen(99);
    options.generator = &first_gen;
    const AttentionRun first = run_cuda(in, options, dtype);
    options.generator = &second_gen;
    const AttentionRun second = run_cuda(in, options, dtype);
    EXPECT_EQ(bits(first.out), bits(second.out)) << dtype_name(dtype);
    EXPECT_EQ(bits(first.dq), bits(second.dq)) << dtype_name(dtype);
    EXPECT_EQ(bits(first.dk), bits(second.dk)) << dtype_name(dtype);
    EXPECT_EQ(bits(first.dv), bits(second.dv)) << dtype_name(dtype);
  }
}

TEST(CudaAttention, HeadDimAbove128IsNotFused) {
  GRAFT_REQUIRE_CUDA();
  const Tensor small = random_cpu({1, 1, 4, 8}).to(Device::cuda());
  const Tensor wide = random_cpu({1, 1, 4, 129}).to(Device::cuda());
  EXPECT_THROW(scaled_dot_product_attention(wide, wide, small, {}, Impl::fused), NotImplementedError);  // D
  EXPECT_THROW(scaled_dot_product_attention(small, small, wide, {}, Impl::fused), NotImplementedError);  // Dv
}

TEST(CudaAttention, MixedDevicesThrowDeviceError) {
  GRAFT_REQUIRE_CUDA();
  const Tensor cpu = random_cpu({1, 2, 5, 8});
  const Tensor gpu = cpu.to(Device::cuda());
  EXPECT_THROW(scaled_dot_product_attention(gpu, cpu, gpu), DeviceError);
  EXPECT_THROW(scaled_dot_product_attention(gpu, gpu, cpu), DeviceError);
  AttentionOptions options;
  options.key_padding_mask = padding_mask(1, 5, {{0}});  // left on the CPU
  EXPECT_THROW(scaled_dot_product_attention(gpu, gpu, gpu, options), DeviceError);
}
