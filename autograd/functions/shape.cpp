// Differentiable views and shape ops. A view's backward writes the gradient into the same view
// of a zero tensor shaped like the input.
#include "autograd/functions/common.h"

namespace graft {

using namespace autograd;

namespace {

// Gradient of out = view_fn(x): zeros like x, with g copied into view_fn(zeros).
template <class ViewFn>
Tensor view_backward(const Tensor& x, const Tensor& g, ViewFn view_fn) {
  Tensor gx = zeros(x.shape(), TensorOptions(g.dtype()).with_device(g.device()));
  ops::copy_into(view_fn(gx), g);
  return gx;
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  return record("reshape", ops::reshape(x, shape), {x},
                [x](const Tensor& g) { return std::vector<Tensor>{ops::reshape(g, x.shape())}; });
}

Tensor view(const Tensor& x, const Shape& shape) {
  Tensor v = ops::try_view(x, shape);
  if (!v.defined())
    throw ShapeError("view: shape " + shape_str(shape) + " is incompatible with the strides of input " +
                     shape_str(x.shape()) + "; use reshape() (which copies) or contiguous() first");
  return record("view", v, {x}, [x](const Tensor& g) { return std::vector<Tensor>{ops::reshape(g, x.shape())}; });
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  Tensor y = ops::permute(x, dims);
  std::vector<int64_t> inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i)
    inverse[static_cast<size_t>(normalize_dim("permute", dims[i], x.dim()))] = static_cast<int64_t>(i);
  return record("permute", y, {x}, [inverse](const Tensor& g) { return std::vector<Tensor>{ops::permute(g, inverse)}; });
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  std::vector<int64_t> order;
  for (int64_t d = 0; d < x.dim(); ++d) order.push_back(d);
  if (x.dim() == 0) return x;
  std::swap(order[static_cast<size_t>(normalize_dim("transpose", dim0, x.dim()))],
            order[static_cast<size_t>(normalize_dim("transpose", dim1, x.dim()))]);
  return permute(x, order);
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  return record("narrow", ops::narrow(x, dim, start, length), {x}, [x, dim, start, length](const Tensor& g) {
    return std::vector<Tensor>{view_backward(x, g, [&](const Tensor& z) { return ops::narrow(z, dim, start, length); })};
  });
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  return record("slice", ops::slice(x, dim, start, end, step), {x}, [x, dim, start, end, step](const Tensor& g) {
    return std::vector<Tensor>{view_backward(x, g, [&](const Tensor& z) { return ops::slice(z, dim, start, end, step); })};
  });
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  if (x.dim() == 0) throw IndexError("select: cannot select from a 0-d tensor");
  const int64_t d = normalize_dim("select", dim, x.dim());
  const int64_t size = x.shape()[static_cast<size_t>(d)];
  if (index < -size || index >= size)
    throw IndexError("select: index " + std::to_string(index) + " is out of range for dim " + std::to_string(d) +
                     " of shape " + shape_str(x.shape()));
  return squeeze(narrow(x, d, index < 0 ? index + size : index, 1), d);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  return record("expand", ops::expand(x, shape), {x}, [x](const Tensor& g) { return std::vector<Tensor>{ops::sum_to(g, x.shape())}; });
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  return record("squeeze", ops::squeeze(x, dim), {x}, [x](const Tensor& g) { return std::vector<Tensor>{ops::reshape(g, x.shape())}; });
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  return record("unsqueeze", ops::unsqueeze(x, dim), {x}, [x](const Tensor& g) { return std::vector<Tensor>{ops::reshape(g, x.shape())}; });
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  const int64_t s = normalize_dim("flatten", start_dim, x.dim()), e = normalize_dim("flatten", end_dim, x.dim());
  if (s > e) throw IndexError("flatten: start_dim " + std::to_string(start_dim) + " comes after end_dim " + std::to_string(end_dim));
  Shape shape(x.shape().begin(), x.shape().begin() + s);
  int64_t n = 1;
  for (int64_t d = s; d <= e; ++d) n *= x.shape()[static_cast<size_t>(d)];
  shape.push_back(n);
  shape.insert(shape.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, shape);
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  return record("contiguous", ops::contiguous(x), {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor clone(const Tensor& x) {
  Tensor y = ops::empty_like_contiguous(x, x.dtype());
  ops::copy_into(y, x);
  return record("clone", y, {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  if (tensors.empty()) throw ValueError("cat: expected a non-empty list of tensors");
  const Tensor& first = tensors[0];
  if (first.dim() == 0) throw ShapeError("cat: zero-dimensional tensors cannot be concatenated");
  const int64_t d = normalize_dim("cat", dim, first.dim());
  Shape shape = first.shape();
  int64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    ops::check_same_device("cat", first, t);
    ops::check_same_dtype("cat", first, t);
    bool fits = t.dim() == first.dim();
    for (int64_t k = 0; fits && k < t.dim(); ++k)
      fits = k == d || t.shape()[static_cast<size_t>(k)] == first.shape()[static_cast<size_t>(k)];
    if (!fits)
      throw ShapeError("cat: tensor " + std::to_string(i) + " has shape " + shape_str(t.shape()) +
                       ", which does not match " + shape_str(first.shape()) + " outside dim " + std::to_string(d));
    total += t.shape()[static_cast<size_t>(d)];
  }
  shape[static_cast<size_t>(d)] = total;
  Tensor out = empty(shape, TensorOptions(first.dtype()).with_device(first.device()));
  std::vector<int64_t> offsets;
  int64_t offset = 0;
  for (const Tensor& t : tensors) {
    const int64_t n = t.shape()[static_cast<size_t>(d)];
    ops::copy_into(ops::narrow(out, d, offset, n), t);
    offsets.push_back(offset);
    offset += n;
  }
  return record("cat", out, tensors, [tensors, offsets, d](const Tensor& g) {
    std::vector<Tensor> grads;
    for (size_t i = 0; i < tensors.size(); ++i)
      grads.push_back(tensors[i].requires_grad()
                          ? ops::contiguous(ops::narrow(g, d, offsets[i], tensors[i].shape()[static_cast<size_t>(d)]))
                          : Tensor());
    return grads;
  });
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  if (tensors.empty()) throw ValueError("stack: expected a non-empty list of tensors");
  const int64_t d = normalize_dim("stack", dim, tensors[0].dim() + 1);
  std::vector<Tensor> expanded;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].shape() != tensors[0].shape())
      throw ShapeError("stack: tensor " + std::to_string(i) + " has shape " + shape_str(tensors[i].shape()) +
                       ", expected " + shape_str(tensors[0].shape()));
    expanded.push_back(unsqueeze(tensors[i], d));
  }
  return cat(expanded, d);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  const int64_t d = normalize_dim("split", dim, x.dim());
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) throw ValueError("split: negative section size");
    total += s;
  }
  if (total != x.shape()[static_cast<size_t>(d)])
    throw ShapeError("split: sizes sum to " + std::to_string(total) + " but dim " + std::to_string(d) + " of " +
                     shape_str(x.shape()) + " has " + std::to_string(x.shape()[static_cast<size_t>(d)]));
  std::vector<Tensor> parts;
  int64_t offset = 0;
  for (int64_t s : sizes) {
    parts.push_back(narrow(x, d, offset, s));
    offset += s;
  }
  return parts;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  if (split_size <= 0) throw ValueError("split: split_size must be positive, got " + std::to_string(split_size));
  const int64_t n = x.shape()[static_cast<size_t>(normalize_dim("split", dim, x.dim()))];
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < n; start += split_size) sizes.push_back(std::min(split_size, n - start));
  return split(x, sizes, dim);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  if (chunks <= 0) throw ValueError("chunk: chunks must be positive");
  const int64_t n = x.shape()[static_cast<size_t>(normalize_dim("chunk", dim, x.dim()))];
  return split(x, std::max<int64_t>((n + chunks - 1) / chunks, 1), dim);
}

}  // namespace graft
