// Fused dropout on the CPU (see dropout.h). Philox runs on eight blocks (32 elements) at a time.
#include <algorithm>

#include "kernels/common/strided.h"
#include "kernels/random/dropout.h"
#include "kernels/random/philox_x8.h"

namespace graft::kernels {

namespace {

constexpr int kBlocks = 8;  // Philox blocks per batch: 32 elements

// Runs body(begin, end) over [0, n) in chunks that start at multiples of 4 * kBlocks elements.
template <class F>
void parallel_chunks(int64_t n, F body) {
  constexpr int64_t kChunk = 4 * kBlocks * 1024;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= 2 * kParallelGrain)
#endif
  for (int64_t c = 0; c < chunks; ++c) body(c * kChunk, std::min(n, (c + 1) * kChunk));
}

}  // namespace

template <class T>
void dropout_forward_cpu(const T* x, int64_t n, double keep_prob, T scale, uint64_t seed, uint64_t counter, T* out,
                         bool* keep) {
  const uint32_t threshold = philox_keep_threshold(keep_prob);
  parallel_chunks(n, [&](int64_t begin, int64_t end) {
    uint32_t words[4][kBlocks];
    float kept[4][kBlocks];
    for (int64_t base = begin; base < end; base += 4 * kBlocks) {
      philox4x32_10_x8(counter + static_cast<uint64_t>(base / 4), seed, words);
      dropout_factors_x8(words, threshold, 1.0f, kept);  // 1 where element 4 b + w is kept
      const int64_t count = std::min<int64_t>(4 * kBlocks, end - base);
      for (int64_t j = 0; j < count; ++j) {
        const bool k = kept[j & 3][j >> 2] != 0.0f;
        keep[base + j] = k;
        out[base + j] = x[base + j] * (k ? scale : T(0));
      }
    }
  });
}

template <class T>
void dropout_backward_cpu(const T* grad, const bool* keep, int64_t n, T scale, T* grad_x) {
  parallel_chunks(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) grad_x[i] = grad[i] * (keep[i] ? scale : T(0));
  });
}

template void dropout_forward_cpu<float>(const float*, int64_t, double, float, uint64_t, uint64_t, float*, bool*);
template void dropout_forward_cpu<double>(const double*, int64_t, double, double, uint64_t, uint64_t, double*, bool*);
template void dropout_backward_cpu<float>(const float*, const bool*, int64_t, float, float*);
template void dropout_backward_cpu<double>(const double*, const bool*, int64_t, double, double*);

}  // namespace graft::kernels
