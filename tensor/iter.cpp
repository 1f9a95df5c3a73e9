#include "tensor/iter.h"

namespace graft::detail {

kernels::StridedIter make_iter(const char* op, const Shape& shape, std::initializer_list<const Tensor*> operands) {
  kernels::StridedIter it;
  it.noperands = static_cast<int>(operands.size());
  const int ndim = static_cast<int>(shape.size());
  // Aligned strides per operand over the full shape (broadcast dims get stride 0).
  std::vector<std::vector<int64_t>> strides(operands.size(), std::vector<int64_t>(static_cast<size_t>(ndim), 0));
  int k = 0;
  for (const Tensor* t : operands) {
    const int tdim = static_cast<int>(t->dim());
    if (tdim > ndim) throw ShapeError(std::string(op) + ": operand of shape " + shape_str(t->shape()) +
                                      " does not broadcast to " + shape_str(shape));
    for (int d = 0; d < tdim; ++d) {
      const int od = d + ndim - tdim;
      const int64_t ts = t->shape()[static_cast<size_t>(d)];
      if (ts == shape[static_cast<size_t>(od)]) strides[k][od] = t->strides()[static_cast<size_t>(d)];
      else if (ts == 1) strides[k][od] = 0;
      else throw ShapeError(std::string(op) + ": operand of shape " + shape_str(t->shape()) +
                            " does not broadcast to " + shape_str(shape));
    }
    ++k;
  }
  // Drop size-1 dims, then merge dim d into the running innermost-so-far when contiguous for all.
  int out_dims = 0;
  for (int d = 0; d < ndim; ++d) {
    const int64_t size = shape[static_cast<size_t>(d)];
    if (size == 1) continue;
    bool merge = out_dims > 0;
    for (int o = 0; merge && o < it.noperands; ++o)
      merge = it.strides[o][out_dims - 1] == strides[o][d] * size;
    if (merge) {
      it.sizes[out_dims - 1] *= size;
      for (int o = 0; o < it.noperands; ++o) it.strides[o][out_dims - 1] = strides[o][d];
      continue;
    }
    if (out_dims == kernels::kMaxDims)
      throw ShapeError(std::string(op) + ": more than " + std::to_string(kernels::kMaxDims) +
                       " non-mergeable dims in shape " + shape_str(shape));
    it.sizes[out_dims] = size;
    for (int o = 0; o < it.noperands; ++o) it.strides[o][out_dims] = strides[o][d];
    ++out_dims;
  }
  if (out_dims == 0) {  // every dim was 1 (or a 0-d tensor): one element
    it.sizes[0] = 1;
    for (int o = 0; o < it.noperands; ++o) it.strides[o][0] = 0;
    out_dims = 1;
  }
  for (int64_t s : shape)
    if (s == 0) it.sizes[0] = 0;  // empty: nothing to visit
  it.ndim = out_dims;
  return it;
}

void throw_dtype(const char* op, DType dtype, const char* supported) {
  throw DTypeError(std::string(op) + ": dtype " + dtype_name(dtype) + " is not supported (supported: " +
                   supported + ")");
}

}  // namespace graft::detail
