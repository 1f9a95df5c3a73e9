// Creating tensors. Random ones draw from a Philox Generator (tensor/random.h): the same seed gives
// the same numbers on any thread count.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace graft {

Tensor empty(const Shape& shape, TensorOptions options = {});
Tensor zeros(const Shape& shape, TensorOptions options = {});
Tensor ones(const Shape& shape, TensorOptions options = {});
Tensor full(const Shape& shape, double value, TensorOptions options = {});
Tensor scalar_tensor(double value, TensorOptions options = {});  // 0-d
// [start, end) in steps of step; dtype from options (f32 by default, or DType::i64 for indices).
Tensor arange(double start, double end, double step = 1.0, TensorOptions options = {});
Tensor arange(int64_t end, TensorOptions options = DType::i64);
Tensor linspace(double start, double end, int64_t steps, TensorOptions options = {});
Tensor eye(int64_t n, TensorOptions options = {});

Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);

// Uniform in [low, high) and normal(mean, std).
Tensor rand(const Shape& shape, TensorOptions options = {}, Generator* generator = nullptr);
Tensor uniform(const Shape& shape, double low, double high, TensorOptions options = {}, Generator* generator = nullptr);
Tensor randn(const Shape& shape, TensorOptions options = {}, Generator* generator = nullptr);
Tensor normal(const Shape& shape, double mean, double std, TensorOptions options = {}, Generator* generator = nullptr);
// Integers uniform in [low, high), i64 unless options say otherwise.
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions options = DType::i64,
               Generator* generator = nullptr);
// Bool mask, true with probability p.
Tensor bernoulli(const Shape& shape, double p, Device device = Device::cpu(), Generator* generator = nullptr);
Tensor randperm(int64_t n, Generator* generator = nullptr);  // i64

// Copies the values; shape defaults to 1-D of values.size().
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape = {}, TensorOptions options = dtype_of_v<T>);
// Wraps memory owned by the caller (no copy). The caller keeps it alive and contiguous; pass a
// deleter to hand ownership to graft instead.
Tensor from_blob(void* data, const Shape& shape, DType dtype, Storage::Deleter deleter = {},
                 Device device = Device::cpu());

extern template Tensor from_vector<float>(const std::vector<float>&, const Shape&, TensorOptions);
extern template Tensor from_vector<double>(const std::vector<double>&, const Shape&, TensorOptions);
extern template Tensor from_vector<int32_t>(const std::vector<int32_t>&, const Shape&, TensorOptions);
extern template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, TensorOptions);
template <>
Tensor from_vector<bool>(const std::vector<bool>&, const Shape&, TensorOptions);

}  // namespace graft
