// CUDA elementwise kernels: the formulas of kernels/elementwise/cpu.cpp, case for case, one
// grid-stride loop over the linear index of a StridedIter. Each op computes in the CPU's compute
// type (16-bit floats in float, f64 in double, integers in int64), so GPU and CPU agree to the
// rounding of the two math libraries. The op is a kernel argument switched on per element (it is
// uniform across the grid, so nothing diverges): one kernel per dtype instead of one per
// (op, dtype) keeps this file's compile time small.
#include <cstring>
#include <type_traits>

#include "kernels/common/cuda.h"
#include "kernels/elementwise/elementwise.h"

namespace graft::kernels {

namespace {

using cuda::device_t;

// The compute type of a device storage type, as compute_t in cpu.cpp.
template <class T> struct Compute { using type = T; };
template <> struct Compute<__half> { using type = float; };
template <> struct Compute<__nv_bfloat16> { using type = float; };
template <> struct Compute<int32_t> { using type = int64_t; };
template <class T> using compute_t = typename Compute<T>::type;

template <class T>
constexpr bool is_16bit_v = std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

template <class C, class T>
__device__ __forceinline__ C to_compute(T v) {
  if constexpr (std::is_same_v<T, __half>) return static_cast<C>(__half2float(v));
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return static_cast<C>(__bfloat162float(v));
  else return static_cast<C>(v);
}

// 16-bit results round to nearest even from float, as graft::bf16 / graft::f16 do on the CPU.
template <class T, class C>
__device__ __forceinline__ T from_compute(C v) {
  if constexpr (std::is_same_v<T, __half>) return __float2half_rn(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16_rn(static_cast<float>(v));
  else return static_cast<T>(v);
}

__device__ __forceinline__ int64_t first_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }
using cuda::offsets_at;

// True when operand k is walked with unit stride over one dim: a plain buffer of n elements.
bool is_flat(const StridedIter& it, int k) { return it.ndim == 1 && it.strides[k][0] == 1; }

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kSqrt2_Pi = 0.79788456080286535588;    // sqrt(2/pi)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1/sqrt(2*pi)

template <class C>
__device__ __forceinline__ C gelu_tanh_inner(C x) { return C(kSqrt2_Pi) * (x + C(0.044715) * x * x * x); }

// unary_float in cpu.cpp; C is float or double (CUDA's math functions overload both).
template <class C>
__device__ C unary_float_op(UnaryOp op, C x, C a, C b) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return exp(x);
    case UnaryOp::log: return log(x);
    case UnaryOp::log1p: return log1p(x);
    case UnaryOp::sqrt: return sqrt(x);
    case UnaryOp::rsqrt: return C(1) / sqrt(x);  // not rsqrt(): the CPU divides
    case UnaryOp::abs: return fabs(x);
    case UnaryOp::sign: return C((x > C(0)) - (x < C(0)));
    case UnaryOp::square: return x * x;
    case UnaryOp::reciprocal: return C(1) / x;
    case UnaryOp::tanh: return tanh(x);
    case UnaryOp::sigmoid: return C(1) / (C(1) + exp(-x));
    case UnaryOp::relu: return x > C(0) ? x : C(0);
    case UnaryOp::gelu_erf: return C(0.5) * x * (C(1) + erf(x * C(kSqrt1_2)));
    case UnaryOp::gelu_tanh: return C(0.5) * x * (C(1) + tanh(gelu_tanh_inner(x)));
    case UnaryOp::gelu_erf_grad: {
      const C cdf = C(0.5) * (C(1) + erf(x * C(kSqrt1_2)));
      const C pdf = C(kInvSqrt2Pi) * exp(C(-0.5) * x * x);
      return cdf + x * pdf;
    }
    case UnaryOp::gelu_tanh_grad: {
      const C t = tanh(gelu_tanh_inner(x));
      const C dinner = C(kSqrt2_Pi) * (C(1) + C(3 * 0.044715) * x * x);
      return C(0.5) * (C(1) + t) + C(0.5) * x * (C(1) - t * t) * dinner;
    }
    case UnaryOp::erf: return erf(x);
    case UnaryOp::sin: return sin(x);
    case UnaryOp::cos: return cos(x);
    case UnaryOp::pow_scalar: return pow(x, a);  // the launcher maps x^2 to square, as the CPU does
    case UnaryOp::clamp: {                       // std::min(std::max(x, a), b), NaN kept
      if (isnan(x)) return x;
      const C lo = x < a ? a : x;
      return b < lo ? b : lo;
    }
    default: return x;  // isnan / isinf have their own kernel
  }
}

// f32 exact GELU and its derivative: the CPU evaluates them in double from Φ(-|x|) without erf's
// cancellation (gelu.h), so f32 results are (nearly always) correctly rounded; double erfc gives
// the same here. NaN and ±inf follow the formula as on the CPU.
__device__ float gelu_erf_in_double(bool derivative, float xf) {
  const double x = xf;
  const double cdf = 0.5 * erfc(-x * kSqrt1_2);
  if (!derivative) return static_cast<float>(x * cdf);
  return static_cast<float>(cdf + x * (exp(-0.5 * (x * x)) * kInvSqrt2Pi));
}

// unary_int in cpu.cpp, computed in int64.
__device__ int64_t unary_int_op(UnaryOp op, int64_t x, int64_t a, int64_t b) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::abs: return x < 0 ? -x : x;
    case UnaryOp::sign: return int64_t((x > 0) - (x < 0));
    case UnaryOp::square: return x * x;
    case UnaryOp::relu: return x > 0 ? x : int64_t(0);
    case UnaryOp::clamp: {
      const int64_t lo = x < a ? a : x;
      return b < lo ? b : lo;
    }
    default: return x;  // the tensor layer rejects float-only ops on integers
  }
}

template <class T>
__global__ void unary_kernel(StridedIter it, int64_t n, UnaryOp op, compute_t<T> a, compute_t<T> b, T* out,
                             const T* in) {
  using C = compute_t<T>;
  const bool gelu_f32 = std::is_same_v<T, float> && (op == UnaryOp::gelu_erf || op == UnaryOp::gelu_erf_grad);
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    int64_t off[2];
    offsets_at(it, i, off);
    const C x = to_compute<C>(in[off[1]]);
    C y;
    if constexpr (std::is_integral_v<T>) y = unary_int_op(op, x, a, b);
    else if (gelu_f32) y = gelu_erf_in_double(op == UnaryOp::gelu_erf_grad, static_cast<float>(x));
    else y = unary_float_op(op, x, a, b);
    out[off[0]] = from_compute<T>(y);
  }
}

// isnan / isinf: bool out; never true for integers.
template <class T>
__global__ void unary_bool_kernel(StridedIter it, int64_t n, UnaryOp op, bool* out, const T* in) {
  using C = compute_t<T>;
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    int64_t off[2];
    offsets_at(it, i, off);
    if constexpr (std::is_integral_v<T>) {
      out[off[0]] = false;
    } else {
      const C x = to_compute<C>(in[off[1]]);
      out[off[0]] = op == UnaryOp::isnan ? isnan(x) : isinf(x);
    }
  }
}

// binary_cpu's arithmetic ops.
template <class C>
__device__ C binary_op(BinaryOp op, C x, C y) {
  switch (op) {
    case BinaryOp::add: return C(x + y);
    case BinaryOp::sub: return C(x - y);
    case BinaryOp::mul: return C(x * y);
    case BinaryOp::div:
      if constexpr (std::is_integral_v<C>) return y == 0 ? C(0) : C(x / y);  // truncating; x/0 = 0
      else return x / y;
    case BinaryOp::pow:
      if constexpr (std::is_integral_v<C>) return x;  // rejected on integers by the tensor layer
      else return pow(x, y);
    case BinaryOp::maximum:
      if constexpr (std::is_floating_point_v<C>) return (isnan(x) || x > y) ? x : y;
      else return x > y ? x : y;
    case BinaryOp::minimum:
      if constexpr (std::is_floating_point_v<C>) return (isnan(x) || x < y) ? x : y;
      else return x < y ? x : y;
    default: return x;  // comparisons have their own kernel
  }
}

// binary_cpu's comparison and logical ops (bool out).
template <class C>
__device__ bool compare_op(BinaryOp op, C x, C y) {
  switch (op) {
    case BinaryOp::eq: return x == y;
    case BinaryOp::ne: return x != y;
    case BinaryOp::lt: return x < y;
    case BinaryOp::le: return x <= y;
    case BinaryOp::gt: return x > y;
    case BinaryOp::ge: return x >= y;
    case BinaryOp::logical_and: return static_cast<bool>(x) && static_cast<bool>(y);
    case BinaryOp::logical_or: return static_cast<bool>(x) || static_cast<bool>(y);
    default: return false;  // arithmetic ops have their own kernel
  }
}

template <class T>
__global__ void binary_kernel(StridedIter it, int64_t n, BinaryOp op, T* out, const T* lhs, const T* rhs) {
  using C = compute_t<T>;
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    int64_t off[3];
    offsets_at(it, i, off);
    out[off[0]] = from_compute<T>(binary_op<C>(op, to_compute<C>(lhs[off[1]]), to_compute<C>(rhs[off[2]])));
  }
}

template <class T>
__global__ void compare_kernel(StridedIter it, int64_t n, BinaryOp op, bool* out, const T* lhs, const T* rhs) {
  using C = compute_t<T>;
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    int64_t off[3];
    offsets_at(it, i, off);
    out[off[0]] = compare_op<C>(op, to_compute<C>(lhs[off[1]]), to_compute<C>(rhs[off[2]]));
  }
}

template <class T>
__global__ void where_kernel(StridedIter it, int64_t n, T* out, const bool* cond, const T* a, const T* b) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    int64_t off[4];
    offsets_at(it, i, off);
    out[off[0]] = cond[off[1]] ? a[off[2]] : b[off[3]];
  }
}

// copy_cpu's conversions: to bool via double != 0, to 16-bit via float, from 16-bit via float.
template <class Dst, class Src>
__device__ __forceinline__ Dst convert(Src v) {
  if constexpr (std::is_same_v<Dst, Src>) return v;
  else if constexpr (std::is_same_v<Dst, bool>) return to_compute<double>(v) != 0.0;
  else if constexpr (is_16bit_v<Dst>) return from_compute<Dst>(to_compute<float>(v));
  else if constexpr (is_16bit_v<Src>) return static_cast<Dst>(to_compute<float>(v));
  else return static_cast<Dst>(v);
}

template <class Dst, class Src>
__global__ void copy_kernel(StridedIter it, int64_t n, Dst* out, const Src* in) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    int64_t off[2];
    offsets_at(it, i, off);
    out[off[0]] = convert<Dst>(in[off[1]]);
  }
}

template <class T>
__global__ void fill_kernel(StridedIter it, int64_t n, T* out, T value) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    int64_t off[1];
    offsets_at(it, i, off);
    out[off[0]] = value;
  }
}

// fill_cpu's value: store<T>(static_cast<compute_t<T>>(value)), computed on the host so the bits
// are the CPU's.
template <class T>
T host_fill_value(double value) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) return T(static_cast<float>(value));
  else if constexpr (std::is_same_v<T, int32_t>) return static_cast<int32_t>(static_cast<int64_t>(value));
  else return static_cast<T>(value);
}

}  // namespace

template <class T>
void unary_cuda(UnaryOp op, double a, double b, const StridedIter& it, void* out, const void* in, int device) {
  using D = device_t<T>;
  using C = compute_t<D>;
  const int64_t n = it.numel();
  if (n == 0) return;
  if (op == UnaryOp::pow_scalar && a == 2.0) op = UnaryOp::square;  // the CPU's special case
  cuda::DeviceGuard guard(device);
  const unsigned blocks = cuda::blocks_for(n);
  if (unary_op_outputs_bool(op)) {
    unary_bool_kernel<D><<<blocks, cuda::kThreads, 0, cuda::stream()>>>(it, n, op, static_cast<bool*>(out),
                                                                         static_cast<const D*>(in));
    GRAFT_CUDA_CHECK_LAUNCH(unary_bool_kernel);
    return;
  }
  unary_kernel<D><<<blocks, cuda::kThreads, 0, cuda::stream()>>>(it, n, op, static_cast<C>(a), static_cast<C>(b),
                                                                  static_cast<D*>(out), static_cast<const D*>(in));
  GRAFT_CUDA_CHECK_LAUNCH(unary_kernel);
}

template <class T>
void binary_cuda(BinaryOp op, const StridedIter& it, void* out, const void* lhs, const void* rhs, int device) {
  using D = device_t<T>;
  const int64_t n = it.numel();
  if (n == 0) return;
  cuda::DeviceGuard guard(device);
  const unsigned blocks = cuda::blocks_for(n);
  if (binary_op_outputs_bool(op)) {
    compare_kernel<D><<<blocks, cuda::kThreads, 0, cuda::stream()>>>(it, n, op, static_cast<bool*>(out),
                                                                      static_cast<const D*>(lhs),
                                                                      static_cast<const D*>(rhs));
    GRAFT_CUDA_CHECK_LAUNCH(compare_kernel);
    return;
  }
  if constexpr (!std::is_same_v<T, bool>) {  // bool tensors take only comparisons and logic
    binary_kernel<D><<<blocks, cuda::kThreads, 0, cuda::stream()>>>(it, n, op, static_cast<D*>(out),
                                                                     static_cast<const D*>(lhs),
                                                                     static_cast<const D*>(rhs));
    GRAFT_CUDA_CHECK_LAUNCH(binary_kernel);
  }
}

template <class T>
void where_cuda(const StridedIter& it, void* out, const bool* cond, const void* a, const void* b, int device) {
  using D = device_t<T>;
  const int64_t n = it.numel();
  if (n == 0) return;
  cuda::DeviceGuard guard(device);
  where_kernel<D><<<cuda::blocks_for(n), cuda::kThreads, 0, cuda::stream()>>>(
      it, n, static_cast<D*>(out), cond, static_cast<const D*>(a), static_cast<const D*>(b));
  GRAFT_CUDA_CHECK_LAUNCH(where_kernel);
}

template <class Dst, class Src>
void copy_cuda(const StridedIter& it, void* out, const void* in, int device) {
  const int64_t n = it.numel();
  if (n == 0) return;
  cuda::DeviceGuard guard(device);
  if (std::is_same_v<Dst, Src> && is_flat(it, 0) && is_flat(it, 1)) {  // same bytes, both contiguous
    if (out != in)
      GRAFT_CUDA_CHECK(cudaMemcpyAsync(out, in, static_cast<size_t>(n) * sizeof(Dst), cudaMemcpyDeviceToDevice,
                                       cuda::stream()));
    return;
  }
  copy_kernel<device_t<Dst>, device_t<Src>><<<cuda::blocks_for(n), cuda::kThreads, 0, cuda::stream()>>>(
      it, n, static_cast<device_t<Dst>*>(out), static_cast<const device_t<Src>*>(in));
  GRAFT_CUDA_CHECK_LAUNCH(copy_kernel);
}

template <class T>
void fill_cuda(const StridedIter& it, void* out, double value, int device) {
  const int64_t n = it.numel();
  if (n == 0) return;
  const T host_value = host_fill_value<T>(value);
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &host_value, sizeof(T));
  bool all_zero = true;
  for (unsigned char byte : bytes) all_zero = all_zero && byte == 0;
  cuda::DeviceGuard guard(device);
  if (all_zero && is_flat(it, 0)) {  // zeros into a contiguous buffer: a memset
    GRAFT_CUDA_CHECK(cudaMemsetAsync(out, 0, static_cast<size_t>(n) * sizeof(T), cuda::stream()));
    return;
  }
  // Only bits move, so the kernel runs on graft's storage type (bf16 / f16 are plain 2-byte structs).
  fill_kernel<T><<<cuda::blocks_for(n), cuda::kThreads, 0, cuda::stream()>>>(it, n, static_cast<T*>(out),
                                                                               host_value);
  GRAFT_CUDA_CHECK_LAUNCH(fill_kernel);
}

// Only what tensor/ops_elementwise.cpp dispatches: unary on every non-bool dtype, the rest on all.
#define GRAFT_FOR_ALL_TYPES(X) X(float) X(double) X(bf16) X(f16) X(int32_t) X(int64_t) X(bool)
#define GRAFT_INSTANTIATE(T)                                                                           \
  template void binary_cuda<T>(BinaryOp, const StridedIter&, void*, const void*, const void*, int);   \
  template void where_cuda<T>(const StridedIter&, void*, const bool*, const void*, const void*, int); \
  template void fill_cuda<T>(const StridedIter&, void*, double, int);
GRAFT_FOR_ALL_TYPES(GRAFT_INSTANTIATE)
#undef GRAFT_INSTANTIATE

#define GRAFT_INSTANTIATE_UNARY(T) \
  template void unary_cuda<T>(UnaryOp, double, double, const StridedIter&, void*, const void*, int);
GRAFT_INSTANTIATE_UNARY(float)
GRAFT_INSTANTIATE_UNARY(double)
GRAFT_INSTANTIATE_UNARY(bf16)
GRAFT_INSTANTIATE_UNARY(f16)
GRAFT_INSTANTIATE_UNARY(int32_t)
GRAFT_INSTANTIATE_UNARY(int64_t)
#undef GRAFT_INSTANTIATE_UNARY

#define GRAFT_COPY_FROM(Src)                                                        \
  template void copy_cuda<float, Src>(const StridedIter&, void*, const void*, int);   \
  template void copy_cuda<double, Src>(const StridedIter&, void*, const void*, int);  \
  template void copy_cuda<bf16, Src>(const StridedIter&, void*, const void*, int);    \
  template void copy_cuda<f16, Src>(const StridedIter&, void*, const void*, int);     \
  template void copy_cuda<int32_t, Src>(const StridedIter&, void*, const void*, int); \
  template void copy_cuda<int64_t, Src>(const StridedIter&, void*, const void*, int); \
  template void copy_cuda<bool, Src>(const StridedIter&, void*, const void*, int);
GRAFT_FOR_ALL_TYPES(GRAFT_COPY_FROM)
#undef GRAFT_COPY_FROM
#undef GRAFT_FOR_ALL_TYPES

}  // namespace graft::kernels
