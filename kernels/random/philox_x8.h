// Eight consecutive Philox4x32-10 blocks at once: words[w][b] = word w of
// philox4x32_10(first + b, seed) (philox.h), bit for bit. With AVX2 the eight blocks are the lanes
// of one register (the 32x32->64-bit products as even/odd vpmuludq pairs); dropout masks draw four
// elements per block, so this is what makes a mask cheap next to the pass that applies it.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "kernels/random/philox.h"

namespace graft::kernels {

inline void philox4x32_10_x8(uint64_t first, uint64_t seed, uint32_t words[4][8]) {
#if defined(__AVX2__)
  alignas(32) uint32_t lo[8], hi[8];
  for (int b = 0; b < 8; ++b) {
    const uint64_t counter = first + static_cast<uint64_t>(b);
    lo[b] = static_cast<uint32_t>(counter);
    hi[b] = static_cast<uint32_t>(counter >> 32);
  }
  __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
  __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi));
  __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
  __m256i k0 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(seed)));
  __m256i k1 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(seed >> 32)));
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(0xCD9E8D57u));
  const __m256i w0 = _mm256_set1_epi32(static_cast<int>(0x9E3779B9u));
  const __m256i w1 = _mm256_set1_epi32(static_cast<int>(0xBB67AE85u));
  // (high, low) 32-bit halves of the eight products a * m, back in a's lane order.
  auto mul_wide = [](__m256i a, __m256i m, __m256i& high, __m256i& low) {
    const __m256i even = _mm256_mul_epu32(a, m);
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    high = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    low = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  };
  for (int round = 0; round < 10; ++round) {
    __m256i hi0, lo0, hi1, lo1;
    mul_wide(c0, m0, hi0, lo0);
    mul_wide(c2, m1, hi1, lo1);
    const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), k0);
    const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), k1);
    c1 = lo1;
    c3 = lo0;
    c0 = n0;
    c2 = n2;
    k0 = _mm256_add_epi32(k0, w0);
    k1 = _mm256_add_epi32(k1, w1);
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(words[0]), c0);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(words[1]), c1);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(words[2]), c2);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(words[3]), c3);
#else
  for (int b = 0; b < 8; ++b) {
    const Philox4x32 r = philox4x32_10(first + static_cast<uint64_t>(b), seed);
    for (int w = 0; w < 4; ++w) words[w][b] = r.v[w];
  }
#endif
}

// philox_uniform(...) < keep_prob, for keep_prob in (0, 1], is (word >> 8) < this threshold: the
// uniform is (word >> 8) * 2^-24 exactly, and scaling the comparison by 2^24 is exact in double.
inline uint32_t philox_keep_threshold(double keep_prob) {
  return static_cast<uint32_t>(std::ceil(keep_prob * 16777216.0));
}

// factors[w][b] = factor where word w of block b keeps its element (see philox_keep_threshold),
// else 0: the dropout multipliers of elements 4 b + w of the eight blocks.
inline void dropout_factors_x8(const uint32_t words[4][8], uint32_t threshold, float factor, float factors[4][8]) {
#if defined(__AVX2__)
  const __m256i t = _mm256_set1_epi32(static_cast<int>(threshold));
  const __m256 f = _mm256_set1_ps(factor);
  for (int w = 0; w < 4; ++w) {
    const __m256i u = _mm256_srli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(words[w])), 8);
    _mm256_storeu_ps(factors[w], _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(t, u)), f));
  }
#else
  for (int w = 0; w < 4; ++w)
    for (int b = 0; b < 8; ++b) factors[w][b] = (words[w][b] >> 8) < threshold ? factor : 0.0f;
#endif
}

}  // namespace graft::kernels
