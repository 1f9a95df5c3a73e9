// Element types. f32 is the working type on the CPU; f64 exists for gradient checks; bf16/f16
// are storage types on the CPU (computed in f32) and compute types on CUDA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/common/half.h"

namespace graft {

enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64, boolean };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "f32", "f64", "bf16", "f16", "i32", "i64", "bool"
bool is_floating(DType dtype);
bool is_integral(DType dtype);  // i32, i64 (not bool)

// C++ type -> DType, for typed accessors (data_ptr<T>, from_vector<T>).
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };
template <class T> inline constexpr DType dtype_of_v = dtype_of<T>::value;

}  // namespace graft
