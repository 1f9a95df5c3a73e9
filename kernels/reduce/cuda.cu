// Row reductions, column sums and softmax on CUDA, with the semantics of kernels/reduce/cpu.cpp.
//
// Determinism: every result is a fixed function of (rows, cols) and the data. A "group" of G
// threads reduces one row (G = 32: one warp, several rows per block; G = 512: one block). Thread t
// of the group folds elements t, t + G, t + 2G, ... in order, then the group combines its threads
// in a fixed shuffle tree (warps first, then the warp results in thread order). Long rows are cut
// into fixed-length segments whose partial states a second pass combines the same way. No atomics.
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "kernels/common/cuda.h"
#include "kernels/reduce/reduce.h"

namespace graft::kernels {

namespace {

using cuda::Scratch;

using cuda::acc_t;
using cuda::device_t;

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarpGroup = 32;        // one warp per row, for short rows
constexpr int kBlockGroup = 512;      // one block per row (or segment), for long rows
constexpr int kWarpBlockThreads = 256;  // warps per block in warp mode: 8 rows per block
constexpr int64_t kShortRow = 1024;   // rows up to this long use a warp
constexpr int64_t kSegment = 16384;   // segment length when a few long rows are split
constexpr int64_t kMaxBlocks = 65535LL * 8;

int group_for(int64_t cols) { return cols <= kShortRow ? kWarpGroup : kBlockGroup; }

// ---- shuffles for the reduction states (scalars and the extreme's (value, index) pair) ----

template <class V>
struct Extreme {  // no constructors: lives in __shared__ memory
  V v;
  int64_t i;  // column of v; -1 for "no element yet"
};

template <class S>
__device__ __forceinline__ S shfl_down(S s, int offset) { return __shfl_down_sync(kFullMask, s, offset); }
template <class V>
__device__ __forceinline__ Extreme<V> shfl_down(Extreme<V> s, int offset) {
  return {__shfl_down_sync(kFullMask, s.v, offset), __shfl_down_sync(kFullMask, s.i, offset)};
}
template <class S>
__device__ __forceinline__ S shfl_from(S s, int lane) { return __shfl_sync(kFullMask, s, lane); }
template <class V>
__device__ __forceinline__ Extreme<V> shfl_from(Extreme<V> s, int lane) {
  return {__shfl_sync(kFullMask, s.v, lane), __shfl_sync(kFullMask, s.i, lane)};
}

// Combines the G threads' states of a group in a fixed tree and returns the result to all of
// them. Block mode (G > 32) needs G == blockDim.x, smem of G / 32 states, and every thread of
// the block calling it (it synchronizes the block).
template <int G, class S, class F>
__device__ S group_allreduce(S s, S identity, F combine, S* smem) {
  for (int offset = 16; offset > 0; offset /= 2) s = combine(s, shfl_down(s, offset));
  if constexpr (G == 32) {
    return shfl_from(s, 0);
  } else {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) smem[warp] = s;
    __syncthreads();
    if (warp == 0) {
      s = lane < G / 32 ? smem[lane] : identity;
      for (int offset = 16; offset > 0; offset /= 2) s = combine(s, shfl_down(s, offset));
      if (lane == 0) smem[0] = s;
    }
    __syncthreads();
    s = smem[0];
    __syncthreads();  // smem is reused by the group's next row
    return s;
  }
}

template <class V>
__device__ __forceinline__ bool is_nan(V v) {
  if constexpr (std::is_floating_point_v<V>) return v != v;
  else return false;
}

// ---- reducers: what a row folds (State), how states combine, how the result is written ----

// sum, mean (floats in double, integers in int64) and prod.
template <class T>
struct SumProdReducer {
  using D = device_t<T>;
  using State = std::conditional_t<std::is_integral_v<T>, int64_t, double>;
  const D* in;
  D* out;
  int64_t cols;
  ReduceOp op;

  __device__ State identity() const { return op == ReduceOp::prod ? State(1) : State(0); }
  __device__ State load(int64_t row, int64_t col) const { return static_cast<State>(cuda::load(in + row * cols + col)); }
  __device__ State combine(State a, State b) const { return op == ReduceOp::prod ? a * b : a + b; }
  __device__ void finish(int64_t row, State s) const {
    if constexpr (!std::is_integral_v<T>) {
      if (op == ReduceOp::mean) s /= static_cast<double>(cols);  // cols == 0 gives NaN, as on the CPU
    }
    cuda::store(out + row, s);  // double -> float -> 16-bit, the CPU's from_double rounding
  }
};

// max / min (value and index) and argmax / argmin: the first extreme's column; the first NaN
// wins. This choice does not depend on the order states combine in.
template <class T>
struct ExtremeReducer {
  using D = device_t<T>;
  using V = acc_t<D>;  // 16-bit floats compare exactly as float, the others as themselves
  using State = Extreme<V>;
  const D* in;
  D* out;          // null for argmax / argmin
  int64_t* index;  // may be null for max / min
  int64_t cols;
  bool is_max;

  __device__ State identity() const { return {V(0), -1}; }
  __device__ State load(int64_t row, int64_t col) const { return {cuda::load(in + row * cols + col), col}; }
  __device__ State combine(State a, State b) const {
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    const bool a_nan = is_nan(a.v), b_nan = is_nan(b.v);
    if (a_nan || b_nan) {
      if (a_nan && b_nan) return a.i < b.i ? a : b;
      return a_nan ? a : b;
    }
    if (a.v == b.v) return a.i < b.i ? a : b;
    return (is_max ? a.v > b.v : a.v < b.v) ? a : b;
  }
  __device__ void finish(int64_t row, State s) const {
    if (out) out[row] = in[row * cols + s.i];  // the element itself: keeps -0.0 and NaN bits
    if (index) index[row] = s.i;
  }
};

// The second pass: a row of `segments` partial states, finished by the original reducer.
template <class R>
struct PartialsReducer {
  using State = typename R::State;
  R base;
  const State* partials;
  int64_t cols;  // segments per row

  __device__ State identity() const { return base.identity(); }
  __device__ State load(int64_t row, int64_t col) const { return partials[row * cols + col]; }
  __device__ State combine(State a, State b) const { return base.combine(a, b); }
  __device__ void finish(int64_t row, State s) const { base.finish(row, s); }
};

// Group g reduces items g, g + groups, ...; item = (row, segment). Writes the partial state of
// each item when `partials` is set, else finishes the row.
template <class R, int G>
__global__ void __launch_bounds__(G == kWarpGroup ? kWarpBlockThreads : G)
    reduce_rows_kernel(R r, int64_t rows, int64_t segments, int64_t seg_len, typename R::State* partials) {
  using State = typename R::State;
  __shared__ State smem[G / 32];
  const int64_t groups_per_block = blockDim.x / G;
  const int64_t groups = gridDim.x * groups_per_block;
  const int t = static_cast<int>(threadIdx.x % G);
  const int64_t items = rows * segments;
  // The loop bounds are uniform over a group, so the whole group runs each iteration together.
  for (int64_t item = blockIdx.x * groups_per_block + threadIdx.x / G; item < items; item += groups) {
    const int64_t row = item / segments, seg = item % segments;
    const int64_t begin = seg * seg_len;
    const int64_t end = begin + seg_len < r.cols ? begin + seg_len : r.cols;
    State s = r.identity();
    for (int64_t c = begin + t; c < end; c += G) s = r.combine(s, r.load(row, c));
    s = group_allreduce<G>(s, r.identity(), [&](State a, State b) { return r.combine(a, b); }, smem);
    if (t == 0) {
      if (partials) partials[item] = s;
      else r.finish(row, s);
    }
  }
}

unsigned grid_for(int64_t items, int group) {
  const int64_t per_block = group == kWarpGroup ? kWarpBlockThreads / kWarpGroup : 1;
  const int64_t blocks = (items + per_block - 1) / per_block;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

template <class R>
void launch_rows(const R& r, int64_t rows, int64_t segments, int64_t seg_len, typename R::State* partials) {
  const int group = group_for(seg_len);
  const unsigned grid = grid_for(rows * segments, group);
  if (group == kWarpGroup) {
    reduce_rows_kernel<R, kWarpGroup><<<grid, kWarpBlockThreads, 0, cuda::stream()>>>(r, rows, segments, seg_len, partials);
    GRAFT_CUDA_CHECK_LAUNCH(reduce_rows_kernel_warp);
  } else {
    reduce_rows_kernel<R, kBlockGroup><<<grid, kBlockGroup, 0, cuda::stream()>>>(r, rows, segments, seg_len, partials);
    GRAFT_CUDA_CHECK_LAUNCH(reduce_rows_kernel_block);
  }
}

// Stream-ordered scratch memory from the same pool as tensors; freed after the queued work.

// A few long rows are split into segments so that they fill the GPU; the split depends only on
// (rows, cols), so the summation order is the same every run.
int64_t segments_for(int64_t rows, int64_t cols) {
  if (rows >= 2048 || cols <= 2 * kSegment) return 1;
  return (cols + kSegment - 1) / kSegment;
}

template <class R>
void run_rows(const R& r, int64_t rows, int64_t cols) {
  const int64_t segments = segments_for(rows, cols);
  if (segments == 1) {
    launch_rows(r, rows, 1, cols, static_cast<typename R::State*>(nullptr));
    return;
  }
  Scratch partials(sizeof(typename R::State) * static_cast<size_t>(rows * segments));
  using State = typename R::State;
  launch_rows(r, rows, segments, kSegment, partials.as<State>());
  const PartialsReducer<R> second{r, partials.as<State>(), segments};
  launch_rows(second, rows, 1, segments, static_cast<State*>(nullptr));
}

// ---- column sums: out[c] = sum over r of in[r, c] ----

constexpr int kColTile = 32;     // columns per block (one warp wide: coalesced rows)
constexpr int kRowThreads = 8;   // threads down the rows per column
constexpr int64_t kColTargetBlocks = 1024;

// Block (kColTile x kRowThreads) sums columns [blockIdx.x * 32, +32) over the rows of segment
// blockIdx.y: thread y folds rows y, y + 8, ... in order, then the 8 partials add in order.
template <class T>
__global__ void __launch_bounds__(kColTile * kRowThreads)
    reduce_cols_kernel(const device_t<T>* in, int64_t rows, int64_t cols, int64_t seg_rows,
                       std::conditional_t<std::is_integral_v<T>, int64_t, double>* partials, device_t<T>* out,
                       bool mean) {
  using Acc = std::conditional_t<std::is_integral_v<T>, int64_t, double>;
  __shared__ Acc sums[kRowThreads][kColTile];
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kColTile + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * seg_rows;
  const int64_t r1 = r0 + seg_rows < rows ? r0 + seg_rows : rows;
  Acc acc = 0;
  if (col < cols)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowThreads) acc += static_cast<Acc>(cuda::load(in + r * cols + col));
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y != 0 || col >= cols) return;
  Acc total = 0;
  for (int y = 0; y < kRowThreads; ++y) total += sums[y][threadIdx.x];
  if (partials) {
    partials[blockIdx.y * cols + col] = total;
  } else {
    if constexpr (!std::is_integral_v<T>) {
      if (mean) total /= static_cast<double>(rows);
    }
    cuda::store(out + col, total);
  }
}

// Adds each column's segment partials in segment order.
template <class T>
__global__ void reduce_cols_finish_kernel(const std::conditional_t<std::is_integral_v<T>, int64_t, double>* partials,
                                          int64_t segments, int64_t rows, int64_t cols, device_t<T>* out, bool mean) {
  using Acc = std::conditional_t<std::is_integral_v<T>, int64_t, double>;
  for (int64_t col = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; col < cols;
       col += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Acc total = 0;
    for (int64_t s = 0; s < segments; ++s) total += partials[s * cols + col];
    if constexpr (!std::is_integral_v<T>) {
      if (mean) total /= static_cast<double>(rows);
    }
    cuda::store(out + col, total);
  }
}

// ---- softmax ----

template <class C>
__device__ __forceinline__ C exp_c(C v) {
  if constexpr (std::is_same_v<C, double>) return exp(v);
  else return expf(v);
}

// One group per row: the max, then the sum of exp in double, then the outputs, as the CPU does
// (a NaN is skipped by the max but poisons the sum; an all -inf row gives NaN).
template <class T, int G>
__global__ void __launch_bounds__(G == kWarpGroup ? kWarpBlockThreads : G)
    softmax_rows_kernel(bool log_out, const device_t<T>* in, int64_t rows, int64_t cols, device_t<T>* out) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  __shared__ C smem_max[G / 32];
  __shared__ double smem_sum[G / 32];
  const int64_t groups_per_block = blockDim.x / G;
  const int64_t groups = gridDim.x * groups_per_block;
  const int t = static_cast<int>(threadIdx.x % G);
  for (int64_t row = blockIdx.x * groups_per_block + threadIdx.x / G; row < rows; row += groups) {
    const device_t<T>* x = in + row * cols;
    device_t<T>* y = out + row * cols;
    C mx = -INFINITY;
    for (int64_t c = t; c < cols; c += G) {
      const C v = static_cast<C>(cuda::load(x + c));
      mx = mx < v ? v : mx;
    }
    mx = group_allreduce<G>(mx, C(-INFINITY), [](C a, C b) { return a < b ? b : a; }, smem_max);
    double sum = 0;
    for (int64_t c = t; c < cols; c += G) sum += exp_c(static_cast<C>(cuda::load(x + c)) - mx);
    sum = group_allreduce<G>(sum, 0.0, [](double a, double b) { return a + b; }, smem_sum);
    if (log_out) {
      const C lse = mx + static_cast<C>(log(sum));
      for (int64_t c = t; c < cols; c += G) cuda::store(y + c, static_cast<C>(cuda::load(x + c)) - lse);
    } else {
      const C inv = static_cast<C>(1.0 / sum);
      for (int64_t c = t; c < cols; c += G) cuda::store(y + c, exp_c(static_cast<C>(cuda::load(x + c)) - mx) * inv);
    }
  }
}

template <class T>
const device_t<T>* dev(const T* p) { return reinterpret_cast<const device_t<T>*>(p); }
template <class T>
device_t<T>* dev(T* p) { return reinterpret_cast<device_t<T>*>(p); }

void check_not_empty(const char* op, int64_t rows, int64_t cols) {
  if (cols == 0 && rows > 0)
    throw ShapeError(std::string(op) + ": cannot reduce an empty row (rows " + std::to_string(rows) + ", cols 0)");
}

}  // namespace

template <class T>
void reduce_rows_cuda(ReduceOp op, const T* in, int64_t rows, int64_t cols, T* out, int64_t* index, int device) {
  if (rows == 0) return;
  cuda::DeviceGuard guard(device);
  if (op == ReduceOp::max || op == ReduceOp::min) {
    check_not_empty(op == ReduceOp::max ? "max" : "min", rows, cols);
    run_rows(ExtremeReducer<T>{dev(in), dev(out), index, cols, op == ReduceOp::max}, rows, cols);
  } else {
    run_rows(SumProdReducer<T>{dev(in), dev(out), cols, op}, rows, cols);
  }
}

template <class T>
void reduce_cols_cuda(ReduceOp op, const T* in, int64_t rows, int64_t cols, T* out, int device) {
  if (cols == 0) return;
  if (op != ReduceOp::sum && op != ReduceOp::mean) throw ValueError("reduce_cols_cuda: only sum and mean");
  using Acc = std::conditional_t<std::is_integral_v<T>, int64_t, double>;
  cuda::DeviceGuard guard(device);
  const bool mean = op == ReduceOp::mean;
  const int64_t col_blocks = (cols + kColTile - 1) / kColTile;
  // Enough row segments to give ~kColTargetBlocks blocks, each at least 64 rows; a fixed function of the shape.
  int64_t segments = kColTargetBlocks / col_blocks;
  const int64_t max_by_rows = (rows + 63) / 64;
  if (segments > max_by_rows) segments = max_by_rows;
  if (segments > 65535) segments = 65535;
  if (segments < 1) segments = 1;
  const int64_t seg_rows = (rows + segments - 1) / segments;
  if (seg_rows > 0) segments = (rows + seg_rows - 1) / seg_rows;  // no empty trailing segment
  if (col_blocks > 0x7fffffffLL) throw ValueError("reduce_cols_cuda: too many columns");
  const dim3 block(kColTile, kRowThreads);
  if (segments <= 1) {
    reduce_cols_kernel<T><<<dim3(static_cast<unsigned>(col_blocks), 1), block, 0, cuda::stream()>>>(
        dev(in), rows, cols, rows, static_cast<Acc*>(nullptr), dev(out), mean);
    GRAFT_CUDA_CHECK_LAUNCH(reduce_cols_kernel);
    return;
  }
  Scratch partials(sizeof(Acc) * static_cast<size_t>(segments * cols));
  reduce_cols_kernel<T><<<dim3(static_cast<unsigned>(col_blocks), static_cast<unsigned>(segments)), block, 0,
                          cuda::stream()>>>(dev(in), rows, cols, seg_rows, partials.as<Acc>(), dev(out), mean);
  GRAFT_CUDA_CHECK_LAUNCH(reduce_cols_kernel);
  reduce_cols_finish_kernel<T><<<cuda::blocks_for(cols), cuda::kThreads, 0, cuda::stream()>>>(
      partials.as<Acc>(), segments, rows, cols, dev(out), mean);
  GRAFT_CUDA_CHECK_LAUNCH(reduce_cols_finish_kernel);
}

template <class T>
void arg_reduce_rows_cuda(bool is_max, const T* in, int64_t rows, int64_t cols, int64_t* index, int device) {
  if (rows == 0) return;
  check_not_empty(is_max ? "argmax" : "argmin", rows, cols);
  cuda::DeviceGuard guard(device);
  run_rows(ExtremeReducer<T>{dev(in), static_cast<device_t<T>*>(nullptr), index, cols, is_max}, rows, cols);
}

template <class T>
void softmax_rows_cuda(bool log, const T* in, int64_t rows, int64_t cols, T* out, int device) {
  if (rows == 0 || cols == 0) return;
  cuda::DeviceGuard guard(device);
  const int group = group_for(cols);
  const unsigned grid = grid_for(rows, group);
  if (group == kWarpGroup) {
    softmax_rows_kernel<T, kWarpGroup><<<grid, kWarpBlockThreads, 0, cuda::stream()>>>(log, dev(in), rows, cols, dev(out));
    GRAFT_CUDA_CHECK_LAUNCH(softmax_rows_kernel_warp);
  } else {
    softmax_rows_kernel<T, kBlockGroup><<<grid, kBlockGroup, 0, cuda::stream()>>>(log, dev(in), rows, cols, dev(out));
    GRAFT_CUDA_CHECK_LAUNCH(softmax_rows_kernel_block);
  }
}

#define GRAFT_INSTANTIATE(T)                                                                       \
  template void reduce_rows_cuda<T>(ReduceOp, const T*, int64_t, int64_t, T*, int64_t*, int);     \
  template void reduce_cols_cuda<T>(ReduceOp, const T*, int64_t, int64_t, T*, int);               \
  template void arg_reduce_rows_cuda<T>(bool, const T*, int64_t, int64_t, int64_t*, int);
GRAFT_INSTANTIATE(float)
GRAFT_INSTANTIATE(double)
GRAFT_INSTANTIATE(bf16)
GRAFT_INSTANTIATE(f16)
GRAFT_INSTANTIATE(int32_t)
GRAFT_INSTANTIATE(int64_t)
#undef GRAFT_INSTANTIATE
template void softmax_rows_cuda<float>(bool, const float*, int64_t, int64_t, float*, int);
template void softmax_rows_cuda<double>(bool, const double*, int64_t, int64_t, double*, int);
template void softmax_rows_cuda<bf16>(bool, const bf16*, int64_t, int64_t, bf16*, int);
template void softmax_rows_cuda<f16>(bool, const f16*, int64_t, int64_t, f16*, int);

}  // namespace graft::kernels
