// Losses, composed from differentiable ops so that their gradients follow. Conventions are
// PyTorch's: class dim 1, mean reduction over (weighted) non-ignored targets.
#include "autograd/functions/common.h"

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
