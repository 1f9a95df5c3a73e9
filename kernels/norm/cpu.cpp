#include <algorithm>
#include <cmath>

#include "kernels/common/strided.h"
#include "kernels/norm/layer_norm.h"

namespace graft::kernels {

namespace {

// Sum of f(i), i < n, in double over 8 interleaved partial sums combined in a fixed order: the
// same result on every run and thread count, and a loop the compiler vectorises (one running sum
// is a chain of dependent adds, latency-bound at ~4 cycles an element).
template <class F>
inline double sum8(int64_t n, F f) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += f(i + l);
  for (int l = 0; i < n; ++i, ++l) acc[l] += f(i);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace

template <class T>
void layer_norm_forward_cpu(const T* x, const T* weight, const T* bias, int64_t rows, int64_t cols,
                            double eps, T* y, T* mean, T* rstd) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain)
#endif
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const double mu = sum8(cols, [&](int64_t i) { return static_cast<double>(xr[i]); }) / static_cast<double>(cols);
    const double sum_sq = sum8(cols, [&](int64_t i) {
      const double d = xr[i] - mu;
      return d * d;
    });
    const double rs = 1.0 / std::sqrt(sum_sq / static_cast<double>(cols) + eps);
    const T m = static_cast<T>(mu), s = static_cast<T>(rs);
    for (int64_t i = 0; i < cols; ++i) {
      T v = (xr[i] - m) * s;
      if (weight) v *= weight[i];
      if (bias) v += bias[i];
      yr[i] = v;
    }
    mean[r] = m;
    rstd[r] = s;
  }
}

template <class T>
void layer_norm_backward_cpu(const T* grad_y, const T* x, const T* mean, const T* rstd, const T* weight,
                             int64_t rows, int64_t cols, T* grad_x, T* grad_weight, T* grad_bias) {
  if (grad_x) {
    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), with g = dy * weight
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain)
#endif
    for (int64_t r = 0; r < rows; ++r) {
      const T* gy = grad_y + r * cols;
      const T* xr = x + r * cols;
      T* gx = grad_x + r * cols;
      const double m = mean[r], s = rstd[r];
      auto g_at = [&](int64_t i) { return weight ? double(gy[i]) * weight[i] : double(gy[i]); };
      const double sum_g = sum8(cols, g_at);
      const double sum_gx = sum8(cols, [&](int64_t i) { return g_at(i) * (xr[i] - m) * s; });
      const double mean_g = sum_g / static_cast<double>(cols), mean_gx = sum_gx / static_cast<double>(cols);
      for (int64_t i = 0; i < cols; ++i) {
        double g = weight ? double(gy[i]) * weight[i] : double(gy[i]);
        double xhat = (xr[i] - m) * s;
        gx[i] = static_cast<T>(s * (g - mean_g - xhat * mean_gx));
      }
    }
  }
  if (grad_weight || grad_bias) {
    // Blocks of columns walk the rows in order (row-major reads; each column still sums its rows
    // in order, so the result is the column-at-a-time loop's, bit for bit).
    constexpr int64_t kCols = 64;
    const int64_t blocks = (cols + kCols - 1) / kCols;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain)
#endif
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * kCols, width = std::min(kCols, cols - c0);
      double gw[kCols] = {}, gb[kCols] = {};
      for (int64_t r = 0; r < rows; ++r) {
        const T* gyr = grad_y + r * cols + c0;
        const T* xr = x + r * cols + c0;
        const T m = mean[r], s = rstd[r];
        for (int64_t c = 0; c < width; ++c) {
          const double gy = gyr[c];
          gw[c] += gy * (xr[c] - m) * s;  // x - mean in T, as the column loop it replaces
          gb[c] += gy;
        }
      }
      for (int64_t c = 0; c < width; ++c) {
        if (grad_weight) grad_weight[c0 + c] = static_cast<T>(gw[c]);
        if (grad_bias) grad_bias[c0 + c] = static_cast<T>(gb[c]);
      }
    }
  }
}

template void layer_norm_forward_cpu<float>(const float*, const float*, const float*, int64_t, int64_t, double,
                                            float*, float*, float*);
template void layer_norm_forward_cpu<double>(const double*, const double*, const double*, int64_t, int64_t,
                                             double, double*, double*, double*);
template void layer_norm_backward_cpu<float>(const float*, const float*, const float*, const float*, const float*,
                                             int64_t, int64_t, float*, float*, float*);
template void layer_norm_backward_cpu<double>(const double*, const double*, const double*, const double*,
                                              const double*, int64_t, int64_t, double*, double*, double*);

}  // namespace graft::kernels
