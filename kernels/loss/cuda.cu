// Fused cross-entropy on CUDA (see cross_entropy.h). One warp per row: the lanes stride over the
// classes in a fixed order and combine with a butterfly, so every sum has one fixed order. The
// batch reduction is one block with a fixed tree. No atomics touch a float.
#include <cub/block/block_reduce.cuh>

#include <climits>

#include "kernels/common/cuda.h"
#include "kernels/loss/cross_entropy.h"

namespace graft::kernels {

namespace {

using cuda::Scratch;

using cuda::acc_t;
using cuda::device_t;
using cuda::kThreads;
using cuda::load;
using cuda::store;

constexpr int kWarp = 32;

// Stream-ordered scratch memory from the same pool as tensors, freed at scope exit.

template <class A>
__device__ __forceinline__ A exp_(A v) {
  if constexpr (std::is_same_v<A, double>) return exp(v);
  else return expf(v);
}
template <class A>
__device__ __forceinline__ A log_(A v) {
  if constexpr (std::is_same_v<A, double>) return log(v);
  else return logf(v);
}

// Every lane ends with the same value, combined in the same order on every run.
template <class A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
template <class A>
__device__ __forceinline__ A warp_max(A v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const A other = __shfl_xor_sync(0xffffffffu, v, offset);
    v = other > v ? other : v;
  }
  return v;
}

// The rows a warp walks: all lanes of a warp see the same row, so branches on the row are uniform
// and the shuffles always have the full warp.
__device__ __forceinline__ int64_t warp_start() {
  return (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / kWarp;
}
__device__ __forceinline__ int64_t warp_step() { return static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp; }

__global__ void init_first_bad_kernel(long long* first_bad) { *first_bad = LLONG_MAX; }

// Per row: lse, the loss and the row weight; out-of-range targets are recorded (lowest row wins:
// integer min is order-independent) and their rows count as ignored.
template <class T>
__global__ void cross_entropy_rows_kernel(const T* x, int64_t M, int64_t C, int64_t D, const int64_t* target,
                                          const T* weight, int64_t ignore_index, acc_t<T> eps, acc_t<T>* row_loss,
                                          acc_t<T>* row_weight, acc_t<T>* lse_out, long long* first_bad) {
  using A = acc_t<T>;
  const int lane = threadIdx.x % kWarp;
  for (int64_t m = warp_start(); m < M; m += warp_step()) {
    const T* row = x + (m / D) * C * D + m % D;  // class c at row[c * D]
    A mx = -INFINITY;
    for (int64_t c = lane; c < C; c += kWarp) {
      const A v = load(&row[c * D]);
      mx = v > mx ? v : mx;
    }
    mx = warp_max(mx);
    A s = 0;
    for (int64_t c = lane; c < C; c += kWarp) s += exp_(load(&row[c * D]) - mx);
    const A lse = mx + log_(warp_sum(s));

    const int64_t t = target[m];
    const bool in_range = t >= 0 && t < C;
    A loss = 0, w_row = 0;
    if (t != ignore_index && in_range) {
      const A wt = weight ? load(&weight[t]) : A(1);
      loss = -wt * (load(&row[t * D]) - lse);
      if (eps > A(0)) {
        A smooth = 0;  // sum_c w[c] * logp[c]
        for (int64_t c = lane; c < C; c += kWarp)
          smooth += (weight ? load(&weight[c]) : A(1)) * (load(&row[c * D]) - lse);
        loss = (A(1) - eps) * loss + eps * (-warp_sum(smooth) / static_cast<A>(C));
      }
      w_row = wt;
    }
    if (lane == 0) {
      lse_out[m] = lse;
      row_loss[m] = loss;
      row_weight[m] = w_row;
      if (t != ignore_index && !in_range) atomicMin(first_bad, static_cast<long long>(m));
    }
  }
}

template <class T>
__global__ void cross_entropy_store_rows_kernel(const acc_t<T>* row_loss, int64_t M, T* out) {
  for (int64_t m = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; m < M;
       m += static_cast<int64_t>(gridDim.x) * blockDim.x)
    store(&out[m], row_loss[m]);
}

// One block: thread k sums rows k, k + kThreads, ...; cub's block reduction combines the threads
// in a fixed tree.
template <class T>
__global__ void cross_entropy_reduce_kernel(const acc_t<T>* row_loss, const acc_t<T>* row_weight, int64_t M, bool mean,
                                            T* out, acc_t<T>* total_weight) {
  using A = acc_t<T>;
  using Reduce = cub::BlockReduce<A, kThreads>;
  __shared__ typename Reduce::TempStorage loss_storage, weight_storage;
  A loss = 0, w = 0;
  for (int64_t m = threadIdx.x; m < M; m += kThreads) {
    loss += row_loss[m];
    w += row_weight[m];
  }
  loss = Reduce(loss_storage).Sum(loss);
  w = Reduce(weight_storage).Sum(w);
  if (threadIdx.x == 0) {
    *total_weight = w;
    store(out, mean ? loss / w : loss);  // mean over no weight is 0 / 0 = NaN, as on the CPU
  }
}

template <class T>
__global__ void cross_entropy_backward_kernel(const T* x, int64_t M, int64_t C, int64_t D, const int64_t* target,
                                              const T* weight, int64_t ignore_index, acc_t<T> eps,
                                              const acc_t<T>* lse, const acc_t<T>* total_weight, const T* grad_out,
                                              bool grad_per_row, T* grad_x) {
  using A = acc_t<T>;
  const int lane = threadIdx.x % kWarp;
  for (int64_t m = warp_start(); m < M; m += warp_step()) {
    const int64_t base = (m / D) * C * D + m % D;  // class c at base + c * D
    A g = load(&grad_out[grad_per_row ? m : 0]);
    if (total_weight) g = g / *total_weight;
    const int64_t t = target[m];
    if (t == ignore_index || t < 0 || t >= C) {
      // g * 0, not 0: a mean over no weight (g / 0) gives NaN here, as the CPU's composed graph does
      for (int64_t c = lane; c < C; c += kWarp) store(&grad_x[base + c * D], g * A(0));
      continue;
    }
    const A wt = weight ? load(&weight[t]) : A(1);
    A weight_sum = static_cast<A>(C);
    if (weight && eps > A(0)) {
      A s = 0;
      for (int64_t c = lane; c < C; c += kWarp) s += load(&weight[c]);
      weight_sum = warp_sum(s);
    }
    const A row_lse = lse[m];
    for (int64_t c = lane; c < C; c += kWarp) {
      const A p = exp_(load(&x[base + c * D]) - row_lse);
      A d = (A(1) - eps) * wt * (p - (c == t ? A(1) : A(0)));
      if (eps > A(0)) d += eps * (p * weight_sum - (weight ? load(&weight[c]) : A(1))) / static_cast<A>(C);
      store(&grad_x[base + c * D], g * d);
    }
  }
}

unsigned warp_blocks(int64_t rows) { return cuda::blocks_for(rows * kWarp); }

}  // namespace

template <class T>
bool cross_entropy_forward_cuda(int device, const T* x_in, CrossEntropyShape shape, const int64_t* target,
                                const T* weight_in, CrossEntropyParams params, T* out_in, cross_entropy_acc_t<T>* lse,
                                cross_entropy_acc_t<T>* total_weight, int64_t* bad_target) {
  using D = device_t<T>;
  using A = acc_t<D>;
  static_assert(std::is_same_v<A, cross_entropy_acc_t<T>>, "the header's compute type must be the kernels'");
  const D* x = reinterpret_cast<const D*>(x_in);
  const D* weight = reinterpret_cast<const D*>(weight_in);
  D* out = reinterpret_cast<D*>(out_in);
  cuda::DeviceGuard guard(device);
  const int64_t M = shape.rows();
  Scratch row_loss(sizeof(A) * M), row_weight(sizeof(A) * M), first_bad(sizeof(long long));
  init_first_bad_kernel<<<1, 1, 0, cuda::stream()>>>(first_bad.as<long long>());
  GRAFT_CUDA_CHECK_LAUNCH(init_first_bad_kernel);
  if (M > 0) {
    cross_entropy_rows_kernel<D><<<warp_blocks(M), kThreads, 0, cuda::stream()>>>(
        x, M, shape.C, shape.D, target, weight, params.ignore_index, static_cast<A>(params.label_smoothing),
        row_loss.as<A>(), row_weight.as<A>(), lse, first_bad.as<long long>());
    GRAFT_CUDA_CHECK_LAUNCH(cross_entropy_rows_kernel);
  }
  if (params.reduction == LossReduction::none) {
    if (M > 0) {
      cross_entropy_store_rows_kernel<D><<<cuda::blocks_for(M), kThreads, 0, cuda::stream()>>>(row_loss.as<A>(), M, out);
      GRAFT_CUDA_CHECK_LAUNCH(cross_entropy_store_rows_kernel);
    }
  } else {
    cross_entropy_reduce_kernel<D><<<1, kThreads, 0, cuda::stream()>>>(
        row_loss.as<A>(), row_weight.as<A>(), M, params.reduction == LossReduction::mean, out, total_weight);
    GRAFT_CUDA_CHECK_LAUNCH(cross_entropy_reduce_kernel);
  }
  long long bad_row = LLONG_MAX;
  GRAFT_CUDA_CHECK(cudaMemcpyAsync(&bad_row, first_bad.as<long long>(), sizeof bad_row, cudaMemcpyDeviceToHost,
                                   cuda::stream()));
  cuda::synchronize();
  if (bad_row == LLONG_MAX) return true;
  GRAFT_CUDA_CHECK(cudaMemcpyAsync(bad_target, target + bad_row, sizeof(int64_t), cudaMemcpyDeviceToHost, cuda::stream()));
  cuda::synchronize();
  return false;
}

template <class T>
void cross_entropy_backward_cuda(int device, const T* x, CrossEntropyShape shape, const int64_t* target,
                                 const T* weight, CrossEntropyParams params, const cross_entropy_acc_t<T>* lse,
                                 const cross_entropy_acc_t<T>* total_weight, const T* grad_out, T* grad_x) {
  using D = device_t<T>;
  using A = acc_t<D>;
  const int64_t M = shape.rows();
  if (M == 0 || shape.C == 0) return;
  cuda::DeviceGuard guard(device);
  const bool per_row = params.reduction == LossReduction::none;
  const A* divisor = params.reduction == LossReduction::mean ? total_weight : nullptr;
  cross_entropy_backward_kernel<D><<<warp_blocks(M), kThreads, 0, cuda::stream()>>>(
      reinterpret_cast<const D*>(x), M, shape.C, shape.D, target, reinterpret_cast<const D*>(weight),
      params.ignore_index, static_cast<A>(params.label_smoothing), lse, divisor, reinterpret_cast<const D*>(grad_out),
      per_row, reinterpret_cast<D*>(grad_x));
  GRAFT_CUDA_CHECK_LAUNCH(cross_entropy_backward_kernel);
}

#define GRAFT_INSTANTIATE(T)                                                                                       \
  template bool cross_entropy_forward_cuda<T>(int, const T*, CrossEntropyShape, const int64_t*, const T*,          \
                                              CrossEntropyParams, T*, cross_entropy_acc_t<T>*,                     \
                                              cross_entropy_acc_t<T>*, int64_t*);                                  \
  template void cross_entropy_backward_cuda<T>(int, const T*, CrossEntropyShape, const int64_t*, const T*,         \
                                               CrossEntropyParams, const cross_entropy_acc_t<T>*,                  \
                                               const cross_entropy_acc_t<T>*, const T*, T*);
GRAFT_INSTANTIATE(float)
GRAFT_INSTANTIATE(double)
GRAFT_INSTANTIATE(bf16)
GRAFT_INSTANTIATE(f16)

}  // namespace graft::kernels
