// CPU elementwise kernels. Each op is a scalar lambda applied by one generic row loop; the
// contiguous case is a plain indexed loop the compiler vectorises.
#include <cmath>
#include <type_traits>

#include "kernels/common/half.h"
#include "kernels/elementwise/elementwise.h"
#include "kernels/elementwise/gelu.h"

namespace graft::kernels {

namespace {

template <class T> struct compute_type { using type = float; };
template <> struct compute_type<double> { using type = double; };
template <> struct compute_type<int32_t> { using type = int64_t; };
template <> struct compute_type<int64_t> { using type = int64_t; };
template <> struct compute_type<bool> { using type = bool; };
template <class T> using compute_t = typename compute_type<T>::type;

template <class C, class T> inline C load(const T& v) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) return static_cast<C>(static_cast<float>(v));
  else return static_cast<C>(v);
}
template <class T, class C> inline T store(C v) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) return T(static_cast<float>(v));
  else return static_cast<T>(v);
}

// out[i] = f(in[i]) over the iteration space.
template <class Out, class In, class F>
void map1(const StridedIter& it, void* out_raw, const void* in_raw, F f) {
  Out* out = static_cast<Out*>(out_raw);
  const In* in = static_cast<const In*>(in_raw);
  const int64_t so = it.inner_stride(0), si = it.inner_stride(1);
  for_each_row(it, [&](const int64_t* off, int64_t n) {
    Out* o = out + off[0];
    const In* x = in + off[1];
    if (so == 1 && si == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * so] = f(x[i * si]);
    }
  });
}

template <class Out, class In, class F>
void map2(const StridedIter& it, void* out_raw, const void* a_raw, const void* b_raw, F f) {
  Out* out = static_cast<Out*>(out_raw);
  const In* a = static_cast<const In*>(a_raw);
  const In* b = static_cast<const In*>(b_raw);
  const int64_t so = it.inner_stride(0), sa = it.inner_stride(1), sb = it.inner_stride(2);
  for_each_row(it, [&](const int64_t* off, int64_t n) {
    Out* o = out + off[0];
    const In* x = a + off[1];
    const In* y = b + off[2];
    if (so == 1 && sa == 1 && sb == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
    } else if (so == 1 && sa == 1 && sb == 0) {  // tensor op scalar, the common broadcast
      const In yv = y[0];
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * so] = f(x[i * sa], y[i * sb]);
    }
  });
}

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kSqrt2_Pi = 0.79788456080286535588;  // sqrt(2/pi)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1/sqrt(2*pi)

template <class C> inline C gelu_tanh_inner(C x) { return C(kSqrt2_Pi) * (x + C(0.044715) * x * x * x); }

template <class T, class C>
void unary_float(UnaryOp op, double a, double b, const StridedIter& it, void* out, const void* in) {
  auto run = [&](auto f) { map1<T, T>(it, out, in, [f](const T& v) { return store<T>(f(load<C>(v))); }); };
  const C ca = static_cast<C>(a), cb = static_cast<C>(b);
  if constexpr (std::is_same_v<T, float>) {
    if (op == UnaryOp::gelu_erf || op == UnaryOp::gelu_erf_grad) {  // vectorised, see gelu.h
      const int64_t so = it.inner_stride(0), si = it.inner_stride(1);
      return for_each_row(it, [&](const int64_t* off, int64_t n) {
        gelu_erf_f32(op == UnaryOp::gelu_erf_grad, static_cast<const float*>(in) + off[1], si,
                     static_cast<float*>(out) + off[0], so, n);
      });
    }
  }
  switch (op) {
    case UnaryOp::neg: return run([](C x) { return -x; });
    case UnaryOp::exp: return run([](C x) { return std::exp(x); });
    case UnaryOp::log: return run([](C x) { return std::log(x); });
    case UnaryOp::log1p: return run([](C x) { return std::log1p(x); });
    case UnaryOp::sqrt: return run([](C x) { return std::sqrt(x); });
    case UnaryOp::rsqrt: return run([](C x) { return C(1) / std::sqrt(x); });
    case UnaryOp::abs: return run([](C x) { return std::abs(x); });
    case UnaryOp::sign: return run([](C x) { return C((x > C(0)) - (x < C(0))); });
    case UnaryOp::square: return run([](C x) { return x * x; });
    case UnaryOp::reciprocal: return run([](C x) { return C(1) / x; });
    case UnaryOp::tanh: return run([](C x) { return std::tanh(x); });
    case UnaryOp::sigmoid: return run([](C x) { return C(1) / (C(1) + std::exp(-x)); });
    case UnaryOp::relu: return run([](C x) { return x > C(0) ? x : C(0); });
    case UnaryOp::gelu_erf: return run([](C x) { return C(0.5) * x * (C(1) + std::erf(x * C(kSqrt1_2))); });
    case UnaryOp::gelu_tanh:
      return run([](C x) { return C(0.5) * x * (C(1) + std::tanh(gelu_tanh_inner(x))); });
    case UnaryOp::gelu_erf_grad:
      return run([](C x) {
        C cdf = C(0.5) * (C(1) + std::erf(x * C(kSqrt1_2)));
        C pdf = C(kInvSqrt2Pi) * std::exp(C(-0.5) * x * x);
        return cdf + x * pdf;
      });
    case UnaryOp::gelu_tanh_grad:
      return run([](C x) {
        C t = std::tanh(gelu_tanh_inner(x));
        C dinner = C(kSqrt2_Pi) * (C(1) + C(3 * 0.044715) * x * x);
        return C(0.5) * (C(1) + t) + C(0.5) * x * (C(1) - t * t) * dinner;
      });
    case UnaryOp::erf: return run([](C x) { return std::erf(x); });
    case UnaryOp::sin: return run([](C x) { return std::sin(x); });
    case UnaryOp::cos: return run([](C x) { return std::cos(x); });
    case UnaryOp::pow_scalar:
      if (a == 2.0) return run([](C x) { return x * x; });
      return run([ca](C x) { return std::pow(x, ca); });
    case UnaryOp::clamp: return run([ca, cb](C x) { return std::isnan(x) ? x : std::min(std::max(x, ca), cb); });
    case UnaryOp::isnan: return map1<bool, T>(it, out, in, [](const T& v) { return std::isnan(load<C>(v)); });
    case UnaryOp::isinf: return map1<bool, T>(it, out, in, [](const T& v) { return std::isinf(load<C>(v)); });
  }
}

template <class T>
void unary_int(UnaryOp op, double a, double b, const StridedIter& it, void* out, const void* in) {
  using C = int64_t;
  auto run = [&](auto f) { map1<T, T>(it, out, in, [f](const T& v) { return static_cast<T>(f(static_cast<C>(v))); }); };
  const C ca = static_cast<C>(a), cb = static_cast<C>(b);
  if constexpr (std::is_same_v<T, float>) {
    if (op == UnaryOp::gelu_erf || op == UnaryOp::gelu_erf_grad) {  // vectorised, see gelu.h
      const int64_t so = it.inner_stride(0), si = it.inner_stride(1);
      return for_each_row(it, [&](const int64_t* off, int64_t n) {
        gelu_erf_f32(op == UnaryOp::gelu_erf_grad, static_cast<const float*>(in) + off[1], si,
                     static_cast<float*>(out) + off[0], so, n);
      });
    }
  }
  switch (op) {
    case UnaryOp::neg: return run([](C x) { return -x; });
    case UnaryOp::abs: return run([](C x) { return x < 0 ? -x : x; });
    case UnaryOp::sign: return run([](C x) { return C((x > 0) - (x < 0)); });
    case UnaryOp::square: return run([](C x) { return x * x; });
    case UnaryOp::relu: return run([](C x) { return x > 0 ? x : C(0); });
    case UnaryOp::clamp: return run([ca, cb](C x) { return std::min(std::max(x, ca), cb); });
    case UnaryOp::isnan:
    case UnaryOp::isinf: return map1<bool, T>(it, out, in, [](const T&) { return false; });
    default: return;  // the tensor layer rejects float-only ops on integers before we get here
  }
}

}  // namespace

template <class T>
void unary_cpu(UnaryOp op, double a, double b, const StridedIter& it, void* out, const void* in) {
  if constexpr (std::is_integral_v<T>) unary_int<T>(op, a, b, it, out, in);
  else unary_float<T, compute_t<T>>(op, a, b, it, out, in);
}

template <class T>
void binary_cpu(BinaryOp op, const StridedIter& it, void* out, const void* lhs, const void* rhs) {
  using C = compute_t<T>;
  auto run = [&](auto f) {
    map2<T, T>(it, out, lhs, rhs, [f](const T& x, const T& y) { return store<T>(f(load<C>(x), load<C>(y))); });
  };
  auto cmp = [&](auto f) {
    map2<bool, T>(it, out, lhs, rhs, [f](const T& x, const T& y) { return f(load<C>(x), load<C>(y)); });
  };
  switch (op) {
    case BinaryOp::add: return run([](C x, C y) { return C(x + y); });
    case BinaryOp::sub: return run([](C x, C y) { return C(x - y); });
    case BinaryOp::mul: return run([](C x, C y) { return C(x * y); });
    case BinaryOp::div:
      if constexpr (std::is_integral_v<C>) return run([](C x, C y) { return y == 0 ? C(0) : C(x / y); });
      else return run([](C x, C y) { return x / y; });
    case BinaryOp::pow:
      if constexpr (std::is_integral_v<C>) return;
      else return run([](C x, C y) { return std::pow(x, y); });
    case BinaryOp::maximum:
      if constexpr (std::is_floating_point_v<C>) return run([](C x, C y) { return (std::isnan(x) || x > y) ? x : y; });
      else return run([](C x, C y) { return x > y ? x : y; });
    case BinaryOp::minimum:
      if constexpr (std::is_floating_point_v<C>) return run([](C x, C y) { return (std::isnan(x) || x < y) ? x : y; });
      else return run([](C x, C y) { return x < y ? x : y; });
    case BinaryOp::eq: return cmp([](C x, C y) { return x == y; });
    case BinaryOp::ne: return cmp([](C x, C y) { return x != y; });
    case BinaryOp::lt: return cmp([](C x, C y) { return x < y; });
    case BinaryOp::le: return cmp([](C x, C y) { return x <= y; });
    case BinaryOp::gt: return cmp([](C x, C y) { return x > y; });
    case BinaryOp::ge: return cmp([](C x, C y) { return x >= y; });
    case BinaryOp::logical_and: return cmp([](C x, C y) { return static_cast<bool>(x) && static_cast<bool>(y); });
    case BinaryOp::logical_or: return cmp([](C x, C y) { return static_cast<bool>(x) || static_cast<bool>(y); });
  }
}

template <class T>
void where_cpu(const StridedIter& it, void* out_raw, const bool* cond, const void* a_raw, const void* b_raw) {
  T* out = static_cast<T*>(out_raw);
  const T* a = static_cast<const T*>(a_raw);
  const T* b = static_cast<const T*>(b_raw);
  const int64_t so = it.inner_stride(0), sc = it.inner_stride(1), sa = it.inner_stride(2), sb = it.inner_stride(3);
  for_each_row(it, [&](const int64_t* off, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      out[off[0] + i * so] = cond[off[1] + i * sc] ? a[off[2] + i * sa] : b[off[3] + i * sb];
  });
}

template <class Dst, class Src>
void copy_cpu(const StridedIter& it, void* out, const void* in) {
  if constexpr (std::is_same_v<Dst, Src>) {
    map1<Dst, Src>(it, out, in, [](const Src& v) { return v; });
  } else if constexpr (std::is_same_v<Dst, bool>) {
    map1<Dst, Src>(it, out, in, [](const Src& v) { return load<double>(v) != 0.0; });
  } else if constexpr (std::is_same_v<Dst, bf16> || std::is_same_v<Dst, f16>) {
    map1<Dst, Src>(it, out, in, [](const Src& v) { return Dst(load<float>(v)); });
  } else if constexpr (std::is_same_v<Src, bf16> || std::is_same_v<Src, f16>) {
    map1<Dst, Src>(it, out, in, [](const Src& v) { return static_cast<Dst>(static_cast<float>(v)); });
  } else {
    map1<Dst, Src>(it, out, in, [](const Src& v) { return static_cast<Dst>(v); });
  }
}

template <class T>
void fill_cpu(const StridedIter& it, void* out_raw, double value) {
  T* out = static_cast<T*>(out_raw);
  const T v = store<T>(static_cast<compute_t<T>>(value));
  const int64_t so = it.inner_stride(0);
  for_each_row(it, [&](const int64_t* off, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[off[0] + i * so] = v;
  });
}

#define GRAFT_FOR_ALL_TYPES(X) X(float) X(double) X(bf16) X(f16) X(int32_t) X(int64_t)
#define GRAFT_INSTANTIATE(T)                                                                 \
  template void unary_cpu<T>(UnaryOp, double, double, const StridedIter&, void*, const void*); \
  template void binary_cpu<T>(BinaryOp, const StridedIter&, void*, const void*, const void*);  \
  template void where_cpu<T>(const StridedIter&, void*, const bool*, const void*, const void*); \
  template void fill_cpu<T>(const StridedIter&, void*, double);
GRAFT_FOR_ALL_TYPES(GRAFT_INSTANTIATE)
template void binary_cpu<bool>(BinaryOp, const StridedIter&, void*, const void*, const void*);
template void where_cpu<bool>(const StridedIter&, void*, const bool*, const void*, const void*);
template void fill_cpu<bool>(const StridedIter&, void*, double);
#undef GRAFT_INSTANTIATE

#define GRAFT_COPY_FROM(Src) \
  template void copy_cpu<float, Src>(const StridedIter&, void*, const void*);   \
  template void copy_cpu<double, Src>(const StridedIter&, void*, const void*);  \
  template void copy_cpu<bf16, Src>(const StridedIter&, void*, const void*);    \
  template void copy_cpu<f16, Src>(const StridedIter&, void*, const void*);     \
  template void copy_cpu<int32_t, Src>(const StridedIter&, void*, const void*); \
  template void copy_cpu<int64_t, Src>(const StridedIter&, void*, const void*); \
  template void copy_cpu<bool, Src>(const StridedIter&, void*, const void*);
GRAFT_FOR_ALL_TYPES(GRAFT_COPY_FROM)
GRAFT_COPY_FROM(bool)
#undef GRAFT_COPY_FROM
#undef GRAFT_FOR_ALL_TYPES

const char* unary_op_name(UnaryOp op) {
  static const char* names[] = {"neg", "exp", "log", "log1p", "sqrt", "rsqrt", "abs", "sign", "square",
                                "reciprocal", "tanh", "sigmoid", "relu", "gelu", "gelu_tanh",
                                "gelu_backward", "gelu_tanh_backward", "erf", "sin", "cos", "pow",
                                "clamp", "isnan", "isinf"};
  return names[static_cast<int>(op)];
}
const char* binary_op_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq",
                                "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or"};
  return names[static_cast<int>(op)];
}
bool unary_op_needs_float(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: case UnaryOp::abs: case UnaryOp::sign: case UnaryOp::square:
    case UnaryOp::relu: case UnaryOp::clamp: case UnaryOp::isnan: case UnaryOp::isinf:
      return false;
    default:
      return true;
  }
}
bool unary_op_outputs_bool(UnaryOp op) { return op == UnaryOp::isnan || op == UnaryOp::isinf; }
bool binary_op_outputs_bool(BinaryOp op) { return op >= BinaryOp::eq; }

}  // namespace graft::kernels
