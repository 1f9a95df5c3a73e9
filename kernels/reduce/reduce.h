// Row reductions over a contiguous [rows, cols] buffer: one output per row. The tensor layer
// moves the reduced dims last first. Float sums accumulate in double, integer sums exactly in
// int64, in a fixed order, so results do not depend on the thread count.
#pragma once

#include <cstdint>

namespace graft::kernels {

enum class ReduceOp : uint8_t { sum, mean, max, min, prod };

// out[r] = op(in[r, :]); for max/min, index[r] (may be null) receives the first extreme's column.
// NaN propagates through max/min, as in PyTorch.
template <class T>
void reduce_rows_cpu(ReduceOp op, const T* in, int64_t rows, int64_t cols, T* out, int64_t* index);
// out[c] = sum (or mean) over r of in[r, c]: the reduction over the leading dims of a contiguous
// tensor (a bias gradient), without transposing it first. Each column adds its rows in order in
// double (int64 for integers), exactly what reduce_rows_cpu does on the transposed copy, so the
// two give identical results; threads split the columns, never a column's rows.
template <class T>
void reduce_cols_cpu(ReduceOp op, const T* in, int64_t rows, int64_t cols, T* out);
// index[r] = column of the first max (is_max) or min of row r; out-of-band NaN counts as extreme.
template <class T>
void arg_reduce_rows_cpu(bool is_max, const T* in, int64_t rows, int64_t cols, int64_t* index);
// Softmax or log-softmax of each row; a row of all -inf gives NaN, as in PyTorch.
template <class T>
void softmax_rows_cpu(bool log, const T* in, int64_t rows, int64_t cols, T* out);

// ---- CUDA (kernels/reduce/cuda.cu; CUDA builds only) ----
// The same contracts on device buffers of `device`, queued on its cudaStreamPerThread. Float sums
// accumulate in double and integer sums in int64 in a fixed tree order (results are identical run
// to run, and close to, not bit-equal with, the CPU's). bf16 / f16 compare and compute in float.
// max / min / argmax / argmin of an empty row (cols == 0, rows > 0) throw graft::ShapeError.
#if GRAFT_WITH_CUDA
template <class T>
void reduce_rows_cuda(ReduceOp op, const T* in, int64_t rows, int64_t cols, T* out, int64_t* index, int device);
template <class T>  // sum or mean only
void reduce_cols_cuda(ReduceOp op, const T* in, int64_t rows, int64_t cols, T* out, int device);
template <class T>
void arg_reduce_rows_cuda(bool is_max, const T* in, int64_t rows, int64_t cols, int64_t* index, int device);
template <class T>  // f32, f64, bf16, f16 (16-bit rows compute in float)
void softmax_rows_cuda(bool log, const T* in, int64_t rows, int64_t cols, T* out, int device);
#endif

}  // namespace graft::kernels
