// The fused GRU node on CUDA (kernels/gru/cuda.cu) against the CPU (the fused oneDNN path where
// graft has it, else the reference composite) on the same random inputs: output, h_n and every
// gradient (input, h0, each parameter) through backward(), over layers, directions, layouts, bias,
// h0, unsorted variable lengths, dropout, degenerate and large sizes; plus run-to-run bit
// identity and the errors for mixed devices.
//
// Tolerance: relative to each tensor's scale (atol = rtol * max |CPU value|), since gradients hold
// values near zero whose own relative error means nothing. f32: 1e-5; the H = 256 case uses 1e-4,
// as its 256-term dot products recur over the steps and the two devices sum in different orders.
#include <cmath>
#include <string>
#include <vector>

#include "tests/cuda/cuda_test_util.h"

using namespace graft;
using graft::testing::all_close;
using graft::testing::default_rtol;
using graft::testing::random_cpu;

namespace {

struct Case {
  int64_t T = 5, N = 3, I = 4, H = 7, L = 1;
  bool bidirectional = false, batch_first = false, bias = true, h0 = false;
  std::vector<int64_t> lengths;  // empty: every sequence runs T steps
  double dropout = 0.0;
  bool lengths_on_device = false;

  std::string str() const {
    std::string s = "T=" + std::to_string(T) + " N=" + std::to_string(N) + " I=" + std::to_string(I) +
                    " H=" + std::to_string(H) + " L=" + std::to_string(L) + " bi=" + std::to_string(bidirectional) +
                    " batch_first=" + std::to_string(batch_first) + " bias=" + std::to_string(bias) +
                    " h0=" + std::to_string(h0) + " dropout=" + std::to_string(dropout) + " lengths=[";
    for (int64_t v : lengths) s += std::to_string(v) + " ";
    return s + "]";
  }
  int64_t D() const { return bidirectional ? 2 : 1; }
};

// One problem's values, on the CPU: the inputs and the gradient seeded into [output | h_n].
struct Inputs {
  Tensor input, h0, seed;
  std::vector<Tensor> params;
};

Inputs make_inputs(const Case& c) {
  Inputs in;
  const int64_t D = c.D();
  uint64_t salt = 0;
  in.input = random_cpu(c.batch_first ? Shape{c.N, c.T, c.I} : Shape{c.T, c.N, c.I}, DType::f32, ++salt);
  if (c.h0) in.h0 = random_cpu({c.L * D, c.N, c.H}, DType::f32, ++salt);
  // PyTorch's init scale 1/sqrt(H) keeps the gates away from saturation.
  const double bound = 1.0 / std::sqrt(double(c.H));
  for (int64_t l = 0; l < c.L; ++l)
    for (int64_t d = 0; d < D; ++d) {
      const int64_t in_size = l == 0 ? c.I : D * c.H;
      in.params.push_back(random_cpu({3 * c.H, in_size}, DType::f32, ++salt) * bound);
      in.params.push_back(random_cpu({3 * c.H, c.H}, DType::f32, ++salt) * bound);
      if (c.bias) {
        in.params.push_back(random_cpu({3 * c.H}, DType::f32, ++salt) * bound);
        in.params.push_back(random_cpu({3 * c.H}, DType::f32, ++salt) * bound);
      }
    }
  in.seed = random_cpu({c.T * c.N * D * c.H + c.L * D * c.N * c.H}, DType::f32, ++salt);
  return in;
}

GruOptions options_for(const Case& c) {
  GruOptions o;
  o.num_layers = c.L;
  o.bidirectional = c.bidirectional;
  o.batch_first = c.batch_first;
  o.bias = c.bias;
  o.dropout = c.dropout;
  o.enforce_sorted = false;
  return o;
}

Tensor lengths_tensor(const Case& c, Device device) {
  if (c.lengths.empty()) return Tensor();
  Tensor t = from_vector<int64_t>(c.lengths);
  return c.lengths_on_device ? t.to(device) : t;
}

struct GruRun {
  Tensor output, h_n;
  std::vector<Tensor> grads;
  std::vector<std::string> names;
};

// Fresh leaves on `device` holding the problem's values; forward, then backward of the seed
// through [output | h_n] (both outputs of the one node get a gradient).
GruRun run(const Case& c, const Inputs& in, Device device, GruImplementation impl) {
  auto leaf = [&](const Tensor& t) { return t.defined() ? t.detach().to(device).requires_grad_() : Tensor(); };
  Tensor input = leaf(in.input), h0 = leaf(in.h0);
  std::vector<Tensor> params;
  for (const Tensor& p : in.params) params.push_back(leaf(p));
  GruOptions o = options_for(c);
  Generator dropout_gen(1234);  // the same masks on both devices (drawn on the CPU either way)
  o.generator = &dropout_gen;
  GruResult r = gru(input, h0, params, o, lengths_tensor(c, device), impl);
  cat({reshape(r.output, {-1}), reshape(r.h_n, {-1})}).backward(in.seed.to(device));
  GruRun out{r.output.detach(), r.h_n.detach(), {input.grad()}, {"d input"}};
  if (h0.defined()) {
    out.grads.push_back(h0.grad());
    out.names.push_back("d h0");
  }
  for (size_t i = 0; i < params.size(); ++i) {
    out.grads.push_back(params[i].grad());
    out.names.push_back("d params[" + std::to_string(i) + "]");
  }
  return out;
}

GruRun run_cuda(const Case& c, const Inputs& in) { return run(c, in, Device::cuda(0), GruImplementation::fused); }
GruRun run_cpu(const Case& c, const Inputs& in) { return run(c, in, Device::cpu(), GruImplementation::automatic); }

::testing::AssertionResult close_to_scale(const Tensor& got, const Tensor& want, double rtol) {
  double scale = 0;
  for (double v : want.to_vector<double>()) scale = std::fmax(scale, std::fabs(v));
  return all_close(got, want, rtol, rtol * scale);
}

// rtol 0: every element bit for bit.
void expect_match(const GruRun& got, const GruRun& want, double rtol, const std::string& where) {
  EXPECT_TRUE(got.output.device().is_cuda()) << where;
  EXPECT_TRUE(rtol == 0 ? all_close(got.output, want.output, 0) : close_to_scale(got.output, want.output, rtol))
      << "output " << where;
  EXPECT_TRUE(rtol == 0 ? all_close(got.h_n, want.h_n, 0) : close_to_scale(got.h_n, want.h_n, rtol))
      << "h_n " << where;
  ASSERT_EQ(got.grads.size(), want.grads.size()) << where;
  for (size_t i = 0; i < got.grads.size(); ++i) {
    ASSERT_TRUE(got.grads[i].defined()) << got.names[i] << " missing, " << where;
    ASSERT_TRUE(want.grads[i].defined()) << want.names[i] << " missing on the reference side, " << where;
    EXPECT_TRUE(rtol == 0 ? all_close(got.grads[i], want.grads[i], 0) : close_to_scale(got.grads[i], want.grads[i], rtol))
        << got.names[i] << " " << where;
  }
}

void check_against_cpu(const Case& c, double rtol = default_rtol(DType::f32)) {
  SCOPED_TRACE(c.str());
  const Inputs in = make_inputs(c);
  expect_match(run_cuda(c, in), run_cpu(c, in), rtol, c.str());
}

}  // namespace

TEST(CudaGru, OneLayerMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  check_against_cpu(Case{});
}

TEST(CudaGru, ThreeLayersBidirectionalWithH0MatchCpu) {
  GRAFT_REQUIRE_CUDA();
  Case c;
  c.T = 6, c.N = 4, c.I = 5, c.H = 7, c.L = 3, c.bidirectional = true, c.h0 = true;
  check_against_cpu(c);
}

TEST(CudaGru, BatchFirstBothWaysMatchCpu) {
  GRAFT_REQUIRE_CUDA();
  for (bool batch_first : {false, true})
    for (bool bidirectional : {false, true}) {
      Case c;
      c.T = 7, c.N = 3, c.I = 6, c.H = 9, c.L = 2, c.batch_first = batch_first, c.bidirectional = bidirectional;
      c.h0 = true;
      check_against_cpu(c);
    }
}

TEST(CudaGru, WithoutBiasMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  for (bool bidirectional : {false, true}) {
    Case c;
    c.T = 5, c.N = 2, c.I = 3, c.H = 7, c.L = 2, c.bias = false, c.bidirectional = bidirectional, c.h0 = true;
    check_against_cpu(c);
  }
}

TEST(CudaGru, UnsortedVariableLengthsMatchCpu) {
  GRAFT_REQUIRE_CUDA();
  for (bool batch_first : {false, true})
    for (bool on_device : {false, true}) {
      Case c;
      c.T = 7, c.N = 5, c.I = 4, c.H = 7, c.L = 2, c.bidirectional = true, c.h0 = true;
      c.batch_first = batch_first;
      c.lengths = {3, 7, 1, 5, 7};
      c.lengths_on_device = on_device;
      check_against_cpu(c);
    }
  Case one_direction;  // the forward direction alone, no h0, every sequence shorter than T
  one_direction.T = 6, one_direction.N = 3, one_direction.lengths = {2, 5, 4};
  check_against_cpu(one_direction);
}

TEST(CudaGru, SingleStepAndSingleSequenceMatchCpu) {
  GRAFT_REQUIRE_CUDA();
  const std::vector<std::pair<int64_t, int64_t>> sizes{{1, 1}, {1, 4}, {6, 1}};  // (T, N)
  for (const auto& [T, N] : sizes) {
    Case c;
    c.T = T, c.N = N, c.I = 3, c.H = 7, c.L = 2, c.bidirectional = true, c.h0 = true;
    check_against_cpu(c);
  }
}

TEST(CudaGru, StatesBeyondOneBlockMatchCpu) {
  GRAFT_REQUIRE_CUDA();
  Case c;  // N * H = 1221 state elements: several blocks, the last one partial
  c.T = 4, c.N = 37, c.I = 33, c.H = 33, c.L = 1, c.bidirectional = true, c.h0 = true;
  check_against_cpu(c);
}

TEST(CudaGru, HiddenSize256MatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  Case c;
  c.T = 9, c.N = 5, c.I = 33, c.H = 256, c.L = 2, c.bidirectional = true, c.h0 = true;
  c.lengths = {9, 4, 9, 1, 6};
  check_against_cpu(c, 1e-4);  // see the header: longer dot products recurring over the steps
}

TEST(CudaGru, DropoutBetweenLayersMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  Case c;
  c.T = 5, c.N = 3, c.I = 4, c.H = 7, c.L = 3, c.bidirectional = true, c.dropout = 0.4;
  check_against_cpu(c);
}

TEST(CudaGru, NonContiguousInputsMatchCpu) {
  GRAFT_REQUIRE_CUDA();
  Case c;
  c.T = 5, c.N = 3, c.I = 4, c.H = 7, c.L = 2, c.bidirectional = true, c.h0 = true;
  const Inputs in = make_inputs(c);
  // Input [T, N, I] as a transposed view of [N, T, I]; weight_ih_l0 as a column slice of a wider
  // matrix; h0 as a transposed view of [N, L*D, H].
  auto transposed = [](const Tensor& t) { return t.transpose(0, 1).contiguous(); };
  auto make = [&](Device device, GruImplementation impl) {
    Tensor input_nt = transposed(in.input).to(device).requires_grad_();
    Tensor h0_nt = transposed(in.h0).to(device).requires_grad_();
    Tensor wide = cat({in.params[0], zeros({3 * c.H, 2})}, 1).to(device).requires_grad_();
    std::vector<Tensor> params{narrow(wide, 1, 0, c.I)};
    std::vector<Tensor> leaves{wide};
    for (size_t i = 1; i < in.params.size(); ++i) {
      leaves.push_back(in.params[i].detach().to(device).requires_grad_());
      params.push_back(leaves.back());
    }
    GruOptions o = options_for(c);
    GruResult r = gru(input_nt.transpose(0, 1), h0_nt.transpose(0, 1), params, o, Tensor(), impl);
    EXPECT_FALSE(input_nt.transpose(0, 1).is_contiguous());
    cat({reshape(r.output, {-1}), reshape(r.h_n, {-1})}).backward(in.seed.to(device));
    GruRun out{r.output.detach(), r.h_n.detach(), {input_nt.grad(), h0_nt.grad()}, {"d input", "d h0"}};
    for (size_t i = 0; i < leaves.size(); ++i) {
      out.grads.push_back(leaves[i].grad());
      out.names.push_back("d leaf[" + std::to_string(i) + "]");
    }
    return out;
  };
  expect_match(make(Device::cuda(0), GruImplementation::fused), make(Device::cpu(), GruImplementation::automatic),
               default_rtol(DType::f32), c.str());
}

TEST(CudaGru, InferenceWithoutGradMatchesCpu) {
  GRAFT_REQUIRE_CUDA();
  Case c;
  c.T = 6, c.N = 4, c.I = 5, c.H = 7, c.L = 3, c.bidirectional = true, c.h0 = true, c.lengths = {6, 2, 5, 3};
  const Inputs in = make_inputs(c);
  NoGradGuard no_grad;  // the kernels run without a workspace
  auto forward = [&](Device device, GruImplementation impl) {
    std::vector<Tensor> params;
    for (const Tensor& p : in.params) params.push_back(p.to(device));
    return gru(in.input.to(device), in.h0.to(device), params, options_for(c), lengths_tensor(c, device), impl);
  };
  const GruResult got = forward(Device::cuda(0), GruImplementation::fused);
  const GruResult want = forward(Device::cpu(), GruImplementation::automatic);
  EXPECT_TRUE(close_to_scale(got.output, want.output, default_rtol(DType::f32))) << "output";
  EXPECT_TRUE(close_to_scale(got.h_n, want.h_n, default_rtol(DType::f32))) << "h_n";
}

TEST(CudaGru, BitIdenticalTwice) {
  GRAFT_REQUIRE_CUDA();
  Case c;
  c.T = 8, c.N = 5, c.I = 6, c.H = 33, c.L = 2, c.bidirectional = true, c.h0 = true, c.lengths = {8, 3, 6, 1, 8};
  const Inputs in = make_inputs(c);
  expect_match(run_cuda(c, in), run_cuda(c, in), 0.0, c.str());
}

TEST(CudaGru, MixedDevicesThrowDeviceError) {
  GRAFT_REQUIRE_CUDA();
  Case c;
  c.h0 = true;
  const Inputs in = make_inputs(c);
  const Device gpu = Device::cuda(0);
  std::vector<Tensor> params;
  for (const Tensor& p : in.params) params.push_back(p.to(gpu));
  const GruOptions o = options_for(c);
  // h0 left on the CPU
  EXPECT_THROW(gru(in.input.to(gpu), in.h0, params, o), DeviceError);
  // one parameter left on the CPU
  std::vector<Tensor> mixed = params;
  mixed[1] = in.params[1];
  EXPECT_THROW(gru(in.input.to(gpu), in.h0.to(gpu), mixed, o), DeviceError);
  // the input on the CPU, the parameters on the GPU
  EXPECT_THROW(gru(in.input, in.h0, params, o, Tensor(), GruImplementation::fused), DeviceError);
}

TEST(CudaGru, FusedRequestForF64ThrowsNotImplemented) {
  GRAFT_REQUIRE_CUDA();
  Case c;
  const Inputs in = make_inputs(c);
  const Device gpu = Device::cuda(0);
  std::vector<Tensor> params;
  for (const Tensor& p : in.params) params.push_back(p.to(DType::f64).to(gpu));
  EXPECT_THROW(gru(in.input.to(DType::f64).to(gpu), Tensor(), params, options_for(c), Tensor(),
                   GruImplementation::fused),
               NotImplementedError);
}
