// Index ops. Indices are validated here (dtype, range) so that kernels can trust them.
#include "kernels/indexing/indexing.h"
#include "tensor/factory.h"
#include "tensor/iter.h"
#include "tensor/ops.h"

namespace graft::ops {

namespace {

#if GRAFT_WITH_CUDA
// The CUDA indices, as checked_index below: a fresh i64 copy wrapped on the device, its range
// checked with one host read of its smallest and largest index.
Tensor checked_index_cuda(const char* op, const Tensor& index, int64_t size) {
  Tensor idx = cast(index, DType::i64);  // always a new tensor: safe to wrap in place
  if (idx.numel() == 0) return idx;
  int64_t lo = 0, hi = 0;
  kernels::wrap_indices_cuda(idx.device().index, static_cast<int64_t*>(idx.data_ptr()), idx.numel(), size, &lo, &hi);
  if (lo < -size || hi >= size)
    throw IndexError(std::string(op) + ": index " + std::to_string(hi >= size ? hi : lo) +
                     " is out of range for a dim of size " + std::to_string(size));
  return idx;
}
#endif

// Contiguous i64 copy of the indices, each checked against [-size, size); negatives wrap.
Tensor checked_index(const char* op, const Tensor& index, int64_t size) {
  if (index.dtype() != DType::i64 && index.dtype() != DType::i32)
    throw DTypeError(std::string(op) + ": indices must be i32 or i64, got " + dtype_name(index.dtype()));
#if GRAFT_WITH_CUDA
  if (index.device().is_cuda()) return checked_index_cuda(op, index, size);
#endif
  check_cpu(op, index);
  Tensor idx = cast(index, DType::i64);
  int64_t* p = static_cast<int64_t*>(idx.data_ptr());
  for (int64_t i = 0; i < idx.numel(); ++i) {
    if (p[i] < -size || p[i] >= size)
      throw IndexError(std::string(op) + ": index " + std::to_string(p[i]) + " is out of range for a dim of size " +
                       std::to_string(size));
    if (p[i] < 0) p[i] += size;
  }
  return idx;
}

// The tensors' device check: CPU ops as before; with a CUDA operand, all on one device.
void check_devices(const char* op, const Tensor& x, const Tensor& index) {
#if GRAFT_WITH_CUDA
  if (x.device().is_cuda() || index.device().is_cuda()) return check_same_device(op, x, index);
#endif
  check_cpu(op, x);
}

struct Split {
  int64_t outer = 1, dim = 1, inner = 1;
};
Split split_at(const Shape& shape, int64_t d) {
  Split s;
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
    if (i < d) s.outer *= shape[static_cast<size_t>(i)];
    else if (i == d) s.dim = shape[static_cast<size_t>(i)];
    else s.inner *= shape[static_cast<size_t>(i)];
  }
  return s;
}

}  // namespace

Tensor index_select(const Tensor& x_in, int64_t dim, const Tensor& index, const char* op) {
  check_devices(op, x_in, index);
  if (index.dim() > 1) throw ShapeError(std::string(op) + ": index must be 1-D, got shape " + shape_str(index.shape()));
  if (x_in.dim() == 0) throw ShapeError(std::string(op) + ": input must have at least 1 dim");
  dim = normalize_dim(op, dim, x_in.dim());
  Tensor x = contiguous(x_in);
  const Split s = split_at(x.shape(), dim);
  Tensor idx = checked_index(op, index, s.dim);
  Shape out_shape = x.shape();
  out_shape[static_cast<size_t>(dim)] = idx.numel();
  Tensor out = empty(out_shape, TensorOptions(x.dtype()).with_device(x.device()));
  GRAFT_DISPATCH_ALL("index_select", x.dtype(), [&] {
#if GRAFT_WITH_CUDA
    if (x.device().is_cuda())
      return kernels::index_select_cuda<scalar_t>(x.device().index, static_cast<const scalar_t*>(x.data_ptr()), s.outer,
                                                  s.dim, s.inner, static_cast<const int64_t*>(idx.data_ptr()),
                                                  idx.numel(), static_cast<scalar_t*>(out.data_ptr()));
#endif
    kernels::index_select_cpu<scalar_t>(static_cast<const scalar_t*>(x.data_ptr()), s.outer, s.dim, s.inner,
                                        static_cast<const int64_t*>(idx.data_ptr()), idx.numel(),
                                        static_cast<scalar_t*>(out.data_ptr()));
  });
  return out;
}

Tensor index_add(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& src_in) {
  check_devices("index_add", src_in, index);
  dim = normalize_dim("index_add", dim, static_cast<int64_t>(shape.size()));
  Tensor src = contiguous(src_in);
  const Split s = split_at(shape, dim);
  Tensor idx = checked_index("index_add", index, s.dim);
  Shape expect = shape;
  expect[static_cast<size_t>(dim)] = idx.numel();
  if (src.shape() != expect)
    throw ShapeError("index_add: source shape " + shape_str(src.shape()) + " does not match " + shape_str(expect));
#if GRAFT_WITH_CUDA
  if (src.device().is_cuda()) {  // the kernel writes every element: no zero fill
    Tensor out = empty(shape, TensorOptions(src.dtype()).with_device(src.device()));
    GRAFT_DISPATCH_ALL("index_add", src.dtype(), [&] {
      if constexpr (!std::is_same_v<scalar_t, bool>)
        kernels::index_add_cuda<scalar_t>(src.device().index, static_cast<scalar_t*>(out.data_ptr()), s.outer, s.dim,
                                          s.inner, static_cast<const int64_t*>(idx.data_ptr()), idx.numel(),
                                          static_cast<const scalar_t*>(src.data_ptr()));
      else detail::throw_dtype("index_add", src.dtype(), "f32, f64, bf16, f16, i32, i64");
    });
    return out;
  }
#endif
  Tensor out = zeros(shape, src.dtype());
  GRAFT_DISPATCH_ALL("index_add", src.dtype(), [&] {
    if constexpr (std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double> ||
                  std::is_same_v<scalar_t, int32_t> || std::is_same_v<scalar_t, int64_t>)
      kernels::index_add_cpu<scalar_t>(static_cast<scalar_t*>(out.data_ptr()), s.outer, s.dim, s.inner,
                                       static_cast<const int64_t*>(idx.data_ptr()), idx.numel(),
                                       static_cast<const scalar_t*>(src.data_ptr()));
    else detail::throw_dtype("index_add", src.dtype(), "f32, f64, i32, i64");
  });
  return out;
}

Tensor gather(const Tensor& x_in, int64_t dim, const Tensor& index) {
  check_devices("gather", x_in, index);
  if (index.dim() != x_in.dim())
    throw ShapeError("gather: index shape " + shape_str(index.shape()) + " must have as many dims as input " +
                     shape_str(x_in.shape()));
  dim = normalize_dim("gather", dim, x_in.dim());
  for (int64_t d = 0; d < x_in.dim(); ++d)
    if (d != dim && index.shape()[static_cast<size_t>(d)] != x_in.shape()[static_cast<size_t>(d)])
      throw ShapeError("gather: index shape " + shape_str(index.shape()) + " must match input shape " +
                       shape_str(x_in.shape()) + " outside dim " + std::to_string(dim));
  Tensor x = contiguous(x_in);
  const Split s = split_at(x.shape(), dim);
  Tensor idx = checked_index("gather", index, s.dim);
  Tensor out = empty(index.shape(), TensorOptions(x.dtype()).with_device(x.device()));
  GRAFT_DISPATCH_ALL("gather", x.dtype(), [&] {
#if GRAFT_WITH_CUDA
    if (x.device().is_cuda())
      return kernels::gather_cuda<scalar_t>(x.device().index, static_cast<const scalar_t*>(x.data_ptr()), s.outer, s.dim,
                                            s.inner, static_cast<const int64_t*>(idx.data_ptr()),
                                            index.shape()[static_cast<size_t>(dim)],
                                            static_cast<scalar_t*>(out.data_ptr()));
#endif
    kernels::gather_cpu<scalar_t>(static_cast<const scalar_t*>(x.data_ptr()), s.outer, s.dim, s.inner,
                                  static_cast<const int64_t*>(idx.data_ptr()), index.shape()[static_cast<size_t>(dim)],
                                  static_cast<scalar_t*>(out.data_ptr()));
  });
  return out;
}

Tensor scatter_add(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& src_in) {
  check_devices("scatter_add", src_in, index);
  if (index.shape() != src_in.shape())
    throw ShapeError("scatter_add: index shape " + shape_str(index.shape()) + " must equal source shape " +
                     shape_str(src_in.shape()));
  dim = normalize_dim("scatter_add", dim, static_cast<int64_t>(shape.size()));
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d)
    if (d != dim && index.shape()[static_cast<size_t>(d)] != shape[static_cast<size_t>(d)])
      throw ShapeError("scatter_add: index shape " + shape_str(index.shape()) + " must match output shape " +
                       shape_str(shape) + " outside dim " + std::to_string(dim));
  Tensor src = contiguous(src_in);
  const Split s = split_at(shape, dim);
  Tensor idx = checked_index("scatter_add", index, s.dim);
#if GRAFT_WITH_CUDA
  if (src.device().is_cuda()) {  // the kernel writes every element: no zero fill
    Tensor out = empty(shape, TensorOptions(src.dtype()).with_device(src.device()));
    GRAFT_DISPATCH_ALL("scatter_add", src.dtype(), [&] {
      if constexpr (!std::is_same_v<scalar_t, bool>)
        kernels::scatter_add_cuda<scalar_t>(src.device().index, static_cast<scalar_t*>(out.data_ptr()), s.outer, s.dim,
                                            s.inner, static_cast<const int64_t*>(idx.data_ptr()),
                                            index.shape()[static_cast<size_t>(dim)],
                                            static_cast<const scalar_t*>(src.data_ptr()));
      else detail::throw_dtype("scatter_add", src.dtype(), "f32, f64, bf16, f16, i32, i64");
    });
    return out;
  }
#endif
  Tensor out = zeros(shape, src.dtype());
  GRAFT_DISPATCH_ALL("scatter_add", src.dtype(), [&] {
    if constexpr (std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double> ||
                  std::is_same_v<scalar_t, int32_t> || std::is_same_v<scalar_t, int64_t>)
      kernels::scatter_add_cpu<scalar_t>(static_cast<scalar_t*>(out.data_ptr()), s.outer, s.dim, s.inner,
                                         static_cast<const int64_t*>(idx.data_ptr()),
                                         index.shape()[static_cast<size_t>(dim)],
                                         static_cast<const scalar_t*>(src.data_ptr()));
    else detail::throw_dtype("scatter_add", src.dtype(), "f32, f64, i32, i64");
  });
  return out;
}

}  // namespace graft::ops
