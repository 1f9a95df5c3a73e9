// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator. Element i of a draw depends only on (seed, counter + i / 4, i % 4), so
// any thread count, and the CUDA backend, produce the same numbers for the same seed.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define GRAFT_HOST_DEVICE __host__ __device__
#else
#define GRAFT_HOST_DEVICE
#endif

namespace graft::kernels {

struct Philox4x32 {
  uint32_t v[4];
};

GRAFT_HOST_DEVICE inline Philox4x32 philox4x32_10(uint64_t counter, uint64_t seed) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// Uniform in [0, 1) with 24 random bits (exact in f32).
GRAFT_HOST_DEVICE inline float philox_uniform(uint64_t seed, uint64_t counter, int64_t i) {
  Philox4x32 r = philox4x32_10(counter + static_cast<uint64_t>(i / 4), seed);
  return static_cast<float>(r.v[i % 4] >> 8) * (1.0f / 16777216.0f);
}

// Standard normal by Box-Muller: each counter's four words give two pairs, hence four normals.
GRAFT_HOST_DEVICE inline double philox_normal(uint64_t seed, uint64_t counter, int64_t i) {
  Philox4x32 r = philox4x32_10(counter + static_cast<uint64_t>(i / 4), seed);
  const int lane = static_cast<int>(i % 4), pair = lane / 2;
  const double u1 = (static_cast<double>(r.v[2 * pair]) + 1.0) * (1.0 / 4294967296.0);  // (0, 1]
  const double u2 = static_cast<double>(r.v[2 * pair + 1]) * (1.0 / 4294967296.0);
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 6.283185307179586476925 * u2;
  return (lane % 2 == 0) ? radius * std::cos(angle) : radius * std::sin(angle);
}

}  // namespace graft::kernels
