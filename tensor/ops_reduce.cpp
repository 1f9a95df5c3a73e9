// Reductions: the reduced dims are moved last and made contiguous, then a row kernel runs.
#include <limits>

#include "tensor/factory.h"
#include "tensor/iter.h"
#include "tensor/ops.h"

namespace graft::ops {

namespace {

const char* reduce_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::mean: return "mean";
    case ReduceOp::max: return "max";
    case ReduceOp::min: return "min";
    case ReduceOp::prod: return "prod";
  }
  return "reduce";
}

// The devices with reduction kernels: the CPU, and CUDA in CUDA builds.
void check_reduce_device(const char* op, const Tensor& x) {
#if GRAFT_WITH_CUDA
  if (x.device().is_cuda()) return;
#endif
  check_cpu(op, x);
}

struct Rows {
  Tensor data;      // contiguous [rows, cols]
  int64_t rows, cols;
  Shape out_shape;  // with or without the kept dims
};

Rows to_rows(const char* op, const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  const auto dims = normalize_dims(op, dims_in, x.dim());
  if (x.dim() == 0) return {contiguous(x), 1, 1, {}};  // dim 0 / -1 of a scalar: the scalar itself
  std::vector<int64_t> order;
  std::vector<bool> reduced(static_cast<size_t>(x.dim()), false);
  for (int64_t d : dims) reduced[static_cast<size_t>(d)] = true;
  Shape out_shape;
  int64_t rows = 1, cols = 1;
  for (int64_t d = 0; d < x.dim(); ++d) {
    const int64_t s = x.shape()[static_cast<size_t>(d)];
    if (!reduced[static_cast<size_t>(d)]) {
      order.push_back(d);
      out_shape.push_back(s);
      rows *= s;
    } else if (keepdim) {
      out_shape.push_back(1);
    }
  }
  for (int64_t d : dims) {
    order.push_back(d);
    cols *= x.shape()[static_cast<size_t>(d)];
  }
  return {contiguous(permute(x, order)), rows, cols, out_shape};
}

// A sum or mean over the leading dims of a contiguous tensor (a bias gradient [rows, cols] ->
// [cols]) runs down the columns in place: no transposed copy. Undefined when it does not apply.
Tensor reduce_leading(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  if ((op != ReduceOp::sum && op != ReduceOp::mean) || x.dim() < 2 || !x.is_contiguous() || dims_in.empty())
    return Tensor();
  const auto dims = normalize_dims(reduce_name(op), dims_in, x.dim());
  std::vector<bool> reduced(static_cast<size_t>(x.dim()), false);
  for (int64_t d : dims) reduced[static_cast<size_t>(d)] = true;
  const int64_t lead = static_cast<int64_t>(dims.size());
  for (int64_t d = 0; d < x.dim(); ++d)
    if (reduced[static_cast<size_t>(d)] != (d < lead)) return Tensor();  // not a prefix
  if (lead == x.dim()) return Tensor();
  int64_t rows = 1, cols = 1;
  Shape out_shape;
  for (int64_t d = 0; d < x.dim(); ++d) {
    const int64_t s = x.shape()[static_cast<size_t>(d)];
    if (d < lead) {
      rows *= s;
      if (keepdim) out_shape.push_back(1);
    } else {
      cols *= s;
      out_shape.push_back(s);
    }
  }
  if (rows == 0 || cols <= 1) return Tensor();  // empty, or one output: the row path's blocked sum
  Tensor out = empty(out_shape, TensorOptions(x.dtype()).with_device(x.device()));
#if GRAFT_WITH_CUDA
  if (x.device().is_cuda()) {
    GRAFT_DISPATCH_ALL(reduce_name(op), x.dtype(), [&] {
      if constexpr (!std::is_same_v<scalar_t, bool>)
        kernels::reduce_cols_cuda<scalar_t>(op, static_cast<const scalar_t*>(x.data_ptr()), rows, cols,
                                            static_cast<scalar_t*>(out.data_ptr()), x.device().index);
    });
    return out;
  }
#endif
  GRAFT_DISPATCH_ALL(reduce_name(op), x.dtype(), [&] {
    if constexpr (!std::is_same_v<scalar_t, bool>)
      kernels::reduce_cols_cpu<scalar_t>(op, static_cast<const scalar_t*>(x.data_ptr()), rows, cols,
                                         static_cast<scalar_t*>(out.data_ptr()));
  });
  return out;
}

#if GRAFT_WITH_CUDA
void softmax_rows_on_cuda(const char* name, bool log, const Tensor& in, int64_t rows, int64_t cols, const Tensor& out) {
  auto run = [&](auto tag) {
    using T = decltype(tag);
    kernels::softmax_rows_cuda<T>(log, static_cast<const T*>(in.data_ptr()), rows, cols, static_cast<T*>(out.data_ptr()),
                                  in.device().index);
  };
  switch (in.dtype()) {
    case DType::f32: return run(float{});
    case DType::f64: return run(double{});
    case DType::bf16: return run(bf16{});
    case DType::f16: return run(f16{});
    default: detail::throw_dtype(name, in.dtype(), "f32, f64, bf16, f16");
  }
}
#endif

}  // namespace

Tensor reduce(ReduceOp op, const Tensor& x_in, const std::vector<int64_t>& dims, bool keepdim) {
  const char* name = reduce_name(op);
  check_reduce_device(name, x_in);
  Tensor x = x_in;
  if (x.dtype() == DType::boolean) {
    if (op == ReduceOp::sum || op == ReduceOp::prod) x = cast(x, DType::i64);
    else detail::throw_dtype(name, x.dtype(), "floating and integer types");
  }
  if (op == ReduceOp::mean) check_floating(name, x);
  if (Tensor out = reduce_leading(op, x, dims, keepdim); out.defined()) return out;
  Rows r = to_rows(name, x, dims, keepdim);
  Tensor out = empty(r.out_shape, TensorOptions(x.dtype()).with_device(x.device()));
  if (r.rows == 0) return out;
  if (r.cols == 0) {
    if (op == ReduceOp::max || op == ReduceOp::min)
      throw ShapeError(std::string(name) + ": cannot reduce an empty dim of shape " + shape_str(x.shape()));
    fill(out, op == ReduceOp::prod ? 1.0 : op == ReduceOp::mean ? std::numeric_limits<double>::quiet_NaN() : 0.0);
    return out;
  }
#if GRAFT_WITH_CUDA
  if (x.device().is_cuda()) {
    GRAFT_DISPATCH_ALL(name, x.dtype(), [&] {
      if constexpr (!std::is_same_v<scalar_t, bool>)
        kernels::reduce_rows_cuda<scalar_t>(op, static_cast<const scalar_t*>(r.data.data_ptr()), r.rows, r.cols,
                                            static_cast<scalar_t*>(out.data_ptr()), nullptr, x.device().index);
    });
    return out;
  }
#endif
  GRAFT_DISPATCH_ALL(name, x.dtype(), [&] {
    if constexpr (!std::is_same_v<scalar_t, bool>)
      kernels::reduce_rows_cpu<scalar_t>(op, static_cast<const scalar_t*>(r.data.data_ptr()), r.rows, r.cols,
                                         static_cast<scalar_t*>(out.data_ptr()), nullptr);
  });
  return out;
}

std::pair<Tensor, Tensor> reduce_with_index(ReduceOp op, const Tensor& x, int64_t dim, bool keepdim) {
  const char* name = reduce_name(op);
  check_reduce_device(name, x);
  if (op != ReduceOp::max && op != ReduceOp::min) throw ValueError("reduce_with_index: only max and min");
  if (x.dtype() == DType::boolean) detail::throw_dtype(name, x.dtype(), "floating and integer types");
  Rows r = to_rows(name, x, {dim}, keepdim);
  if (r.cols == 0) throw ShapeError(std::string(name) + ": cannot reduce an empty dim of shape " + shape_str(x.shape()));
  Tensor values = empty(r.out_shape, TensorOptions(x.dtype()).with_device(x.device()));
  Tensor indices = empty(r.out_shape, TensorOptions(DType::i64).with_device(x.device()));
#if GRAFT_WITH_CUDA
  if (x.device().is_cuda()) {
    GRAFT_DISPATCH_ALL(name, x.dtype(), [&] {
      if constexpr (!std::is_same_v<scalar_t, bool>)
        kernels::reduce_rows_cuda<scalar_t>(op, static_cast<const scalar_t*>(r.data.data_ptr()), r.rows, r.cols,
                                            static_cast<scalar_t*>(values.data_ptr()),
                                            static_cast<int64_t*>(indices.data_ptr()), x.device().index);
    });
    return {values, indices};
  }
#endif
  GRAFT_DISPATCH_ALL(name, x.dtype(), [&] {
    if constexpr (!std::is_same_v<scalar_t, bool>)
      kernels::reduce_rows_cpu<scalar_t>(op, static_cast<const scalar_t*>(r.data.data_ptr()), r.rows, r.cols,
                                         static_cast<scalar_t*>(values.data_ptr()),
                                         static_cast<int64_t*>(indices.data_ptr()));
  });
  return {values, indices};
}

Tensor arg_reduce(bool is_max, const Tensor& x, int64_t dim, bool keepdim) {
  const char* name = is_max ? "argmax" : "argmin";
  check_reduce_device(name, x);
  if (x.dtype() == DType::boolean) detail::throw_dtype(name, x.dtype(), "floating and integer types");
  Rows r = to_rows(name, x, {dim}, keepdim);
  if (r.cols == 0) throw ShapeError(std::string(name) + ": cannot reduce an empty dim of shape " + shape_str(x.shape()));
  Tensor indices = empty(r.out_shape, TensorOptions(DType::i64).with_device(x.device()));
#if GRAFT_WITH_CUDA
  if (x.device().is_cuda()) {
    GRAFT_DISPATCH_ALL(name, x.dtype(), [&] {
      if constexpr (!std::is_same_v<scalar_t, bool>)
        kernels::arg_reduce_rows_cuda<scalar_t>(is_max, static_cast<const scalar_t*>(r.data.data_ptr()), r.rows,
                                                r.cols, static_cast<int64_t*>(indices.data_ptr()), x.device().index);
    });
    return indices;
  }
#endif
  GRAFT_DISPATCH_ALL(name, x.dtype(), [&] {
    if constexpr (!std::is_same_v<scalar_t, bool>)
      kernels::arg_reduce_rows_cpu<scalar_t>(is_max, static_cast<const scalar_t*>(r.data.data_ptr()), r.rows, r.cols,
                                             static_cast<int64_t*>(indices.data_ptr()));
  });
  return indices;
}

Tensor softmax(const Tensor& x, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  check_reduce_device(name, x);
  check_floating(name, x);
  if (x.dim() == 0) return softmax(unsqueeze(x, 0), 0, log).reshape({});
  dim = normalize_dim(name, dim, x.dim());
  const int64_t last = x.dim() - 1;
  std::vector<int64_t> order;
  for (int64_t d = 0; d < x.dim(); ++d) order.push_back(d);
  std::swap(order[static_cast<size_t>(dim)], order[static_cast<size_t>(last)]);
  Tensor rows = contiguous(permute(x, order));
  Tensor out = empty_like_contiguous(rows, x.dtype());
  const int64_t cols = x.shape()[static_cast<size_t>(dim)];
#if GRAFT_WITH_CUDA
  if (x.device().is_cuda()) {  // 16-bit rows too: they compute in float on the GPU
    if (cols > 0 && x.numel() > 0) softmax_rows_on_cuda(name, log, rows, x.numel() / cols, cols, out);
    return contiguous(permute(out, order));
  }
#endif
  if (cols > 0 && x.numel() > 0) {
    GRAFT_DISPATCH_F32_F64(name, x.dtype(), [&] {
      kernels::softmax_rows_cpu<scalar_t>(log, static_cast<const scalar_t*>(rows.data_ptr()), x.numel() / cols, cols,
                                          static_cast<scalar_t*>(out.data_ptr()));
    });
  }
  return contiguous(permute(out, order));  // the swap is its own inverse
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  if (lead < 0) throw ShapeError("sum_to: cannot sum shape " + shape_str(x.shape()) + " to " + shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < lead) dims.push_back(d);
    else if (shape[static_cast<size_t>(d - lead)] == 1 && x.shape()[static_cast<size_t>(d)] != 1) dims.push_back(d);
    else if (shape[static_cast<size_t>(d - lead)] != x.shape()[static_cast<size_t>(d)])
      throw ShapeError("sum_to: cannot sum shape " + shape_str(x.shape()) + " to " + shape_str(shape));
  }
  if (dims.empty()) return reshape(x, shape);
  return reshape(reduce(ReduceOp::sum, x, dims, true), shape);
}

}  // namespace graft::ops
