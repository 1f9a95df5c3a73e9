// Differentiable matmul, linear, layer_norm, embedding, index ops and dropout.
#include "autograd/autocast.h"
#include "autograd/functions/common.h"

namespace graft {

using namespace autograd;

namespace {

Tensor mT(const Tensor& x) { return ops::permute(x, [&] {
  std::vector<int64_t> order;
  for (int64_t d = 0; d < x.dim(); ++d) order.push_back(d);
  std::swap(order[order.size() - 1], order[order.size() - 2]);
  return order;
}()); }

// Both operands at least 2-D: out = a @ b with broadcast batch dims.
Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  return record("matmul", ops::matmul(a, b), {a, b}, [a, b](const Tensor& g) {
    Tensor ga, gb;
    if (a.requires_grad()) ga = ops::sum_to(ops::matmul(g, mT(b)), a.shape());
    if (b.requires_grad()) gb = ops::sum_to(ops::matmul(mT(a), g), b.shape());
    return std::vector<Tensor>{ga, gb};
  });
}

// matmul without autocast (the operands are used as given).
Tensor matmul_plain(const Tensor& a, const Tensor& b) {
  ops::check_matmul(a, b);  // before 1-D operands are lifted, so errors show the shapes given
  if (a.dim() >= 2 && b.dim() >= 2) return matmul_nd(a, b);
  Tensor a2 = a.dim() == 1 ? unsqueeze(a, 0) : a;
  Tensor b2 = b.dim() == 1 ? unsqueeze(b, -1) : b;
  Tensor out = matmul_nd(a2, b2);
  if (b.dim() == 1) out = squeeze(out, -1);
  if (a.dim() == 1) out = squeeze(out, a.dim() == 1 && b.dim() == 1 ? -1 : -2);
  return out;
}

// linear without autocast; the caller has checked the shapes.
Tensor linear_plain(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (x.dim() < 2) {
    Tensor y = matmul_plain(x, transpose(weight, 0, 1));
    return bias.defined() ? y + bias : y;
  }
  // One node: the bias rides in the GEMM forward; backward takes the weight gradient as g^T x
  // (already [out, in], no transposed copy) and the bias gradient as a column sum of g.
  return record("linear", ops::linear(x, weight, bias), {x, weight, bias}, [x, weight, bias](const Tensor& g) {
    const int64_t out_features = weight.shape()[0], in_features = weight.shape()[1];
    const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
    Tensor gx, gw, gb;
    if (x.requires_grad()) gx = ops::matmul(g, weight);
    const Tensor g2 = ops::reshape(g, {rows, out_features});
    if (weight.requires_grad()) gw = ops::matmul(mT(g2), ops::reshape(x, {rows, in_features}));
    if (bias.defined() && bias.requires_grad()) gb = ops::reduce(ReduceOp::sum, g2, {0}, false);
    return std::vector<Tensor>{gx, gw, gb};
  });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (const auto dtype = autocast::compute_dtype({a, b})) {
    ops::check_matmul(a, b);  // errors name the operands as given, before the casts
    return autocast::to_result(matmul_plain(autocast::to_compute(a, *dtype), autocast::to_compute(b, *dtype)), *dtype);
  }
  return matmul_plain(a, b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (weight.dim() != 2)
    throw ShapeError("linear: weight must be [out_features, in_features], got " + shape_str(weight.shape()));
  if (x.dim() == 0 || x.shape().back() != weight.shape()[1])
    throw ShapeError("linear: input " + shape_str(x.shape()) + " does not end in in_features " +
                     std::to_string(weight.shape()[1]) + " of weight " + shape_str(weight.shape()));
  if (bias.defined() && bias.shape() != Shape{weight.shape()[0]})
    throw ShapeError("linear: bias " + shape_str(bias.shape()) + " must be [" + std::to_string(weight.shape()[0]) + "]");
  if (const auto dtype = autocast::compute_dtype({x, weight, bias})) {
    return autocast::to_result(linear_plain(autocast::to_compute(x, *dtype), autocast::to_compute(weight, *dtype),
                                            autocast::to_compute(bias, *dtype)),
                               *dtype);
  }
  return linear_plain(x, weight, bias);
}

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias, double eps) {
  const int64_t nd = static_cast<int64_t>(normalized_shape.size());
  if (nd == 0 || nd > x.dim() || !std::equal(normalized_shape.begin(), normalized_shape.end(), x.shape().end() - nd))
    throw ShapeError("layer_norm: normalized_shape " + shape_str(normalized_shape) + " does not match the end of input shape " +
                     shape_str(x.shape()));
  auto [y, mean, rstd] = ops::layer_norm_forward(x, nd, weight, bias, eps);
  return record("layer_norm", y, {x, weight, bias}, [x, weight, bias, mean = mean, rstd = rstd, nd](const Tensor& g) {
    auto [gx, gw, gb] = ops::layer_norm_backward(g, x, mean, rstd, nd, weight, weight.defined() && weight.requires_grad(),
                                                 bias.defined() && bias.requires_grad());
    return std::vector<Tensor>{x.requires_grad() ? gx : Tensor(), gw, gb};
  });
}

Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx) {
  if (weight.dim() != 2) throw ShapeError("embedding: weight must be [num_embeddings, dim], got " + shape_str(weight.shape()));
  const int64_t num = weight.shape()[0], dim = weight.shape()[1];
  if (padding_idx >= num) throw IndexError("embedding: padding_idx " + std::to_string(padding_idx) + " >= num_embeddings " + std::to_string(num));
  Tensor flat = ops::reshape(indices, {-1});
  Tensor rows = ops::index_select(weight, 0, flat, "embedding");
  Shape out_shape = indices.shape();
  out_shape.push_back(dim);
  return record("embedding", ops::reshape(rows, out_shape), {weight}, [flat, num, dim, padding_idx](const Tensor& g) {
    Tensor gw = ops::index_add({num, dim}, 0, flat, ops::reshape(g, {-1, dim}));
    if (padding_idx >= 0) ops::fill(ops::narrow(gw, 0, padding_idx, 1), 0.0);
    return std::vector<Tensor>{gw};
  });
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  return record("index_select", ops::index_select(x, dim, index), {x}, [x, dim, index](const Tensor& g) {
    return std::vector<Tensor>{ops::index_add(x.shape(), dim, ops::reshape(index, {-1}), g)};
  });
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  return record("gather", ops::gather(x, dim, index), {x}, [x, dim, index](const Tensor& g) {
    return std::vector<Tensor>{ops::scatter_add(x.shape(), dim, index, g)};
  });
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* generator) {
  if (!(p >= 0.0 && p <= 1.0)) throw ValueError("dropout: p must be in [0, 1], got " + std::to_string(p));
  ops::check_floating("dropout", x);
  if (!training || p == 0.0) return x;
  if (p == 1.0) return x * 0.0;
  if (ops::dropout_fused_applies(x)) {
    // The same draw as the bernoulli below (same generator calls, same Philox elements).
    Generator& g = generator ? *generator : default_generator();
    const uint64_t seed = g.seed(), counter = g.reserve(x.numel());
    auto [y, keep] = ops::dropout_forward(x, p, seed, counter);
    return record("dropout", y, {x}, [keep = keep, p](const Tensor& grad) {
      return std::vector<Tensor>{ops::dropout_backward(grad, keep, p)};
    });
  }
  Tensor keep = bernoulli(x.shape(), 1.0 - p, x.device(), generator);
  Tensor scale = ops::cast(keep, x.dtype()) * (1.0 / (1.0 - p));
  return x * scale;
}

}  // namespace graft
