#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>
#include <algorithm>

#include "kernels/common/half.h"
#include "kernels/common/strided.h"
#include "kernels/reduce/reduce.h"

namespace graft::kernels {

namespace {

template <class T> inline double to_double(const T& v) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) return static_cast<float>(v);
  else return static_cast<double>(v);
}
template <class T> inline T from_double(double v) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) return T(static_cast<float>(v));
  else return static_cast<T>(v);
}

// Runs body(r) for each row; rows are independent, so any thread split gives the same result.
template <class F> void parallel_rows(int64_t rows, int64_t cols, F body) {
#ifdef _OPENMP
  if (rows > 1 && rows * cols >= kParallelGrain) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) body(r);
    return;
  }
#endif
  for (int64_t r = 0; r < rows; ++r) body(r);
}

// Sum of a long row in fixed blocks combined in order: deterministic and parallel when rows == 1.
template <class T> double sum_row(const T* x, int64_t cols, bool parallel) {
  constexpr int64_t kBlock = 8192;
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
  if (!parallel || blocks < 4) {
    double acc = 0;
    for (int64_t i = 0; i < cols; ++i) acc += to_double(x[i]);
    return acc;
  }
  std::vector<double> partial(static_cast<size_t>(blocks));
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
  for (int64_t b = 0; b < blocks; ++b) {
    double acc = 0;
    const int64_t end = std::min(cols, (b + 1) * kBlock);
    for (int64_t i = b * kBlock; i < end; ++i) acc += to_double(x[i]);
    partial[static_cast<size_t>(b)] = acc;
  }
  double acc = 0;
  for (double p : partial) acc += p;
  return acc;
}

// Column of the first maximum (or minimum) of a row; the first NaN wins, as in PyTorch.
template <class T> int64_t extreme_index(bool is_max, const T* x, int64_t cols) {
  double best = to_double(x[0]);
  int64_t best_i = 0;
  for (int64_t i = 1; i < cols && !std::isnan(best); ++i) {
    const double v = to_double(x[i]);
    if (std::isnan(v) || (is_max ? v > best : v < best)) {
      best = v;
      best_i = i;
    }
  }
  return best_i;
}

}  // namespace

template <class T>
void reduce_rows_cpu(ReduceOp op, const T* in, int64_t rows, int64_t cols, T* out, int64_t* index) {
  parallel_rows(rows, cols, [&](int64_t r) {
    const T* x = in + r * cols;
    switch (op) {
      case ReduceOp::sum:
      case ReduceOp::mean: {
        if constexpr (std::is_integral_v<T>) {  // exact: integers add in int64, never through double
          int64_t acc = 0;
          for (int64_t i = 0; i < cols; ++i) acc += static_cast<int64_t>(x[i]);
          out[r] = static_cast<T>(acc);
          break;
        }
        double acc = sum_row(x, cols, rows == 1);
        if (op == ReduceOp::mean) acc /= static_cast<double>(cols);
        out[r] = from_double<T>(acc);
        break;
      }
      case ReduceOp::prod: {
        if constexpr (std::is_integral_v<T>) {
          int64_t acc = 1;
          for (int64_t i = 0; i < cols; ++i) acc *= static_cast<int64_t>(x[i]);
          out[r] = static_cast<T>(acc);
          break;
        }
        double acc = 1;
        for (int64_t i = 0; i < cols; ++i) acc *= to_double(x[i]);
        out[r] = from_double<T>(acc);
        break;
      }
      case ReduceOp::max:
      case ReduceOp::min: {
        const int64_t best_i = extreme_index(op == ReduceOp::max, x, cols);
        out[r] = x[best_i];
        if (index) index[r] = best_i;
        break;
      }
    }
  });
}

template <class T>
void reduce_cols_cpu(ReduceOp op, const T* in, int64_t rows, int64_t cols, T* out) {
  using Acc = std::conditional_t<std::is_integral_v<T>, int64_t, double>;
  constexpr int64_t kCols = 64;  // a block's accumulators stay in registers and L1; blocks balance threads
  const int64_t blocks = (cols + kCols - 1) / kCols;
  auto run_block = [&](int64_t b) {
    const int64_t c0 = b * kCols, width = std::min(kCols, cols - c0);
    Acc acc[kCols] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* x = in + r * cols + c0;
      for (int64_t c = 0; c < width; ++c) {
        if constexpr (std::is_integral_v<T>) acc[c] += static_cast<int64_t>(x[c]);
        else acc[c] += to_double(x[c]);
      }
    }
    for (int64_t c = 0; c < width; ++c) {
      if constexpr (std::is_integral_v<T>) {
        out[c0 + c] = static_cast<T>(acc[c]);  // mean is float-only (the tensor layer checks)
      } else {
        out[c0 + c] = from_double<T>(op == ReduceOp::mean ? acc[c] / static_cast<double>(rows) : acc[c]);
      }
    }
  };
#ifdef _OPENMP
  if (blocks > 1 && rows * cols >= kParallelGrain) {
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) run_block(b);
    return;
  }
#endif
  for (int64_t b = 0; b < blocks; ++b) run_block(b);
}

template <class T>
void arg_reduce_rows_cpu(bool is_max, const T* in, int64_t rows, int64_t cols, int64_t* index) {
  parallel_rows(rows, cols, [&](int64_t r) {
    index[r] = extreme_index(is_max, in + r * cols, cols);
  });
}

template <class T>
void softmax_rows_cpu(bool log, const T* in, int64_t rows, int64_t cols, T* out) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  parallel_rows(rows, cols, [&](int64_t r) {
    const T* x = in + r * cols;
    T* y = out + r * cols;
    C mx = -std::numeric_limits<C>::infinity();
    for (int64_t i = 0; i < cols; ++i) mx = std::max(mx, static_cast<C>(to_double(x[i])));
    double sum = 0;
    for (int64_t i = 0; i < cols; ++i) sum += std::exp(static_cast<C>(to_double(x[i])) - mx);
    if (log) {
      const C lse = mx + static_cast<C>(std::log(sum));
      for (int64_t i = 0; i < cols; ++i) y[i] = from_double<T>(static_cast<C>(to_double(x[i])) - lse);
    } else {
      const C inv = static_cast<C>(1.0 / sum);
      for (int64_t i = 0; i < cols; ++i) y[i] = from_double<T>(std::exp(static_cast<C>(to_double(x[i])) - mx) * inv);
    }
  });
}

#define GRAFT_INSTANTIATE(T)                                                                 \
  template void reduce_rows_cpu<T>(ReduceOp, const T*, int64_t, int64_t, T*, int64_t*);     \
  template void reduce_cols_cpu<T>(ReduceOp, const T*, int64_t, int64_t, T*);               \
  template void arg_reduce_rows_cpu<T>(bool, const T*, int64_t, int64_t, int64_t*);
GRAFT_INSTANTIATE(float)
GRAFT_INSTANTIATE(double)
GRAFT_INSTANTIATE(bf16)
GRAFT_INSTANTIATE(f16)
GRAFT_INSTANTIATE(int32_t)
GRAFT_INSTANTIATE(int64_t)
#undef GRAFT_INSTANTIATE
template void softmax_rows_cpu<float>(bool, const float*, int64_t, int64_t, float*);
template void softmax_rows_cpu<double>(bool, const double*, int64_t, int64_t, double*);

}  // namespace graft::kernels
