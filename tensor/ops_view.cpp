// Views: new shape/strides/offset over the same storage.
#include <algorithm>

#include "tensor/ops.h"

namespace graft::ops {

Tensor as_strided(const Tensor& x, Shape shape, Shape strides, int64_t offset) {
  return make_tensor(x.impl()->storage, std::move(shape), std::move(strides), offset, x.dtype());
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  const int64_t n = x.dim();
  if (static_cast<int64_t>(dims.size()) != n)
    throw ShapeError("permute: got " + std::to_string(dims.size()) + " dims for a tensor of shape " +
                     shape_str(x.shape()));
  Shape shape(static_cast<size_t>(n)), strides(static_cast<size_t>(n));
  std::vector<bool> seen(static_cast<size_t>(n), false);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t d = normalize_dim("permute", dims[static_cast<size_t>(i)], n);
    if (seen[static_cast<size_t>(d)]) throw IndexError("permute: dim " + std::to_string(d) + " appears twice");
    seen[static_cast<size_t>(d)] = true;
    shape[static_cast<size_t>(i)] = x.shape()[static_cast<size_t>(d)];
    strides[static_cast<size_t>(i)] = x.strides()[static_cast<size_t>(d)];
  }
  return as_strided(x, shape, strides, x.offset());
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  dim = normalize_dim("slice", dim, x.dim());
  if (x.dim() == 0) throw IndexError("slice: cannot slice a 0-d tensor");
  if (step <= 0) throw ValueError("slice: step must be positive, got " + std::to_string(step));
  const int64_t size = x.shape()[static_cast<size_t>(dim)];
  // Python semantics: negative counts from the end, out-of-range clamps.
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<int64_t>(start, 0, size);
  end = std::clamp<int64_t>(end, start, size);
  Shape shape = x.shape(), strides = x.strides();
  shape[static_cast<size_t>(dim)] = (end - start + step - 1) / step;
  strides[static_cast<size_t>(dim)] *= step;
  return as_strided(x, shape, strides, x.offset() + start * x.strides()[static_cast<size_t>(dim)]);
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  if (x.dim() == 0) throw IndexError("narrow: cannot narrow a 0-d tensor");
  dim = normalize_dim("narrow", dim, x.dim());
  const int64_t size = x.shape()[static_cast<size_t>(dim)];
  if (start < 0) start += size;
  if (start < 0 || length < 0 || start + length > size)
    throw IndexError("narrow: start " + std::to_string(start) + " length " + std::to_string(length) +
                     " is out of range for dim " + std::to_string(dim) + " of shape " + shape_str(x.shape()));
  Shape shape = x.shape();
  shape[static_cast<size_t>(dim)] = length;
  return as_strided(x, shape, x.strides(), x.offset() + start * x.strides()[static_cast<size_t>(dim)]);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  const size_t n = shape.size(), xd = static_cast<size_t>(x.dim());
  if (n < xd)
    throw ShapeError("expand: cannot expand shape " + shape_str(x.shape()) + " to fewer dims " + shape_str(shape));
  Shape out(n), strides(n);
  for (size_t i = 0; i < n; ++i) {
    const bool new_dim = i < n - xd;
    const int64_t xs = new_dim ? 1 : x.shape()[i - (n - xd)];
    const int64_t want = shape[i] == -1 ? xs : shape[i];
    if (new_dim && shape[i] == -1) throw ShapeError("expand: -1 is not allowed for a new leading dim");
    if (xs == want) {
      out[i] = want;
      strides[i] = new_dim ? 0 : x.strides()[i - (n - xd)];
    } else if (xs == 1) {
      out[i] = want;
      strides[i] = 0;
    } else {
      throw ShapeError("expand: shape " + shape_str(x.shape()) + " cannot expand to " + shape_str(shape) +
                       " (only size-1 dims expand)");
    }
  }
  return as_strided(x, out, strides, x.offset());
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  dim = normalize_dim("squeeze", dim, x.dim());
  if (x.dim() == 0 || x.shape()[static_cast<size_t>(dim)] != 1) return x;  // as PyTorch: a no-op
  Shape shape = x.shape(), strides = x.strides();
  shape.erase(shape.begin() + dim);
  strides.erase(strides.begin() + dim);
  return as_strided(x, shape, strides, x.offset());
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  dim = normalize_dim("unsqueeze", dim, x.dim() + 1);
  Shape shape = x.shape(), strides = x.strides();
  const int64_t stride = dim < x.dim() ? x.strides()[static_cast<size_t>(dim)] * x.shape()[static_cast<size_t>(dim)] : 1;
  shape.insert(shape.begin() + dim, 1);
  strides.insert(strides.begin() + dim, stride);
  return as_strided(x, shape, strides, x.offset());
}

Shape infer_shape(const char* op, const Shape& requested, int64_t numel) {
  Shape shape = requested;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw ShapeError(std::string(op) + ": only one dim may be -1 in " + shape_str(requested));
      infer = static_cast<int64_t>(i);
    } else if (shape[i] < 0) {
      throw ShapeError(std::string(op) + ": negative size in " + shape_str(requested));
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      throw ShapeError(std::string(op) + ": shape " + shape_str(requested) + " is invalid for " +
                       std::to_string(numel) + " elements");
    shape[static_cast<size_t>(infer)] = numel / known;
  } else if (known != numel) {
    throw ShapeError(std::string(op) + ": shape " + shape_str(requested) + " is invalid for " +
                     std::to_string(numel) + " elements");
  }
  return shape;
}

Tensor try_view(const Tensor& x, const Shape& requested) {
  const Shape shape = infer_shape("view", requested, x.numel());
  if (x.is_contiguous()) return as_strided(x, shape, contiguous_strides(shape), x.offset());
  // Match groups of old dims that are contiguous among themselves to groups of new dims
  // (the algorithm of PyTorch's computeStride).
  const Shape& old_shape = x.shape();
  const Shape& old_strides = x.strides();
  Shape strides(shape.size());
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[static_cast<size_t>(d)];
    if (d == 0 || (old_shape[static_cast<size_t>(d - 1)] != 1 &&
                   old_strides[static_cast<size_t>(d - 1)] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[static_cast<size_t>(view_d)] == 1)) {
        strides[static_cast<size_t>(view_d)] = view_numel * chunk_base_stride;
        view_numel *= shape[static_cast<size_t>(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return Tensor();
      if (d > 0) {
        chunk_base_stride = old_strides[static_cast<size_t>(d - 1)];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return Tensor();
  return as_strided(x, shape, strides, x.offset());
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  Tensor v = try_view(x, shape);
  if (!v.defined()) v = try_view(contiguous(x), shape);
  if (!v.defined())  // unreachable for a contiguous tensor; never hand back an undefined one
    throw ShapeError("reshape: cannot view shape " + shape_str(x.shape()) + " as " + shape_str(shape));
  return v;
}

}  // namespace graft::ops
