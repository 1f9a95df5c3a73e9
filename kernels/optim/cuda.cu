// Multi-tensor optimizer kernels (kernels/optim/adam.h). A launch covers a batch of up to
// kTensorsPerLaunch tensors whose pointers and sizes travel as kernel parameters (no device-side
// table to allocate and copy): blockIdx.y picks the tensor, and the blocks along x walk its
// elements with a grid-stride loop. Elements never interact in the updates, so the results do not
// depend on the grid; the norm sums use a fixed grid (kNormBlocks) and fixed trees instead.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/common/cuda.h"
#include "kernels/optim/adam.h"

namespace graft::kernels::optim {

namespace {

// 32 tensors of 5 double pointers and 3 scalars is ~2 KiB, well inside the 4 KiB of kernel parameters.
constexpr int kTensorsPerLaunch = 32;
// Blocks along x per tensor: about one full wave on an H100 (132 SMs x 8 blocks of 256 threads);
// bigger tensors loop.
constexpr int64_t kMaxBlocksX = 1024;
// Partial sums per tensor in the norm. Fixed (not derived from the GPU), so the summation order
// depends only on the tensor's size.
constexpr int kNormBlocks = 256;

unsigned grid_x(int64_t largest_numel) {
  return static_cast<unsigned>(std::min<int64_t>(cuda::blocks_for(largest_numel), kMaxBlocksX));
}

// One rounding per operation, never a fused multiply-add, as the CPU loops compute.
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }

// sign(x) as T: -1, 0 or 1, and 0 for NaN (the CPU's (x > 0) - (x < 0)).
template <class T>
__device__ __forceinline__ T sign_of(T x) {
  return static_cast<T>(static_cast<int>(x > T(0)) - static_cast<int>(x < T(0)));
}

__device__ __forceinline__ int64_t first_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// ---------------------------------------------------------------- Adam / AdamW

template <class T>
struct AdamBatch {
  T* param[kTensorsPerLaunch];
  const T* grad[kTensorsPerLaunch];
  T* exp_avg[kTensorsPerLaunch];
  T* exp_avg_sq[kTensorsPerLaunch];
  T* max_exp_avg_sq[kTensorsPerLaunch];
  int64_t numel[kTensorsPerLaunch];
  T step_size[kTensorsPerLaunch];
  T bias_correction2_sqrt[kTensorsPerLaunch];
};

template <class T>
struct AdamScalars {
  T decay, weight_decay, l1, beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
};

// train/optim/adam.cpp's adam_update, operation for operation.
template <class T, bool kAmsgrad>
__global__ void __launch_bounds__(cuda::kThreads) adam_kernel(AdamBatch<T> b, AdamScalars<T> s) {
  const int t = blockIdx.y;
  T* p = b.param[t];
  const T* grad = b.grad[t];
  T* m = b.exp_avg[t];
  T* v = b.exp_avg_sq[t];
  T* v_max = b.max_exp_avg_sq[t];
  const int64_t n = b.numel[t];
  const T step_size = b.step_size[t], bc2_sqrt = b.bias_correction2_sqrt[t];
  for (int64_t k = first_index(); k < n; k += grid_stride()) {
    const T original = p[k];
    T d = add_rn(grad[k], mul_rn(s.l1, sign_of(original)));
    const T param = mul_rn(original, s.decay);
    d = add_rn(d, mul_rn(s.weight_decay, param));
    const T mk = add_rn(mul_rn(m[k], s.beta1), mul_rn(s.one_minus_beta1, d));
    const T vk = add_rn(mul_rn(v[k], s.beta2), mul_rn(mul_rn(s.one_minus_beta2, d), d));
    m[k] = mk;
    v[k] = vk;
    T second = vk;
    if constexpr (kAmsgrad) {
      const T old_max = v_max[k];
      second = old_max > vk ? old_max : vk;
      v_max[k] = second;
    }
    const T denom = add_rn(div_rn(sqrt_rn(second), bc2_sqrt), s.eps);
    p[k] = sub_rn(param, mul_rn(step_size, div_rn(mk, denom)));
  }
}

// ---------------------------------------------------------------- SGD

template <class T>
struct SgdBatch {
  T* param[kTensorsPerLaunch];
  const T* grad[kTensorsPerLaunch];
  T* buffer[kTensorsPerLaunch];
  int64_t numel[kTensorsPerLaunch];
  T carry[kTensorsPerLaunch];  // weight of the old buffer: 0 on a fresh buffer, else momentum
  T keep[kTensorsPerLaunch];   // weight of the new gradient: 1 on a fresh buffer, else 1 - dampening
};

template <class T>
struct SgdScalars {
  T lr, weight_decay, l1;
  T d_weight, look_ahead, b_weight;  // Nesterov: d + momentum * b; plain: b (as in sgd.cpp)
};

// train/optim/sgd.cpp's sgd_update, operation for operation.
template <class T, bool kMomentum>
__global__ void __launch_bounds__(cuda::kThreads) sgd_kernel(SgdBatch<T> b, SgdScalars<T> s) {
  const int t = blockIdx.y;
  T* p = b.param[t];
  const T* grad = b.grad[t];
  T* buf = b.buffer[t];
  const int64_t n = b.numel[t];
  const T carry = b.carry[t], keep = b.keep[t];
  for (int64_t k = first_index(); k < n; k += grid_stride()) {
    const T param = p[k];
    T d = add_rn(grad[k], mul_rn(s.l1, sign_of(param)));
    d = add_rn(d, mul_rn(s.weight_decay, param));
    if constexpr (kMomentum) {
      const T bk = add_rn(mul_rn(buf[k], carry), mul_rn(keep, d));
      buf[k] = bk;
      d = add_rn(mul_rn(d, s.d_weight), add_rn(mul_rn(s.look_ahead, bk), mul_rn(s.b_weight, bk)));
    }
    p[k] = sub_rn(param, mul_rn(s.lr, d));
  }
}

// ---------------------------------------------------------------- clipping

template <class T>
struct GradBatch {
  using value_type = T;
  T* data[kTensorsPerLaunch];
  int64_t numel[kTensorsPerLaunch];
  int64_t slot[kTensorsPerLaunch];  // the buffer's index in the caller's list (norm partials row)
};

enum class NormKind : int { sum_abs, sum_squares, sum_pow, max_abs };

// max that propagates NaN (fmax would drop it), as clip.cpp's inf-norm.
__device__ __forceinline__ double nan_max(double a, double b) {
  if (isnan(a)) return a;
  if (isnan(b)) return b;
  return a > b ? a : b;
}

__device__ __forceinline__ double combine(NormKind kind, double a, double b) {
  return kind == NormKind::max_abs ? nan_max(a, b) : a + b;
}

// Block (x, t) writes partials[slot_t * kNormBlocks + x]: its share of tensor t, reduced by a
// fixed tree. A tensor uses ceil(numel / kThreads) blocks at most kNormBlocks; the rest write the
// identity 0 (|x| >= 0, so it is also the identity of the max).
template <class T>
__global__ void __launch_bounds__(cuda::kThreads)
    norm_partials_kernel(GradBatch<T> b, NormKind kind, double p, double* partials) {
  __shared__ double shared[cuda::kThreads];
  const int t = blockIdx.y;
  const T* x = b.data[t];
  const int64_t n = b.numel[t];
  const int64_t wanted = (n + cuda::kThreads - 1) / cuda::kThreads;
  const int64_t used = wanted < 1 ? 1 : (wanted > kNormBlocks ? kNormBlocks : wanted);
  double* out = partials + b.slot[t] * kNormBlocks + blockIdx.x;
  if (blockIdx.x >= used) {  // the whole block leaves together: no barrier is skipped
    if (threadIdx.x == 0) *out = 0.0;
    return;
  }
  double acc = 0.0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * cuda::kThreads + threadIdx.x; i < n; i += used * cuda::kThreads) {
    const double a = fabs(static_cast<double>(x[i]));
    switch (kind) {
      case NormKind::sum_abs: acc += a; break;
      case NormKind::sum_squares: acc += a * a; break;
      case NormKind::sum_pow: acc += pow(a, p); break;
      case NormKind::max_abs: acc = nan_max(acc, a); break;
    }
  }
  shared[threadIdx.x] = acc;
  __syncthreads();
  for (int half = cuda::kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] = combine(kind, shared[threadIdx.x], shared[threadIdx.x + half]);
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = shared[0];
}

// One block: each tensor's kNormBlocks partials by a fixed tree, then the tensors in list order
// (as clip.cpp adds its per-tensor parts), into *out.
__global__ void __launch_bounds__(cuda::kThreads)
    norm_finish_kernel(const double* partials, int64_t count, NormKind kind, double* out) {
  __shared__ double shared[cuda::kThreads];
  double total = 0.0;  // meaningful in thread 0 only
  for (int64_t t = 0; t < count; ++t) {
    double acc = 0.0;
    for (int i = threadIdx.x; i < kNormBlocks; i += cuda::kThreads) acc = combine(kind, acc, partials[t * kNormBlocks + i]);
    shared[threadIdx.x] = acc;
    __syncthreads();
    for (int half = cuda::kThreads / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) shared[threadIdx.x] = combine(kind, shared[threadIdx.x], shared[threadIdx.x + half]);
      __syncthreads();
    }
    if (threadIdx.x == 0) total = combine(kind, total, shared[0]);
    __syncthreads();  // shared is rewritten for the next tensor
  }
  if (threadIdx.x == 0) *out = total;
}

template <class T>
__global__ void __launch_bounds__(cuda::kThreads) scale_kernel(GradBatch<T> b, T coef) {
  const int t = blockIdx.y;
  T* x = b.data[t];
  const int64_t n = b.numel[t];
  for (int64_t k = first_index(); k < n; k += grid_stride()) x[k] = mul_rn(x[k], coef);
}

// std::clamp(x, -c, c): (x < -c) ? -c : (c < x) ? c : x, so NaN passes through.
template <class T>
__global__ void __launch_bounds__(cuda::kThreads) clamp_kernel(GradBatch<T> b, T c) {
  const int t = blockIdx.y;
  T* x = b.data[t];
  const int64_t n = b.numel[t];
  for (int64_t k = first_index(); k < n; k += grid_stride()) {
    const T v = x[k];
    x[k] = v < -c ? -c : (c < v ? c : v);
  }
}

// Calls launch(batch, tensors_in_batch, largest_numel) for the grads of type T, kTensorsPerLaunch
// at a time, in list order; slot is each buffer's index in the whole list.
template <class T, class Launch>
void for_each_grad_batch(const GradBuffer* grads, int64_t count, Launch&& launch) {
  constexpr bool kWantF64 = std::is_same_v<T, double>;
  GradBatch<T> batch{};
  int filled = 0;
  int64_t largest = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (grads[i].is_f64 != kWantF64) continue;
    batch.data[filled] = static_cast<T*>(grads[i].data);
    batch.numel[filled] = grads[i].numel;
    batch.slot[filled] = i;
    largest = std::max(largest, grads[i].numel);
    if (++filled == kTensorsPerLaunch) {
      launch(batch, filled, largest);
      batch = GradBatch<T>{};
      filled = 0;
      largest = 0;
    }
  }
  if (filled > 0) launch(batch, filled, largest);
}

// Device memory for one call, returned to the stream-ordered pool when the call ends (also on a throw).

}  // namespace

template <class T>
void adam_multi_tensor_cuda(const AdamTensor<T>* tensors, int64_t count, const AdamHyper& h, int device) {
  if (count <= 0) return;
  cuda::DeviceGuard guard(device);
  // Rounded to T on the host, as adam.cpp does before its loop.
  const AdamScalars<T> s{static_cast<T>(h.decay_factor), static_cast<T>(h.weight_decay), static_cast<T>(h.l1),
                         static_cast<T>(h.beta1),        static_cast<T>(1.0 - h.beta1),  static_cast<T>(h.beta2),
                         static_cast<T>(1.0 - h.beta2),  static_cast<T>(h.eps)};
  for (int64_t start = 0; start < count; start += kTensorsPerLaunch) {
    const int n = static_cast<int>(std::min<int64_t>(kTensorsPerLaunch, count - start));
    AdamBatch<T> b{};
    int64_t largest = 0;
    for (int i = 0; i < n; ++i) {
      const AdamTensor<T>& x = tensors[start + i];
      b.param[i] = x.param;
      b.grad[i] = x.grad;
      b.exp_avg[i] = x.exp_avg;
      b.exp_avg_sq[i] = x.exp_avg_sq;
      b.max_exp_avg_sq[i] = x.max_exp_avg_sq;
      b.numel[i] = x.numel;
      b.step_size[i] = static_cast<T>(x.step_size);
      b.bias_correction2_sqrt[i] = static_cast<T>(x.bias_correction2_sqrt);
      largest = std::max(largest, x.numel);
    }
    const dim3 grid(grid_x(largest), static_cast<unsigned>(n));
    if (h.amsgrad) {
      adam_kernel<T, true><<<grid, cuda::kThreads, 0, cuda::stream()>>>(b, s);
      GRAFT_CUDA_CHECK_LAUNCH(adam_kernel);
    } else {
      adam_kernel<T, false><<<grid, cuda::kThreads, 0, cuda::stream()>>>(b, s);
      GRAFT_CUDA_CHECK_LAUNCH(adam_kernel);
    }
  }
}

template <class T>
void sgd_multi_tensor_cuda(const SgdTensor<T>* tensors, int64_t count, const SgdHyper& h, int device) {
  if (count <= 0) return;
  cuda::DeviceGuard guard(device);
  const T momentum = static_cast<T>(h.momentum);
  const SgdScalars<T> s{static_cast<T>(h.lr),
                        static_cast<T>(h.weight_decay),
                        static_cast<T>(h.l1),
                        h.nesterov ? T(1) : T(0),
                        h.nesterov ? momentum : T(0),
                        h.nesterov ? T(0) : T(1)};
  const bool with_momentum = h.momentum != 0.0;
  for (int64_t start = 0; start < count; start += kTensorsPerLaunch) {
    const int n = static_cast<int>(std::min<int64_t>(kTensorsPerLaunch, count - start));
    SgdBatch<T> b{};
    int64_t largest = 0;
    for (int i = 0; i < n; ++i) {
      const SgdTensor<T>& x = tensors[start + i];
      b.param[i] = x.param;
      b.grad[i] = x.grad;
      b.buffer[i] = x.momentum_buffer;
      b.numel[i] = x.numel;
      b.carry[i] = x.fresh_buffer ? T(0) : momentum;
      b.keep[i] = x.fresh_buffer ? T(1) : static_cast<T>(1.0 - h.dampening);
      largest = std::max(largest, x.numel);
    }
    const dim3 grid(grid_x(largest), static_cast<unsigned>(n));
    if (with_momentum) {
      sgd_kernel<T, true><<<grid, cuda::kThreads, 0, cuda::stream()>>>(b, s);
      GRAFT_CUDA_CHECK_LAUNCH(sgd_kernel);
    } else {
      sgd_kernel<T, false><<<grid, cuda::kThreads, 0, cuda::stream()>>>(b, s);
      GRAFT_CUDA_CHECK_LAUNCH(sgd_kernel);
    }
  }
}

double grad_norm_accumulate_cuda(const GradBuffer* grads, int64_t count, double norm_type, int device) {
  if (count <= 0) return 0.0;
  cuda::DeviceGuard guard(device);
  const NormKind kind = std::isinf(norm_type) ? NormKind::max_abs
                        : norm_type == 2.0    ? NormKind::sum_squares
                        : norm_type == 1.0    ? NormKind::sum_abs
                                              : NormKind::sum_pow;
  // count rows of kNormBlocks partials, then the total.
  cuda::Scratch scratch((static_cast<std::size_t>(count) * kNormBlocks + 1) * sizeof(double));
  double* partials = scratch.as<double>();
  double* total = partials + count * kNormBlocks;
  auto launch = [&](auto& batch, int n, int64_t) {
    using T = typename std::decay_t<decltype(batch)>::value_type;
    norm_partials_kernel<T><<<dim3(kNormBlocks, n), cuda::kThreads, 0, cuda::stream()>>>(batch, kind, norm_type, partials);
    GRAFT_CUDA_CHECK_LAUNCH(norm_partials_kernel);
  };
  for_each_grad_batch<float>(grads, count, launch);
  for_each_grad_batch<double>(grads, count, launch);
  norm_finish_kernel<<<1, cuda::kThreads, 0, cuda::stream()>>>(partials, count, kind, total);
  GRAFT_CUDA_CHECK_LAUNCH(norm_finish_kernel);
  double host = 0.0;
  GRAFT_CUDA_CHECK(cudaMemcpyAsync(&host, total, sizeof(double), cudaMemcpyDeviceToHost, cuda::stream()));
  cuda::synchronize();
  return host;
}

void grad_scale_cuda(const GradBuffer* grads, int64_t count, double coef, int device) {
  if (count <= 0) return;
  cuda::DeviceGuard guard(device);
  auto launch = [&](auto& batch, int n, int64_t largest) {
    using T = typename std::decay_t<decltype(batch)>::value_type;
    scale_kernel<T><<<dim3(grid_x(largest), n), cuda::kThreads, 0, cuda::stream()>>>(batch, static_cast<T>(coef));
    GRAFT_CUDA_CHECK_LAUNCH(scale_kernel);
  };
  for_each_grad_batch<float>(grads, count, launch);
  for_each_grad_batch<double>(grads, count, launch);
}

void grad_clamp_cuda(const GradBuffer* grads, int64_t count, double clip_value, int device) {
  if (count <= 0) return;
  cuda::DeviceGuard guard(device);
  auto launch = [&](auto& batch, int n, int64_t largest) {
    using T = typename std::decay_t<decltype(batch)>::value_type;
    clamp_kernel<T><<<dim3(grid_x(largest), n), cuda::kThreads, 0, cuda::stream()>>>(batch, static_cast<T>(clip_value));
    GRAFT_CUDA_CHECK_LAUNCH(clamp_kernel);
  };
  for_each_grad_batch<float>(grads, count, launch);
  for_each_grad_batch<double>(grads, count, launch);
}

template void adam_multi_tensor_cuda<float>(const AdamTensor<float>*, int64_t, const AdamHyper&, int);
template void adam_multi_tensor_cuda<double>(const AdamTensor<double>*, int64_t, const AdamHyper&, int);
template void sgd_multi_tensor_cuda<float>(const SgdTensor<float>*, int64_t, const SgdHyper&, int);
template void sgd_multi_tensor_cuda<double>(const SgdTensor<double>*, int64_t, const SgdHyper&, int);

}  // namespace graft::kernels::optim
