#include "tensor/factory.h"

#include <cmath>
#include <numeric>

#include "kernels/common/strided.h"
#include "kernels/random/philox.h"
#include "kernels/random/random_cuda.h"
#include "tensor/ops.h"

namespace graft {

namespace {

Tensor finish(Tensor t, const TensorOptions& options) {
  if (options.requires_grad) t.requires_grad_(true);
  return t;
}

void check_shape(const char* op, const Shape& shape) {
  for (int64_t s : shape)
    if (s < 0) throw ShapeError(std::string(op) + ": negative size in shape " + shape_str(shape));
}

// Fills a fresh CPU tensor of `dtype` with f(i) for each linear index i, in parallel; then moves
// it to the requested device.
template <class F>
Tensor generate(const char* op, const Shape& shape, const TensorOptions& options, F f) {
  check_shape(op, shape);
  const int64_t n = shape_numel(shape);
  Tensor host = empty(shape, DType::f64);
  double* p = static_cast<double*>(host.data_ptr());
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= kernels::kParallelGrain)
#endif
  for (int64_t i = 0; i < n; ++i) p[i] = f(i);
  Tensor out = options.dtype == DType::f64 ? host : ops::cast(host, options.dtype);
  return finish(ops::to_device(out, options.device), options);
}

#if GRAFT_WITH_CUDA
// The random factories on a CUDA device: the tensor is drawn there (kernels/random/random_cuda.h),
// from the same (seed, counter) the CPU path would use, element for element.
template <class F>
Tensor generate_cuda(const char* op, const Shape& shape, const TensorOptions& options, F draw) {
  check_shape(op, shape);
  Tensor out = empty(shape, options.with_requires_grad(false));
  void* p = out.data_ptr();
  const int64_t n = out.numel();
  const int device = options.device.index;
  switch (options.dtype) {
    case DType::f32: draw(device, static_cast<float*>(p), n); break;
    case DType::f64: draw(device, static_cast<double*>(p), n); break;
    case DType::bf16: draw(device, static_cast<bf16*>(p), n); break;
    case DType::f16: draw(device, static_cast<f16*>(p), n); break;
    default: throw DTypeError(std::string(op) + ": needs a floating dtype, got " + dtype_name(options.dtype));
  }
  return finish(out, options);
}
#endif

}  // namespace

Tensor empty(const Shape& shape, TensorOptions options) {
  check_shape("empty", shape);
  const auto nbytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(options.dtype);
  auto storage = Storage::allocate(nbytes, options.device);
  return finish(make_tensor(std::move(storage), shape, contiguous_strides(shape), 0, options.dtype), options);
}

Tensor full(const Shape& shape, double value, TensorOptions options) {
  Tensor t = empty(shape, options.with_requires_grad(false));
  ops::fill(t, value);
  return finish(t, options);
}
Tensor zeros(const Shape& shape, TensorOptions options) { return full(shape, 0.0, options); }
Tensor ones(const Shape& shape, TensorOptions options) { return full(shape, 1.0, options); }
Tensor scalar_tensor(double value, TensorOptions options) { return full({}, value, options); }

Tensor arange(double start, double end, double step, TensorOptions options) {
  if (step == 0 || !std::isfinite(start) || !std::isfinite(end) || !std::isfinite(step))
    throw ValueError("arange: need finite bounds and a non-zero step");
  const double count = std::ceil((end - start) / step);
  const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  return generate("arange", {n}, options, [=](int64_t i) { return start + static_cast<double>(i) * step; });
}
Tensor arange(int64_t end, TensorOptions options) { return arange(0.0, static_cast<double>(end), 1.0, options); }

Tensor linspace(double start, double end, int64_t steps, TensorOptions options) {
  if (steps < 0) throw ValueError("linspace: steps must be non-negative");
  const double delta = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
  return generate("linspace", {steps}, options, [=](int64_t i) { return start + static_cast<double>(i) * delta; });
}

Tensor eye(int64_t n, TensorOptions options) {
  return generate("eye", {n, n}, options, [=](int64_t i) { return i / n == i % n ? 1.0 : 0.0; });
}

Tensor empty_like(const Tensor& t) { return empty(t.shape(), TensorOptions(t.dtype()).with_device(t.device())); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), TensorOptions(t.dtype()).with_device(t.device())); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), TensorOptions(t.dtype()).with_device(t.device())); }
Tensor full_like(const Tensor& t, double value) {
  return full(t.shape(), value, TensorOptions(t.dtype()).with_device(t.device()));
}

Tensor uniform(const Shape& shape, double low, double high, TensorOptions options, Generator* generator) {
  if (!is_floating(options.dtype)) throw DTypeError(std::string("uniform: needs a floating dtype, got ") + dtype_name(options.dtype));
  Generator& g = generator ? *generator : default_generator();
  const uint64_t seed = g.seed(), counter = g.reserve(shape_numel(shape));
#if GRAFT_WITH_CUDA
  if (options.device.is_cuda())
    return generate_cuda("uniform", shape, options, [=](int device, auto* out, int64_t n) {
      kernels::uniform_cuda(device, out, n, low, high, seed, counter);
    });
#endif
  return generate("uniform", shape, options, [=](int64_t i) {
    return low + (high - low) * static_cast<double>(kernels::philox_uniform(seed, counter, i));
  });
}
Tensor rand(const Shape& shape, TensorOptions options, Generator* generator) {
  return uniform(shape, 0.0, 1.0, options, generator);
}

Tensor normal(const Shape& shape, double mean, double std, TensorOptions options, Generator* generator) {
  if (!is_floating(options.dtype)) throw DTypeError(std::string("normal: needs a floating dtype, got ") + dtype_name(options.dtype));
  if (std < 0) throw ValueError("normal: std must be non-negative, got " + std::to_string(std));
  Generator& g = generator ? *generator : default_generator();
  const uint64_t seed = g.seed(), counter = g.reserve(shape_numel(shape));
#if GRAFT_WITH_CUDA
  if (options.device.is_cuda())
    return generate_cuda("normal", shape, options, [=](int device, auto* out, int64_t n) {
      kernels::normal_cuda(device, out, n, mean, std, seed, counter);
    });
#endif
  return generate("normal", shape, options,
                  [=](int64_t i) { return mean + std * kernels::philox_normal(seed, counter, i); });
}
Tensor randn(const Shape& shape, TensorOptions options, Generator* generator) {
  return normal(shape, 0.0, 1.0, options, generator);
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions options, Generator* generator) {
  if (high <= low) throw ValueError("randint: need low < high, got [" + std::to_string(low) + ", " + std::to_string(high) + ")");
  Generator& g = generator ? *generator : default_generator();
  const uint64_t seed = g.seed(), counter = g.reserve(shape_numel(shape));
  const double range = static_cast<double>(high - low);
  return generate("randint", shape, options, [=](int64_t i) {
    double u = static_cast<double>(kernels::philox_uniform(seed, counter, i));
    return static_cast<double>(low + std::min<int64_t>(static_cast<int64_t>(u * range), high - low - 1));
  });
}

Tensor bernoulli(const Shape& shape, double p, Device device, Generator* generator) {
  if (!(p >= 0.0 && p <= 1.0)) throw ValueError("bernoulli: p must be in [0, 1], got " + std::to_string(p));
  Generator& g = generator ? *generator : default_generator();
  const uint64_t seed = g.seed(), counter = g.reserve(shape_numel(shape));
#if GRAFT_WITH_CUDA
  if (device.is_cuda()) {
    check_shape("bernoulli", shape);
    Tensor out = empty(shape, TensorOptions(DType::boolean).with_device(device));
    kernels::bernoulli_cuda(device.index, static_cast<bool*>(out.data_ptr()), out.numel(), p, seed, counter);
    return out;
  }
#endif
  return generate("bernoulli", shape, TensorOptions(DType::boolean).with_device(device),
                  [=](int64_t i) { return kernels::philox_uniform(seed, counter, i) < p ? 1.0 : 0.0; });
}

Tensor randperm(int64_t n, Generator* generator) {
  if (n < 0) throw ValueError("randperm: n must be non-negative");
  Generator& g = generator ? *generator : default_generator();
  const uint64_t seed = g.seed(), counter = g.reserve(n);
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  for (int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates with one Philox draw per step
    const double u = kernels::philox_uniform(seed, counter, i);
    const int64_t j = std::min<int64_t>(static_cast<int64_t>(u * static_cast<double>(i + 1)), i);
    std::swap(v[static_cast<size_t>(i)], v[static_cast<size_t>(j)]);
  }
  return from_vector(v);
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape_in, TensorOptions options) {
  const Shape shape = shape_in.empty() && values.size() != 1 ? Shape{static_cast<int64_t>(values.size())} : shape_in;
  if (shape_numel(shape) != static_cast<int64_t>(values.size()))
    throw ShapeError("from_vector: " + std::to_string(values.size()) + " values do not fill shape " + shape_str(shape));
  Tensor host = empty(shape, dtype_of_v<T>);
  if (!values.empty()) std::memcpy(host.data_ptr(), values.data(), values.size() * sizeof(T));
  Tensor out = options.dtype == dtype_of_v<T> ? host : ops::cast(host, options.dtype);
  return finish(ops::to_device(out, options.device), options);
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, TensorOptions);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, TensorOptions);
template Tensor from_vector<int32_t>(const std::vector<int32_t>&, const Shape&, TensorOptions);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, TensorOptions);
template <>
Tensor from_vector<bool>(const std::vector<bool>& values, const Shape& shape, TensorOptions options) {
  std::vector<int32_t> ints(values.begin(), values.end());
  return from_vector(ints, shape, options);
}

Tensor from_blob(void* data, const Shape& shape, DType dtype, Storage::Deleter deleter, Device device) {
  check_shape("from_blob", shape);
  if (!data && shape_numel(shape) > 0) throw ValueError("from_blob: null data for a non-empty shape");
  auto storage = Storage::wrap(data, static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device, std::move(deleter));
  return make_tensor(std::move(storage), shape, contiguous_strides(shape), 0, dtype);
}

}  // namespace graft
