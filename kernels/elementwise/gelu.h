// Exact (erf) GELU on f32: gelu(x) = x Φ(x) and its derivative Φ(x) + x φ(x), Φ and φ the
// standard normal CDF and density. Vectorised with AVX2 + FMA where the build targets them, else
// the same math one element at a time.
//
// Both are evaluated in double from one exponential:
//   Φ(-|x|) = 0.5 erfc(|x|/√2) = t exp(-x²/2) P(t),   t = 1 / (1 + q|x|),
// P a fitted polynomial, Φ(x) = 1 - Φ(-x) for x >= 0. x²/2 is exact in double and Φ(-|x|) never
// comes from 1 - erf (the cancellation that costs std::erf-based f32 GELU most of its digits for
// x < -1), so each f32 result is the rounding of a value within ~1e-10 relative of the true one
// (f32's half ulp is 6e-8): at most 1 ulp off, nearly always the correctly rounded value. NaN passes through; ±inf follow the formula (gelu(inf) = inf, gelu(-inf) =
// -inf * 0 = NaN, gelu'(±inf) = NaN), as PyTorch and the double reference do.
#pragma once

#include <cstdint>

namespace graft::kernels {

// y[i * sy] = gelu(x[i * sx]), or gelu'(x[i * sx]) when derivative, for i < n. One thread.
void gelu_erf_f32(bool derivative, const float* x, int64_t sx, float* y, int64_t sy, int64_t n);

// dx[i] = grad[i] * gelu'(x[i]) over contiguous buffers (the backward in one pass), threaded;
// gelu'(x) is rounded to f32 before the product, as the unfused grad * gelu'(x).
void gelu_erf_backward_f32(const float* grad, const float* x, int64_t n, float* dx);

}  // namespace graft::kernels
