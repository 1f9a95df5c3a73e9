// LayerNorm on CUDA (the contract is in kernels/norm/layer_norm.h).
//
// Forward and grad_x: one block per row (rows strided over the grid), the row's sums reduced in a
// fixed tree (warp shuffles, then the warps in order), so every run gives the same bits. The row
// statistics are two-pass (mean, then the sum of squared deviations) in the math type M: double
// for f32/f64 as the CPU kernel, float for bf16/f16.
// grad_weight/grad_bias: a column reduction over rows without atomics: each thread sums one column
// over a fixed chunk of rows in order into a partial, and a second kernel sums a column's partials
// in chunk order.
#include <algorithm>

#include "kernels/common/cuda.h"
#include "kernels/norm/layer_norm.h"

namespace graft::kernels {

namespace {

using cuda::acc_t;
using cuda::device_t;
using cuda::load;
using cuda::store;

// The type row sums are accumulated in (see the top).
template <class D> struct MathType { using type = double; };
template <> struct MathType<__nv_bfloat16> { using type = float; };
template <> struct MathType<__half> { using type = float; };
template <class D> using math_t = typename MathType<D>::type;

constexpr int64_t kRowsPerChunk = 32;  // rows one thread sums for the parameter gradients
constexpr int64_t kMaxGrid = 65535LL * 16;

// Sum of v over the block (blockDim.x a multiple of 32, at most 1024), the same order every time;
// every thread gets the result. `scratch` holds 32 values.
template <class M>
__device__ M block_sum(M v, M* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  __syncthreads();  // a previous call's readers are done with scratch
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? scratch[lane] : M(0);
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  return scratch[0];
}

// Threads per row block: a warp multiple covering short rows, 256 for long ones.
int row_threads(int64_t cols) {
  const int64_t rounded = (cols + 31) / 32 * 32;
  return static_cast<int>(std::clamp<int64_t>(rounded, 32, 256));
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>(std::min(rows, kMaxGrid)); }

template <class D, class S>
__global__ void layer_norm_forward_kernel(const D* x, const D* weight, const D* bias, int64_t rows, int64_t cols,
                                          double eps, D* y, S* mean, S* rstd) {
  using M = math_t<D>;
  using C = acc_t<D>;  // the elementwise part runs in the input's compute type, as on the CPU
  __shared__ M scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const D* xr = x + row * cols;
    D* yr = y + row * cols;
    M sum = 0;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) sum += static_cast<M>(load(xr + i));
    const M mu = block_sum(sum, scratch) / static_cast<M>(cols);
    M sum_sq = 0;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      const M d = static_cast<M>(load(xr + i)) - mu;
      sum_sq += d * d;
    }
    const M rs = M(1) / sqrt(block_sum(sum_sq, scratch) / static_cast<M>(cols) + static_cast<M>(eps));
    // Normalise with the statistics as stored, so that backward sees the ones forward used.
    const S mean_s = static_cast<S>(mu), rstd_s = static_cast<S>(rs);
    const C m = static_cast<C>(mean_s), s = static_cast<C>(rstd_s);
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      C v = (static_cast<C>(load(xr + i)) - m) * s;
      if (weight) v *= static_cast<C>(load(weight + i));
      if (bias) v += static_cast<C>(load(bias + i));
      store(yr + i, v);
    }
    if (threadIdx.x == 0) {
      mean[row] = mean_s;
      rstd[row] = rstd_s;
    }
  }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * weight, in M (as the CPU, in double for f32).
template <class D, class S>
__global__ void layer_norm_backward_x_kernel(const D* grad_y, const D* x, const S* mean, const S* rstd, const D* weight,
                                             int64_t rows, int64_t cols, D* grad_x) {
  using M = math_t<D>;
  __shared__ M scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const D* gy = grad_y + row * cols;
    const D* xr = x + row * cols;
    D* gx = grad_x + row * cols;
    const M m = static_cast<M>(mean[row]), s = static_cast<M>(rstd[row]);
    M sum_g = 0, sum_gx = 0;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      M g = static_cast<M>(load(gy + i));
      if (weight) g *= static_cast<M>(load(weight + i));
      sum_g += g;
      sum_gx += g * (static_cast<M>(load(xr + i)) - m) * s;
    }
    const M mean_g = block_sum(sum_g, scratch) / static_cast<M>(cols);
    const M mean_gx = block_sum(sum_gx, scratch) / static_cast<M>(cols);
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      M g = static_cast<M>(load(gy + i));
      if (weight) g *= static_cast<M>(load(weight + i));
      const M xhat = (static_cast<M>(load(xr + i)) - m) * s;
      store(gx + i, s * (g - mean_g - xhat * mean_gx));
    }
  }
}

// partial[chunk][col] = sum over the chunk's rows, in order, of dy * xhat (weight) and dy (bias).
template <class D, class S>
__global__ void layer_norm_param_partials_kernel(const D* grad_y, const D* x, const S* mean, const S* rstd,
                                                 int64_t rows, int64_t cols, int64_t rows_per_chunk,
                                                 math_t<D>* partial_w, math_t<D>* partial_b) {
  using M = math_t<D>;
  using C = acc_t<D>;
  const int64_t col = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (col >= cols) return;
  const int64_t chunk = blockIdx.y;
  const int64_t r0 = chunk * rows_per_chunk, r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  M gw = 0, gb = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const M g = static_cast<M>(load(grad_y + r * cols + col));
    // x - mean in the input's compute type, then the rest in M: the CPU kernel's rounding.
    const C diff = static_cast<C>(load(x + r * cols + col)) - static_cast<C>(mean[r]);
    gw += g * static_cast<M>(diff) * static_cast<M>(rstd[r]);
    gb += g;
  }
  if (partial_w) partial_w[chunk * cols + col] = gw;
  if (partial_b) partial_b[chunk * cols + col] = gb;
}

// grad[col] = the column's partials summed in chunk order.
template <class D>
__global__ void layer_norm_param_sum_kernel(const math_t<D>* partial_w, const math_t<D>* partial_b, int64_t chunks,
                                            int64_t cols, D* grad_weight, D* grad_bias) {
  using M = math_t<D>;
  for (int64_t col = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; col < cols; col += int64_t(blockDim.x) * gridDim.x) {
    if (grad_weight) {
      M acc = 0;
      for (int64_t c = 0; c < chunks; ++c) acc += partial_w[c * cols + col];
      store(grad_weight + col, acc);
    }
    if (grad_bias) {
      M acc = 0;
      for (int64_t c = 0; c < chunks; ++c) acc += partial_b[c * cols + col];
      store(grad_bias + col, acc);
    }
  }
}


}  // namespace

template <class T>
void layer_norm_forward_cuda(const T* x, const T* weight, const T* bias, int64_t rows, int64_t cols, double eps, T* y,
                             layer_norm_stat_t<T>* mean, layer_norm_stat_t<T>* rstd, int device) {
  if (rows == 0 || cols == 0) return;
  using D = device_t<T>;
  cuda::DeviceGuard guard(device);
  layer_norm_forward_kernel<D, layer_norm_stat_t<T>><<<row_blocks(rows), row_threads(cols), 0, cuda::stream()>>>(
      reinterpret_cast<const D*>(x), reinterpret_cast<const D*>(weight), reinterpret_cast<const D*>(bias), rows, cols,
      eps, reinterpret_cast<D*>(y), mean, rstd);
  GRAFT_CUDA_CHECK_LAUNCH(layer_norm_forward_kernel);
}

template <class T>
void layer_norm_backward_cuda(const T* grad_y, const T* x, const layer_norm_stat_t<T>* mean,
                              const layer_norm_stat_t<T>* rstd, const T* weight, int64_t rows, int64_t cols,
                              T* grad_x, T* grad_weight, T* grad_bias, int device) {
  if (cols == 0) return;
  using D = device_t<T>;
  using M = math_t<D>;
  using S = layer_norm_stat_t<T>;
  cuda::DeviceGuard guard(device);
  const D* gy = reinterpret_cast<const D*>(grad_y);
  const D* xd = reinterpret_cast<const D*>(x);
  if (grad_x && rows > 0) {
    layer_norm_backward_x_kernel<D, S><<<row_blocks(rows), row_threads(cols), 0, cuda::stream()>>>(
        gy, xd, mean, rstd, reinterpret_cast<const D*>(weight), rows, cols, reinterpret_cast<D*>(grad_x));
    GRAFT_CUDA_CHECK_LAUNCH(layer_norm_backward_x_kernel);
  }
  if (!grad_weight && !grad_bias) return;
  // Chunks fit gridDim.y (65535); the chunking depends only on rows, so the sum order is fixed.
  const int64_t rows_per_chunk = std::max(kRowsPerChunk, (rows + 65534) / 65535);
  const int64_t chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  const size_t partial_elems = static_cast<size_t>(chunks * cols);
  cuda::Scratch partial_w(grad_weight ? partial_elems * sizeof(M) : 0);
  cuda::Scratch partial_b(grad_bias ? partial_elems * sizeof(M) : 0);
  if (chunks > 0) {
    const dim3 grid(static_cast<unsigned>((cols + cuda::kThreads - 1) / cuda::kThreads), static_cast<unsigned>(chunks));
    layer_norm_param_partials_kernel<D, S><<<grid, cuda::kThreads, 0, cuda::stream()>>>(
        gy, xd, mean, rstd, rows, cols, rows_per_chunk, grad_weight ? partial_w.as<M>() : nullptr, grad_bias ? partial_b.as<M>() : nullptr);
    GRAFT_CUDA_CHECK_LAUNCH(layer_norm_param_partials_kernel);
  }
  layer_norm_param_sum_kernel<D><<<cuda::blocks_for(cols), cuda::kThreads, 0, cuda::stream()>>>(
      grad_weight ? partial_w.as<M>() : nullptr, grad_bias ? partial_b.as<M>() : nullptr, chunks, cols,
      reinterpret_cast<D*>(grad_weight), reinterpret_cast<D*>(grad_bias));
  GRAFT_CUDA_CHECK_LAUNCH(layer_norm_param_sum_kernel);
}

#define GRAFT_LAYER_NORM_CUDA(T)                                                                                      \
  template void layer_norm_forward_cuda<T>(const T*, const T*, const T*, int64_t, int64_t, double, T*,               \
                                           layer_norm_stat_t<T>*, layer_norm_stat_t<T>*, int);                        \
  template void layer_norm_backward_cuda<T>(const T*, const T*, const layer_norm_stat_t<T>*,                          \
                                            const layer_norm_stat_t<T>*, const T*, int64_t, int64_t, T*, T*, T*, int);
GRAFT_LAYER_NORM_CUDA(float)
GRAFT_LAYER_NORM_CUDA(double)
GRAFT_LAYER_NORM_CUDA(bf16)
GRAFT_LAYER_NORM_CUDA(f16)
#undef GRAFT_LAYER_NORM_CUDA

}  // namespace graft::kernels
