// The GRU layer on CUDA, f32: cuBLASLt GEMMs (kernels/gemm) for every matrix product and two
// fused elementwise kernels for the gates, forward and backward. Contract and workspace layout in
// gru.h; the math is reference.cpp's (PyTorch's linear-before-reset cell, gates r, z, n).
//
// Per direction d, forward:  G_i = X W_ih^T + b_ih over all T*N rows (one GEMM), then for each step
//   G_h = h W_hh^T + b_hh (one GEMM) and the gate kernel, which writes h', y and the saved gates.
// Backward, per direction in reverse step order: the gate-gradient kernel turns dh into dG_i (by
//   time t, both directions side by side so that dx is one GEMM) and dG_h (by step s, so that its
//   rows line up with the saved states), then dh_prev = dG_h W_hh (GEMM) + z * dh, the GEMM half
//   and the elementwise half kept apart and summed by the next step's kernel. After the loop:
//   dW_ih = dG_i^T X, dW_hh = dG_h^T H_prev, biases as column sums, dx = dG_i W_ih.
// Every sum runs in a fixed order (GEMMs, and column sums that fold rows in a fixed pattern): the
// same inputs give the same bits. No atomics.
#include <cstdint>
#include <string>
#include <utility>

#include "kernels/common/cuda.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gru/gru.h"

namespace graft::kernels {

namespace {

using cuda::blocks_for;
using cuda::kThreads;

// ---- device code ----

__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

// One step of one direction at time t: thread (n, j) for n < N, j < H. gi/gh are [N, 3H] (gi already
// offset to time t), y is offset to (t, direction) with rows y_stride apart, gates [N, 4H] or null
// (inference). A sequence past its length keeps its state and outputs zero.
__global__ void gates_forward_kernel(int64_t N, int64_t H, int64_t t, const float* gi, const float* gh,
                                     const float* h_prev, float* h_next, float* y, int64_t y_stride, float* gates,
                                     const int64_t* lengths) {
  const int64_t total = N * H;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = idx / H, j = idx - n * H;
    const float hp = h_prev[idx];
    float* e = gates ? gates + n * 4 * H : nullptr;
    if (lengths && t >= lengths[n]) {
      h_next[idx] = hp;
      y[n * y_stride + j] = 0.0f;
      if (e) e[j] = e[H + j] = e[2 * H + j] = e[3 * H + j] = 0.0f;
      continue;
    }
    const float* xi = gi + n * 3 * H;
    const float* hh = gh + n * 3 * H;
    const float r = sigmoid(xi[j] + hh[j]);
    const float z = sigmoid(xi[H + j] + hh[H + j]);
    const float hn = hh[2 * H + j];  // W_hn h + b_hn: backward needs it for dr
    const float nn = tanhf(xi[2 * H + j] + r * hn);
    const float h = (1.0f - z) * nn + z * hp;
    h_next[idx] = h;
    y[n * y_stride + j] = h;
    if (e) {
      e[j] = r;
      e[H + j] = z;
      e[2 * H + j] = nn;
      e[3 * H + j] = hn;
    }
  }
}

// Backward of one step at time t. The gradient reaching h' is dh_gemm + dh_carry (the two halves
// of the later step's dh_prev) plus dy; dh_carry is overwritten with this step's elementwise half
// of dh_prev (z * g), the GEMM half following as dG_h W_hh. dgi rows are dgi_stride apart (both
// directions share them), dgh rows 3H. A sequence past its length passes dh through unchanged.
__global__ void gates_backward_kernel(int64_t N, int64_t H, int64_t t, const float* dy, int64_t dy_stride,
                                      const float* dh_gemm, float* dh_carry, const float* gates, const float* h_prev,
                                      float* dgi, int64_t dgi_stride, float* dgh, const int64_t* lengths) {
  const int64_t total = N * H;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = idx / H, j = idx - n * H;
    const float dh = dh_gemm[idx] + dh_carry[idx];
    float* gi = dgi + n * dgi_stride;
    float* gh = dgh + n * 3 * H;
    if (lengths && t >= lengths[n]) {
      dh_carry[idx] = dh;
      gi[j] = gi[H + j] = gi[2 * H + j] = 0.0f;
      gh[j] = gh[H + j] = gh[2 * H + j] = 0.0f;
      continue;
    }
    const float g = dh + dy[n * dy_stride + j];
    const float* e = gates + n * 4 * H;
    const float r = e[j], z = e[H + j], nn = e[2 * H + j], hn = e[3 * H + j];
    const float dn = g * (1.0f - z) * (1.0f - nn * nn);  // through tanh
    const float dz = g * (h_prev[idx] - nn) * z * (1.0f - z);
    const float dr = dn * hn * r * (1.0f - r);
    dh_carry[idx] = g * z;
    gi[j] = gh[j] = dr;
    gi[H + j] = gh[H + j] = dz;
    gi[2 * H + j] = dn;
    gh[2 * H + j] = dn * r;
  }
}

__global__ void add_kernel(int64_t count, const float* a, const float* b, float* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i];
}

// dst[c] = sum over rows of src[r * ld + c]. A block covers kSumCols columns with kSumLanes lanes
// each; lane k folds rows k, k + kSumLanes, ... in order, then lane 0 adds the lanes in order.
constexpr int kSumCols = 32, kSumLanes = 8;
__global__ void column_sums_kernel(const float* src, int64_t rows, int64_t cols, int64_t ld, float* dst) {
  __shared__ float partial[kSumLanes][kSumCols];
  const int64_t c = blockIdx.x * int64_t(kSumCols) + threadIdx.x;
  float acc = 0.0f;
  if (c < cols)
    for (int64_t r = threadIdx.y; r < rows; r += kSumLanes) acc += src[r * ld + c];
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float total = 0.0f;
    for (int k = 0; k < kSumLanes; ++k) total += partial[k][threadIdx.x];
    dst[c] = total;
  }
}

// ---- host helpers ----


struct Operand {
  const float* data;
  int64_t ld;
  bool trans;
};

// c [M, cols] = op(a) [M, K] * op(b) [K, cols] (+ bias [cols] when not null), f32.
void gemm(int device, int64_t M, int64_t cols, int64_t K, Operand a, Operand b, float* c, const float* bias) {
  CudaGemmArgs args;
  args.shape.M = M;
  args.shape.N = cols;
  args.shape.K = K;
  args.shape.trans_a = a.trans;
  args.shape.trans_b = b.trans;
  args.shape.lda = a.ld;
  args.shape.ldb = b.ld;
  args.a = a.data;
  args.b = b.data;
  args.c = c;
  args.bias = bias;
  args.epilogue = bias ? GemmEpilogue::bias : GemmEpilogue::none;
  args.allow_tf32 = cuda_allow_tf32();
  args.device = device;
  gemm_cuda(args);
}

void column_sums(const float* src, int64_t rows, int64_t cols, int64_t ld, float* dst) {
  const dim3 block(kSumCols, kSumLanes);
  const auto grid = static_cast<unsigned>((cols + kSumCols - 1) / kSumCols);
  column_sums_kernel<<<grid, block, 0, cuda::stream()>>>(src, rows, cols, ld, dst);
  GRAFT_CUDA_CHECK_LAUNCH(column_sums_kernel);
}

std::size_t floats_bytes(int64_t count) { return static_cast<std::size_t>(count) * sizeof(float); }

// Workspace views (gru.h): gates [D, T, N, 4H], then states [D, T+1, N, H], step s in direction order.
float* gates_at(const void* ws, const GruLayerShape& sh, int64_t d, int64_t s) {
  return const_cast<float*>(static_cast<const float*>(ws)) + (d * sh.T + s) * sh.N * 4 * sh.H;
}
float* states_at(const void* ws, const GruLayerShape& sh, int64_t d, int64_t s) {
  return const_cast<float*>(static_cast<const float*>(ws)) + sh.D * sh.T * sh.N * 4 * sh.H +
         (d * (sh.T + 1) + s) * sh.N * sh.H;
}

int64_t step_time(const GruLayerShape& sh, int64_t d, int64_t s) { return d == 0 ? s : sh.T - 1 - s; }

}  // namespace

std::size_t gru_cuda_workspace_bytes(const GruLayerShape& sh) {
  return floats_bytes(sh.D * sh.T * sh.N * 4 * sh.H + sh.D * (sh.T + 1) * sh.N * sh.H);
}

void gru_cuda_forward(const GruLayerShape& sh, const float* x, const float* h0, const GruLayerWeights<float>& w,
                      const int64_t* lengths, float* y, float* h_n, void* workspace, int device) {
  const int64_t T = sh.T, N = sh.N, I = sh.I, H = sh.H, D = sh.D, G = 3 * H;
  // y and h_n have no elements. (T == 0 runs on: no steps, so h_n = h0 or zeros, as the reference.)
  if (N * H == 0) return;
  cuda::DeviceGuard guard(device);
  const cudaStream_t stream = cuda::stream();
  cuda::Scratch gi(floats_bytes(T * N * G)), gh(floats_bytes(N * G));
  // Without a workspace (inference) the states live in two buffers used in turn.
  cuda::Scratch ping_pong(floats_bytes(workspace ? 0 : 2 * N * H));
  for (int64_t d = 0; d < D; ++d) {
    auto state = [&](int64_t s) {
      return workspace ? states_at(workspace, sh, d, s) : ping_pong.as<float>() + (s % 2) * N * H;
    };
    gemm(device, T * N, G, I, {x, I, false}, {w.w_ih[d], I, true}, gi.as<float>(), w.b_ih[d]);
    if (h0)
      GRAFT_CUDA_CHECK(cudaMemcpyAsync(state(0), h0 + d * N * H, floats_bytes(N * H), cudaMemcpyDeviceToDevice, stream));
    else
      GRAFT_CUDA_CHECK(cudaMemsetAsync(state(0), 0, floats_bytes(N * H), stream));
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = step_time(sh, d, s);
      gemm(device, N, G, H, {state(s), H, false}, {w.w_hh[d], H, true}, gh.as<float>(), w.b_hh[d]);
      gates_forward_kernel<<<blocks_for(N * H), kThreads, 0, stream>>>(
          N, H, t, gi.as<float>() + t * N * G, gh.as<float>(), state(s), state(s + 1), y + t * N * D * H + d * H, D * H,
          workspace ? gates_at(workspace, sh, d, s) : nullptr, lengths);
      GRAFT_CUDA_CHECK_LAUNCH(gates_forward_kernel);
    }
    GRAFT_CUDA_CHECK(cudaMemcpyAsync(h_n + d * N * H, state(T), floats_bytes(N * H), cudaMemcpyDeviceToDevice, stream));
  }
}

void gru_cuda_backward(const GruLayerShape& sh, const float* x, const GruLayerWeights<float>& w,
                       const int64_t* lengths, const void* workspace, const float* dy, const float* dh_n, float* dx,
                       float* dh0, const GruLayerGrads<float>& grads, int device) {
  const int64_t T = sh.T, N = sh.N, I = sh.I, H = sh.H, D = sh.D, G = 3 * H, rows = T * N;
  if (!workspace && rows * H > 0)
    throw ValueError("gru (cuda) backward: needs the workspace of a training forward, got none");
  cuda::DeviceGuard guard(device);
  const cudaStream_t stream = cuda::stream();
  if (rows * H == 0) {  // no steps ran: every gradient is zero (the contract overwrites them)
    for (int64_t d = 0; d < D; ++d) {
      const std::pair<float*, int64_t> wanted[] = {
          {grads.w_ih[d], G * I}, {grads.w_hh[d], G * H}, {grads.b_ih[d], G}, {grads.b_hh[d], G}};
      for (const auto& [ptr, count] : wanted)
        if (ptr) GRAFT_CUDA_CHECK(cudaMemsetAsync(ptr, 0, floats_bytes(count), stream));
    }
    if (dx) GRAFT_CUDA_CHECK(cudaMemsetAsync(dx, 0, floats_bytes(rows * I), stream));
    // With no steps h_n is h0, so dh0 = dh_n (when N * H > 0 here, T is 0).
    if (dh0 && D * N * H > 0)
      GRAFT_CUDA_CHECK(cudaMemcpyAsync(dh0, dh_n, floats_bytes(D * N * H), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  cuda::Scratch dgi(floats_bytes(rows * D * G)), dgh(floats_bytes(rows * G)), dh_gemm(floats_bytes(N * H)), dh_carry(floats_bytes(N * H));
  for (int64_t d = 0; d < D; ++d) {
    // The last step's incoming state gradient is dh_n: all of it in the carry half.
    GRAFT_CUDA_CHECK(cudaMemsetAsync(dh_gemm.as<float>(), 0, floats_bytes(N * H), stream));
    GRAFT_CUDA_CHECK(cudaMemcpyAsync(dh_carry.as<float>(), dh_n + d * N * H, floats_bytes(N * H), cudaMemcpyDeviceToDevice,
                                     stream));
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = step_time(sh, d, s);
      float* dgh_s = dgh.as<float>() + s * N * G;
      gates_backward_kernel<<<blocks_for(N * H), kThreads, 0, stream>>>(
          N, H, t, dy + t * N * D * H + d * H, D * H, dh_gemm.as<float>(), dh_carry.as<float>(), gates_at(workspace, sh, d, s),
          states_at(workspace, sh, d, s), dgi.as<float>() + t * N * D * G + d * G, D * G, dgh_s, lengths);
      GRAFT_CUDA_CHECK_LAUNCH(gates_backward_kernel);
      if (s > 0 || dh0) gemm(device, N, H, G, {dgh_s, G, false}, {w.w_hh[d], H, false}, dh_gemm.as<float>(), nullptr);
    }
    if (dh0) {
      add_kernel<<<blocks_for(N * H), kThreads, 0, stream>>>(N * H, dh_gemm.as<float>(), dh_carry.as<float>(), dh0 + d * N * H);
      GRAFT_CUDA_CHECK_LAUNCH(add_kernel);
    }
    // Weight gradients over all steps at once: dG_h rows (by step) match the saved states h_0 .. h_{T-1},
    // dG_i rows (by time) match x.
    if (grads.w_hh[d])
      gemm(device, G, H, rows, {dgh.as<float>(), G, true}, {states_at(workspace, sh, d, 0), H, false}, grads.w_hh[d], nullptr);
    if (grads.w_ih[d])
      gemm(device, G, I, rows, {dgi.as<float>() + d * G, D * G, true}, {x, I, false}, grads.w_ih[d], nullptr);
    if (grads.b_ih[d]) column_sums(dgi.as<float>() + d * G, rows, G, D * G, grads.b_ih[d]);
    if (grads.b_hh[d]) column_sums(dgh.as<float>(), rows, G, G, grads.b_hh[d]);
  }
  if (dx) {
    // dx = [dG_i of both directions] [T*N, D*3H] x [W_ih of both directions stacked] [D*3H, I]: one GEMM.
    cuda::Scratch stacked(floats_bytes(D == 2 ? 2 * G * I : 0));
    const float* w_ih = w.w_ih[0];
    if (D == 2) {
      GRAFT_CUDA_CHECK(cudaMemcpyAsync(stacked.as<float>(), w.w_ih[0], floats_bytes(G * I), cudaMemcpyDeviceToDevice, stream));
      GRAFT_CUDA_CHECK(
          cudaMemcpyAsync(stacked.as<float>() + G * I, w.w_ih[1], floats_bytes(G * I), cudaMemcpyDeviceToDevice, stream));
      w_ih = stacked.as<float>();
    }
    gemm(device, rows, I, D * G, {dgi.as<float>(), D * G, false}, {w_ih, I, false}, dx, nullptr);
  }
}

}  // namespace graft::kernels
