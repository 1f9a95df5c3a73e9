#include <cmath>

#include "kernels/common/strided.h"
#include "kernels/norm/layer_norm.h"

namespace graft::kernels {

template <class T>
void layer_norm_forward_cpu(const T* x, const T* weight, const T* bias, int64_t rows, int64_t cols,
                            double eps, T* y, T* mean, T* rstd) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain)
#endif
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    double sum = 0, sum_sq = 0;
    for (int64_t i = 0; i < cols; ++i) sum += xr[i];
    const double mu = sum / static_cast<double>(cols);
    for (int64_t i = 0; i < cols; ++i) {
      double d = xr[i] - mu;
      sum_sq += d * d;
    }
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
      double sum_g = 0, sum_gx = 0;
      for (int64_t i = 0; i < cols; ++i) {
        double g = weight ? double(gy[i]) * weight[i] : double(gy[i]);
        sum_g += g;
        sum_gx += g * (xr[i] - m) * s;
      }
      const double mean_g = sum_g / static_cast<double>(cols), mean_gx = sum_gx / static_cast<double>(cols);
      for (int64_t i = 0; i < cols; ++i) {
        double g = weight ? double(gy[i]) * weight[i] : double(gy[i]);
        double xhat = (xr[i] - m) * s;
        gx[i] = static_cast<T>(s * (g - mean_g - xhat * mean_gx));
      }
    }
  }
  if (grad_weight || grad_bias) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelGrain)
#endif
    for (int64_t i = 0; i < cols; ++i) {
      double gw = 0, gb = 0;
      for (int64_t r = 0; r < rows; ++r) {
        double gy = grad_y[r * cols + i];
        gw += gy * (x[r * cols + i] - mean[r]) * rstd[r];
        gb += gy;
      }
      if (grad_weight) grad_weight[i] = static_cast<T>(gw);
      if (grad_bias) grad_bias[i] = static_cast<T>(gb);
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
