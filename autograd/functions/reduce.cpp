// Differentiable reductions and softmax.
#include "autograd/functions/common.h"

namespace graft {

using namespace autograd;

namespace {

// Re-inserts the reduced dims (size 1) into a gradient computed without keepdim.
Tensor restore_dims(const Tensor& g, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  if (keepdim || x.dim() == 0) return g;
  Tensor r = g;
  for (int64_t d : normalize_dims("sum", dims, x.dim())) r = ops::unsqueeze(r, d);
  return r;
}

int64_t reduced_count(const Tensor& x, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : normalize_dims("mean", dims, x.dim())) n *= x.shape()[static_cast<size_t>(d)];
  return n;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return record("sum", ops::reduce(ReduceOp::sum, x, dims, keepdim), {x}, [x, dims, keepdim](const Tensor& g) {
    return std::vector<Tensor>{ops::expand(restore_dims(g, x, dims, keepdim), x.shape())};
  });
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return record("mean", ops::reduce(ReduceOp::mean, x, dims, keepdim), {x}, [x, dims, keepdim](const Tensor& g) {
    const double n = static_cast<double>(reduced_count(x, dims));
    return std::vector<Tensor>{ops::expand(restore_dims(g, x, dims, keepdim), x.shape()) / n};
  });
}

namespace {
Tensor extremum_all(ReduceOp op, const Tensor& x) {
  Tensor y = ops::reduce(op, x, {}, false);
  return record(op == ReduceOp::max ? "max" : "min", y, {x}, [x, y = saved(y)](const Tensor& g) {
    Tensor hits = ops::cast(eq(x, y), x.dtype());
    return std::vector<Tensor>{hits * (g / ops::reduce(ReduceOp::sum, hits, {}, false))};
  });
}

std::pair<Tensor, Tensor> extremum_dim(ReduceOp op, const Tensor& x, int64_t dim, bool keepdim) {
  auto [values, indices] = ops::reduce_with_index(op, x, dim, keepdim);
  const int64_t d = normalize_dim("max", dim, x.dim());
  Tensor idx_keep = keepdim || x.dim() == 0 ? indices : ops::unsqueeze(indices, d);
  values = record(op == ReduceOp::max ? "max" : "min", values, {x}, [x, d, keepdim, idx_keep](const Tensor& g) {
    Tensor gk = keepdim || x.dim() == 0 ? g : ops::unsqueeze(g, d);
    if (x.dim() == 0) return std::vector<Tensor>{g};
    return std::vector<Tensor>{ops::scatter_add(x.shape(), d, idx_keep, gk)};
  });
  return {values, indices};
}
}  // namespace

Tensor max(const Tensor& x) { return extremum_all(ReduceOp::max, x); }
Tensor min(const Tensor& x) { return extremum_all(ReduceOp::min, x); }
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) { return extremum_dim(ReduceOp::max, x, dim, keepdim); }
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) { return extremum_dim(ReduceOp::min, x, dim, keepdim); }
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return ops::arg_reduce(true, x, dim, keepdim); }
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) { return ops::arg_reduce(false, x, dim, keepdim); }
Tensor argmax(const Tensor& x) { return ops::arg_reduce(true, ops::reshape(x, {-1}), 0, false); }

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  ops::check_floating("var", x);
  const int64_t n = reduced_count(x, dims);
  Tensor centered = x - mean(x, dims, true);
  const double denom = static_cast<double>(std::max<int64_t>(n - correction, 0));
  return sum(centered * centered, dims, keepdim) / denom;
}

Tensor stddev(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  return sqrt(var(x, dims, correction, keepdim));
}

Tensor softmax(const Tensor& x, int64_t dim) {
  Tensor y = ops::softmax(x, dim, false);
  return record("softmax", y, {x}, [y = saved(y), dim](const Tensor& g) {
    Tensor gy = g * y;
    return std::vector<Tensor>{gy - y * sum(gy, {dim}, true)};
  });
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  Tensor y = ops::softmax(x, dim, true);
  return record("log_softmax", y, {x}, [y = saved(y), dim](const Tensor& g) {
    return std::vector<Tensor>{g - exp(y) * sum(g, {dim}, true)};
  });
}

Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  // max-shifted for stability; the shift is a constant for the gradient.
  Tensor shift = ops::reduce(ReduceOp::max, x, dims, true);
  shift = where(isinf(shift), zeros_like(shift), shift);
  Tensor s = log(sum(exp(x - shift), dims, true)) + shift;
  if (keepdim) return s;
  std::vector<int64_t> norm = normalize_dims("logsumexp", dims, x.dim());
  for (size_t i = norm.size(); i-- > 0;) s = squeeze(s, norm[i]);
  return s;
}

}  // namespace graft
