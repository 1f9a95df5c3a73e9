// Exact GELU and its derivative on f32 (see gelu.h for the method and the accuracy claim).
// Shape of the math, per element, in double:
//   a = |x|, t = 1 / (1 + q a), e = exp(-a²/2), h = t e P(t) = Φ(-a)   (P holds the 0.5)
//   Φ(x) = x < 0 ? h : 1 - h,   gelu = x Φ(x),   gelu' = Φ(x) + x e / √(2π)
#include <algorithm>
#include <cmath>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define GRAFT_GELU_AVX2 1
#endif

#include "kernels/common/strided.h"
#include "kernels/elementwise/gelu.h"

namespace graft::kernels {

namespace {

// t = 1 / (1 + kQ a) = 1 / (1 + 0.3 z) with z = a / √2; P(t) = 0.5 erfc(z) exp(z²) / t on t in
// [0, 1] (all a >= 0): mpmath's chebyfit, 14 terms, max error 3.4e-11 (P >= 0.08); checked in
// double against mpmath's erfc: Φ(-a) and 1 - Φ(-a) within 8e-11 relative for a <= 37. That is
// far below f32's half ulp (6e-8), and two fewer terms cost less than the margin is worth.
// Highest degree first, for Horner.
constexpr double kQ = 0.21213203435596426;  // 0.3 / sqrt(2)
constexpr int kPTerms = 14;
constexpr double kP[kPTerms] = {
    -0.00707490681750429, 0.04284504513203744,  -0.10097484075844335, 0.1179580972073442,  -0.09062754271911315,
    0.06083901040597392,  0.0031568142703678934, 0.03995718552264522, 0.048254333677806134, 0.06239297098310011,
    0.07319654009823233,  0.08082042186857323,  0.08462843356960348,  0.08462843754222149};

constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1/sqrt(2π)

// exp(y) for y <= 0 in double, within a few ulp of double; 0 below -708 (where every f32 result
// it feeds is 0 or a NaN the formula gives anyway).
inline double exp_nonpositive(double y) { return y < -708.0 ? 0.0 : std::exp(y); }

inline double poly_p(double t) {
  double p = kP[0];
  for (int i = 1; i < kPTerms; ++i) p = std::fma(p, t, kP[i]);
  return p;
}

// (Φ(x), exp(-x²/2)) for one element.
inline void normal_cdf_scalar(double x, double& cdf, double& e) {
  const double a = std::fabs(x);
  const double t = 1.0 / std::fma(kQ, a, 1.0);
  e = exp_nonpositive(-0.5 * (a * a));
  const double h = t * poly_p(t) * e;
  cdf = x < 0 ? h : 1.0 - h;
}

inline float gelu_scalar(bool derivative, float xf) {
  if (std::isnan(xf)) return xf;
  const double x = xf;
  double cdf, e;
  normal_cdf_scalar(x, cdf, e);
  return static_cast<float>(derivative ? cdf + x * (e * kInvSqrt2Pi) : x * cdf);
}

#ifdef GRAFT_GELU_AVX2

// exp(y) for y <= 0, four lanes: Cody-Waite reduction by ln 2, Taylor to degree 10 on
// |r| <= ln2 / 2 (truncation 2e-13 relative), scaled by 2^n through the exponent bits. The kernel
// is bound by FMA throughput, so every term counts.
inline __m256d exp_nonpositive(__m256d y) {
  const __m256d under = _mm256_cmp_pd(y, _mm256_set1_pd(-708.0), _CMP_LT_OQ);
  y = _mm256_max_pd(y, _mm256_set1_pd(-708.0));
  const __m256d n = _mm256_round_pd(_mm256_mul_pd(y, _mm256_set1_pd(1.4426950408889634074)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93147180369123816490e-01), y);  // ln2 high part
  r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.90821492927058770002e-10), r);          // ln2 low part
  __m256d p = _mm256_set1_pd(1.0 / 3628800.0);
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 362880.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 40320.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 5040.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 720.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 120.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 24.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 6.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(0.5));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0));
  // 2^n: n + 1.5 * 2^52 holds n in its low mantissa bits; n >= -1022 keeps the exponent normal.
  const __m256d shifter = _mm256_set1_pd(6755399441055744.0);
  const __m256i ni = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(n, shifter)), _mm256_castpd_si256(shifter));
  const __m256i bits = _mm256_slli_epi64(_mm256_add_epi64(ni, _mm256_set1_epi64x(1023)), 52);
  return _mm256_andnot_pd(under, _mm256_mul_pd(p, _mm256_castsi256_pd(bits)));
}

// Four lanes of (Φ(x), exp(-x²/2)).
inline void normal_cdf(__m256d x, __m256d& cdf, __m256d& e) {
  const __m256d one = _mm256_set1_pd(1.0);
  const __m256d a = _mm256_andnot_pd(_mm256_set1_pd(-0.0), x);
  const __m256d t = _mm256_div_pd(one, _mm256_fmadd_pd(_mm256_set1_pd(kQ), a, one));
  e = exp_nonpositive(_mm256_mul_pd(_mm256_mul_pd(a, a), _mm256_set1_pd(-0.5)));
  __m256d p = _mm256_set1_pd(kP[0]);
  for (int i = 1; i < kPTerms; ++i) p = _mm256_fmadd_pd(p, t, _mm256_set1_pd(kP[i]));
  const __m256d h = _mm256_mul_pd(_mm256_mul_pd(t, p), e);
  cdf = _mm256_blendv_pd(_mm256_sub_pd(one, h), h, _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_LT_OQ));
}

template <bool kDerivative>
inline __m128 gelu4(__m128 xf) {
  const __m256d x = _mm256_cvtps_pd(xf);
  __m256d cdf, e;
  normal_cdf(x, cdf, e);
  const __m256d r = kDerivative ? _mm256_fmadd_pd(x, _mm256_mul_pd(e, _mm256_set1_pd(kInvSqrt2Pi)), cdf)
                                : _mm256_mul_pd(x, cdf);
  const __m128 rf = _mm256_cvtpd_ps(r);
  return _mm_blendv_ps(rf, xf, _mm_cmpunord_ps(xf, xf));  // NaN in, the same NaN out
}

// Contiguous x -> y, eight elements a step; the tail goes through a padded buffer so every
// element takes the same vector path.
template <bool kDerivative>
void gelu_contiguous(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128 lo = gelu4<kDerivative>(_mm_loadu_ps(x + i)), hi = gelu4<kDerivative>(_mm_loadu_ps(x + i + 4));
    _mm_storeu_ps(y + i, lo);
    _mm_storeu_ps(y + i + 4, hi);
  }
  for (; i < n; i += 4) {
    float in[4] = {0, 0, 0, 0}, out[4];
    const int64_t m = std::min<int64_t>(4, n - i);
    std::copy(x + i, x + i + m, in);
    _mm_storeu_ps(out, gelu4<kDerivative>(_mm_loadu_ps(in)));
    std::copy(out, out + m, y + i);
  }
}

void gelu_contiguous(bool derivative, const float* x, float* y, int64_t n) {
  if (derivative) gelu_contiguous<true>(x, y, n);
  else gelu_contiguous<false>(x, y, n);
}

void gelu_backward_contiguous(const float* g, const float* x, float* dx, int64_t n) {
  float d[256];
  for (int64_t i = 0; i < n; i += 256) {
    const int64_t m = std::min<int64_t>(256, n - i);
    gelu_contiguous(true, x + i, d, m);
    for (int64_t j = 0; j < m; ++j) dx[i + j] = g[i + j] * d[j];
  }
}

#else

void gelu_contiguous(bool derivative, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_scalar(derivative, x[i]);
}

void gelu_backward_contiguous(const float* g, const float* x, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = g[i] * gelu_scalar(true, x[i]);
}

#endif

}  // namespace

void gelu_erf_f32(bool derivative, const float* x, int64_t sx, float* y, int64_t sy, int64_t n) {
  if (sx == 1 && sy == 1) return gelu_contiguous(derivative, x, y, n);
  float in[256], out[256];  // strided: gather, run the contiguous path, scatter
  for (int64_t i = 0; i < n; i += 256) {
    const int64_t m = std::min<int64_t>(256, n - i);
    for (int64_t j = 0; j < m; ++j) in[j] = x[(i + j) * sx];
    gelu_contiguous(derivative, in, out, m);
    for (int64_t j = 0; j < m; ++j) y[(i + j) * sy] = out[j];
  }
}

void gelu_erf_backward_f32(const float* grad, const float* x, int64_t n, float* dx) {
  constexpr int64_t kChunk = 16384;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= 2 * kParallelGrain)
#endif
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    gelu_backward_contiguous(grad + begin, x + begin, dx + begin, std::min(kChunk, n - begin));
  }
}

}  // namespace graft::kernels
