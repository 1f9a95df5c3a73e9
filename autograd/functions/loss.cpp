// Losses, composed from differentiable ops so that their gradients follow. Conventions are
// PyTorch's: class dim 1, mean reduction over (weighted) non-ignored targets.
#include <type_traits>

#include "autograd/functions/common.h"
#include "kernels/loss/cross_entropy.h"

namespace graft {

using namespace autograd;

namespace {

Tensor reduce_loss(const Tensor& loss, Reduction reduction) {
  switch (reduction) {
    case Reduction::none: return loss;
    case Reduction::sum: return sum(loss);
    case Reduction::mean: return mean(loss);
  }
  return loss;
}

// [N, C, d1...] -> [N*d1*..., C]; [C] -> [1, C].
Tensor classes_last(const Tensor& input) {
  if (input.dim() == 1) return unsqueeze(input, 0);
  if (input.dim() == 2) return input;
  std::vector<int64_t> order{0};
  for (int64_t d = 2; d < input.dim(); ++d) order.push_back(d);
  order.push_back(1);
  return reshape(permute(input, order), {-1, input.shape()[1]});
}

void check_class_target(const char* op, const Tensor& input, const Tensor& target) {
  if (input.dim() == 0) throw ShapeError(std::string(op) + ": input must have a class dim, got a 0-d tensor");
  Shape expect;
  if (input.dim() >= 2) {
    expect.push_back(input.shape()[0]);
    expect.insert(expect.end(), input.shape().begin() + 2, input.shape().end());
  }
  if (target.shape() != expect)
    throw ShapeError(std::string(op) + ": target shape " + shape_str(target.shape()) + " does not match input " +
                     shape_str(input.shape()) + " (expected " + shape_str(expect) + ")");
}

// Per-sample losses from log-probabilities [M, C] and class indices [M]: returns (loss, weight per sample).
std::pair<Tensor, Tensor> nll_rows(const Tensor& logp, const Tensor& target_in, const CrossEntropyOptions& o,
                                   const char* op) {
  const int64_t C = logp.shape()[1];
  Tensor target = ops::cast(ops::reshape(target_in, {-1}), DType::i64);
  Tensor valid = ne(target, static_cast<double>(o.ignore_index));
  Tensor safe = where(valid, target, 0.0);
  const auto tv = target.to_vector<int64_t>();
  for (int64_t t : tv)
    if (t != o.ignore_index && (t < 0 || t >= C))
      throw IndexError(std::string(op) + ": target " + std::to_string(t) + " is out of range for " + std::to_string(C) +
                       " classes");
  Tensor picked = squeeze(gather(logp, 1, unsqueeze(safe, 1)), 1);
  Tensor w = ops::cast(valid, logp.dtype());
  if (o.weight.defined()) {
    if (o.weight.shape() != Shape{C})
      throw ShapeError(std::string(op) + ": weight shape " + shape_str(o.weight.shape()) + " must be [" + std::to_string(C) + "]");
    ops::check_same_dtype(op, logp, o.weight);
    w = w * index_select(o.weight, 0, safe);
  }
  return {neg(picked) * w, w};
}

#if GRAFT_WITH_CUDA
// The fused CUDA path: CUDA logits, class-index targets, class weights (if any) without a gradient
// of their own. Anything else takes the composed path below.
bool fused_cross_entropy_applies(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o) {
  return input.device().is_cuda() && input.dim() >= 1 &&
         (target.dtype() == DType::i64 || target.dtype() == DType::i32) &&
         (!o.weight.defined() || !o.weight.requires_grad());
}

// Calls f with a null pointer of the storage type of a floating dtype.
template <class F>
void by_float_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: return f(static_cast<float*>(nullptr));
    case DType::f64: return f(static_cast<double*>(nullptr));
    case DType::bf16: return f(static_cast<bf16*>(nullptr));
    case DType::f16: return f(static_cast<f16*>(nullptr));
    default: throw DTypeError(std::string("cross_entropy: expected a floating-point input, got ") + dtype_name(dtype));
  }
}

// One node for log_softmax + pick + smoothing + weights + reduction (kernels/loss/cross_entropy.h):
// forward saves the row log-sum-exp; backward is one kernel. The logits are read as [N, C, D], so
// [N, C, d1, ...] inputs need no classes-last copy.
Tensor cross_entropy_cuda(const Tensor& input, const Tensor& target_in, const CrossEntropyOptions& o) {
  check_class_target("cross_entropy", input, target_in);
  ops::check_same_device("cross_entropy", input, target_in);
  kernels::CrossEntropyShape shape;
  shape.N = input.dim() == 1 ? 1 : input.shape()[0];
  shape.C = input.dim() == 1 ? input.shape()[0] : input.shape()[1];
  for (int64_t d = 2; d < input.dim(); ++d) shape.D *= input.shape()[static_cast<size_t>(d)];
  Tensor weight;
  if (o.weight.defined()) {
    if (o.weight.shape() != Shape{shape.C})
      throw ShapeError("cross_entropy: weight shape " + shape_str(o.weight.shape()) + " must be [" +
                       std::to_string(shape.C) + "]");
    ops::check_same_dtype("cross_entropy", input, o.weight);
    ops::check_same_device("cross_entropy", input, o.weight);
    weight = saved(ops::contiguous(o.weight));
  }
  kernels::CrossEntropyParams params;
  params.ignore_index = o.ignore_index;
  params.label_smoothing = o.label_smoothing;
  params.reduction = o.reduction == Reduction::none ? kernels::LossReduction::none
                     : o.reduction == Reduction::sum ? kernels::LossReduction::sum
                                                     : kernels::LossReduction::mean;
  const Tensor x = saved(ops::contiguous(input));
  const Tensor target = ops::cast(ops::reshape(target_in, {-1}), DType::i64);  // contiguous [N * D]
  const TensorOptions on_device = TensorOptions(input.dtype()).with_device(input.device());
  const DType acc = input.dtype() == DType::f64 ? DType::f64 : DType::f32;  // cross_entropy_acc_t
  Tensor lse = empty({shape.rows()}, on_device.with_dtype(acc));
  Tensor total_weight = empty({}, on_device.with_dtype(acc));
  Tensor out = empty(o.reduction == Reduction::none ? target_in.shape() : Shape{}, on_device);
  by_float_dtype(input.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = kernels::cross_entropy_acc_t<T>;
    int64_t bad = 0;
    if (!kernels::cross_entropy_forward_cuda<T>(input.device().index, static_cast<const T*>(x.data_ptr()), shape,
                                                static_cast<const int64_t*>(target.data_ptr()),  // data_ptr<T>() is CPU-only
                                                weight.defined() ? static_cast<const T*>(weight.data_ptr()) : nullptr,
                                                params, static_cast<T*>(out.data_ptr()),
                                                static_cast<A*>(lse.data_ptr()),
                                                static_cast<A*>(total_weight.data_ptr()), &bad))
      throw IndexError("cross_entropy: target " + std::to_string(bad) + " is out of range for " +
                       std::to_string(shape.C) + " classes");
  });
  return record("cross_entropy", out, {input}, [x, target, weight, lse, total_weight, shape, params](const Tensor& g) {
    const Tensor grad_out = ops::contiguous(g.dtype() == x.dtype() ? g : ops::cast(g, x.dtype()));
    Tensor grad_x = empty(x.shape(), TensorOptions(x.dtype()).with_device(x.device()));
    by_float_dtype(x.dtype(), [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      using A = kernels::cross_entropy_acc_t<T>;
      kernels::cross_entropy_backward_cuda<T>(x.device().index, static_cast<const T*>(x.data_ptr()), shape,
                                              static_cast<const int64_t*>(target.data_ptr()),
                                              weight.defined() ? static_cast<const T*>(weight.data_ptr()) : nullptr,
                                              params, static_cast<const A*>(lse.data_ptr()),
                                              static_cast<const A*>(total_weight.data_ptr()),
                                              static_cast<const T*>(grad_out.data_ptr()),
                                              static_cast<T*>(grad_x.data_ptr()));
    });
    return std::vector<Tensor>{grad_x};
  });
}
#endif

}  // namespace

Tensor nll_loss(const Tensor& input, const Tensor& target, const CrossEntropyOptions& options) {
  ops::check_floating("nll_loss", input);
  check_class_target("nll_loss", input, target);
  if (is_floating(target.dtype())) throw DTypeError("nll_loss: target must be class indices (i32/i64)");
  auto [loss, w] = nll_rows(classes_last(input), target, options, "nll_loss");
  if (options.reduction == Reduction::mean) return sum(loss) / sum(w);
  if (options.reduction == Reduction::sum) return sum(loss);
  return reshape(loss, target.shape());
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o) {
  ops::check_floating("cross_entropy", input);
  if (!(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0))
    throw ValueError("cross_entropy: label_smoothing must be in [0, 1], got " + std::to_string(o.label_smoothing));
#if GRAFT_WITH_CUDA
  if (fused_cross_entropy_applies(input, target, o)) return cross_entropy_cuda(input, target, o);
#endif
  const int64_t class_dim = input.dim() == 1 ? 0 : 1;
  Tensor logp = log_softmax(input, class_dim);
  const int64_t C = input.dim() == 0 ? 0 : input.shape()[static_cast<size_t>(class_dim)];
  const double eps = o.label_smoothing;

  if (is_floating(target.dtype())) {  // class probabilities
    if (target.shape() != input.shape())
      throw ShapeError("cross_entropy: probability target shape " + shape_str(target.shape()) +
                       " must equal input shape " + shape_str(input.shape()));
    ops::check_same_dtype("cross_entropy", input, target);
    Tensor t = eps > 0 ? target * (1.0 - eps) + eps / static_cast<double>(C) : target;
    Tensor terms = logp * t;
    if (o.weight.defined()) {
      Shape wshape(static_cast<size_t>(input.dim()), 1);
      wshape[static_cast<size_t>(class_dim)] = C;
      terms = terms * reshape(o.weight, wshape);
    }
    Tensor loss = neg(sum(terms, {class_dim}));
    if (o.reduction == Reduction::mean) return sum(loss) / static_cast<double>(std::max<int64_t>(loss.numel(), 1));
    return reduce_loss(loss, o.reduction);
  }

  check_class_target("cross_entropy", input, target);
  Tensor rows = classes_last(logp);
  auto [nll, w] = nll_rows(rows, target, o, "cross_entropy");
  Tensor loss = nll;
  if (eps > 0) {
    // Smoothing term: -sum_c w_c logp_c / C on each non-ignored sample.
    Tensor lp = o.weight.defined() ? rows * unsqueeze(o.weight, 0) : rows;
    Tensor valid = ops::cast(ne(ops::cast(ops::reshape(target, {-1}), DType::i64), static_cast<double>(o.ignore_index)),
                             input.dtype());
    Tensor smooth = neg(sum(lp, {1})) * valid / static_cast<double>(C);
    loss = nll * (1.0 - eps) + smooth * eps;
  }
  if (o.reduction == Reduction::mean) return sum(loss) / sum(w);
  if (o.reduction == Reduction::sum) return sum(loss);
  return reshape(loss, target.shape());
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  if (input.shape() != target.shape())
    throw ShapeError("mse_loss: input " + shape_str(input.shape()) + " and target " + shape_str(target.shape()) + " differ");
  Tensor d = input - target;
  return reduce_loss(d * d, reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  if (input.shape() != target.shape())
    throw ShapeError("l1_loss: input " + shape_str(input.shape()) + " and target " + shape_str(target.shape()) + " differ");
  return reduce_loss(abs(input - target), reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& x, const Tensor& y, const BceWithLogitsOptions& o) {
  if (x.shape() != y.shape())
    throw ShapeError("binary_cross_entropy_with_logits: input " + shape_str(x.shape()) + " and target " +
                     shape_str(y.shape()) + " differ");
  ops::check_floating("binary_cross_entropy_with_logits", x);
  // (1 - y) x + (1 + (pw - 1) y) (log(1 + exp(-|x|)) + max(-x, 0)): stable for any x.
  Tensor softplus_neg = log1p(exp(neg(abs(x)))) + relu(neg(x));
  Tensor loss = o.pos_weight.defined() ? (1.0 - y) * x + (1.0 + (o.pos_weight - 1.0) * y) * softplus_neg
                                       : (1.0 - y) * x + softplus_neg;
  if (o.weight.defined()) loss = loss * o.weight;
  return reduce_loss(loss, o.reduction);
}

}  // namespace graft
