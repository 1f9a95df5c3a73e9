// Differentiable elementwise ops. Backward closures use the differentiable ops themselves; the
// engine runs them with grad mode off, so they record nothing.
#include <cmath>

#include "autograd/functions/common.h"

namespace graft {

using namespace autograd;

namespace {

Tensor unary_node(UnaryOp op, const Tensor& x, Node::BackwardFn backward, double a = 0, double b = 0) {
  return record(kernels::unary_op_name(op), ops::unary(op, x, a, b), {x}, std::move(backward));
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return record("add", ops::binary(BinaryOp::add, a, b), {a, b}, [a, b](const Tensor& g) {
    return std::vector<Tensor>{a.requires_grad() ? unbroadcast(g, a) : Tensor(),
                               b.requires_grad() ? unbroadcast(g, b) : Tensor()};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  return record("sub", ops::binary(BinaryOp::sub, a, b), {a, b}, [a, b](const Tensor& g) {
    return std::vector<Tensor>{a.requires_grad() ? unbroadcast(g, a) : Tensor(),
                               b.requires_grad() ? unbroadcast(neg(g), b) : Tensor()};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  return record("mul", ops::binary(BinaryOp::mul, a, b), {a, b}, [a, b](const Tensor& g) {
    return std::vector<Tensor>{a.requires_grad() ? unbroadcast(g * b, a) : Tensor(),
                               b.requires_grad() ? unbroadcast(g * a, b) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  return record("div", ops::binary(BinaryOp::div, a, b), {a, b}, [a, b](const Tensor& g) {
    return std::vector<Tensor>{a.requires_grad() ? unbroadcast(g / b, a) : Tensor(),
                               b.requires_grad() ? unbroadcast(neg(g * a / (b * b)), b) : Tensor()};
  });
}

Tensor add(const Tensor& a, double b) { return add(a, scalar(b, a)); }
Tensor sub(const Tensor& a, double b) { return sub(a, scalar(b, a)); }
Tensor mul(const Tensor& a, double b) { return mul(a, scalar(b, a)); }
Tensor div(const Tensor& a, double b) { return div(a, scalar(b, a)); }

Tensor neg(const Tensor& x) {
  return unary_node(UnaryOp::neg, x, [](const Tensor& g) { return std::vector<Tensor>{neg(g)}; });
}

Tensor exp(const Tensor& x) {
  Tensor y = ops::unary(UnaryOp::exp, x);
  return record("exp", y, {x}, [y = saved(y)](const Tensor& g) { return std::vector<Tensor>{g * y}; });
}

Tensor log(const Tensor& x) {
  return unary_node(UnaryOp::log, x, [x](const Tensor& g) { return std::vector<Tensor>{g / x}; });
}

Tensor log1p(const Tensor& x) {
  return unary_node(UnaryOp::log1p, x, [x](const Tensor& g) { return std::vector<Tensor>{g / (x + 1.0)}; });
}

Tensor sqrt(const Tensor& x) {
  Tensor y = ops::unary(UnaryOp::sqrt, x);
  return record("sqrt", y, {x}, [y = saved(y)](const Tensor& g) { return std::vector<Tensor>{g * 0.5 / y}; });
}

Tensor rsqrt(const Tensor& x) {
  Tensor y = ops::unary(UnaryOp::rsqrt, x);
  return record("rsqrt", y, {x},
                [y = saved(y)](const Tensor& g) { return std::vector<Tensor>{g * -0.5 * y * y * y}; });
}

Tensor abs(const Tensor& x) {
  return unary_node(UnaryOp::abs, x, [x](const Tensor& g) { return std::vector<Tensor>{g * sign(x)}; });
}

Tensor square(const Tensor& x) {
  return unary_node(UnaryOp::square, x, [x](const Tensor& g) { return std::vector<Tensor>{g * x * 2.0}; });
}

Tensor sign(const Tensor& x) { return ops::unary(UnaryOp::sign, x); }

Tensor pow(const Tensor& x, double p) {
  return unary_node(
      UnaryOp::pow_scalar, x,
      [x, p](const Tensor& g) {
        if (p == 0.0) return std::vector<Tensor>{zeros_like(g)};
        return std::vector<Tensor>{g * p * pow(x, p - 1.0)};
      },
      p);
}

Tensor pow(const Tensor& x, const Tensor& e) {
  Tensor y = ops::binary(BinaryOp::pow, x, e);
  return record("pow", y, {x, e}, [x, e, y = saved(y)](const Tensor& g) {
    Tensor gx, ge;
    if (x.requires_grad()) gx = unbroadcast(g * e * pow(x, e - 1.0), x);
    if (e.requires_grad()) {
      // d/de x^e = x^e log x; taken as 0 where x == 0 (the limit for e > 0), as PyTorch does.
      Tensor term = where(eq(x, 0.0), zeros_like(y), y * log(x));
      ge = unbroadcast(g * term, e);
    }
    return std::vector<Tensor>{gx, ge};
  });
}

Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi) {
  if (!lo && !hi) throw ValueError("clamp: at least one of min and max must be given");
  const double a = lo ? *lo : -INFINITY, b = hi ? *hi : INFINITY;
  // min > max is allowed, as in PyTorch: every element becomes max.
  return unary_node(
      UnaryOp::clamp, x,
      [x, a, b](const Tensor& g) {
        Tensor inside = logical_and(ge(x, a), le(x, b));
        return std::vector<Tensor>{where(inside, g, 0.0)};
      },
      a, b);
}
Tensor clamp_min(const Tensor& x, double lo) { return clamp(x, lo, std::nullopt); }
Tensor clamp_max(const Tensor& x, double hi) { return clamp(x, std::nullopt, hi); }

Tensor tanh(const Tensor& x) {
  Tensor y = ops::unary(UnaryOp::tanh, x);
  return record("tanh", y, {x}, [y = saved(y)](const Tensor& g) { return std::vector<Tensor>{g * (1.0 - y * y)}; });
}

Tensor sigmoid(const Tensor& x) {
  Tensor y = ops::unary(UnaryOp::sigmoid, x);
  return record("sigmoid", y, {x}, [y = saved(y)](const Tensor& g) { return std::vector<Tensor>{g * y * (1.0 - y)}; });
}

Tensor relu(const Tensor& x) {
  return unary_node(UnaryOp::relu, x, [x](const Tensor& g) { return std::vector<Tensor>{where(gt(x, 0.0), g, 0.0)}; });
}

Tensor gelu(const Tensor& x, GeluApproximation approximate) {
  const bool exact = approximate == GeluApproximation::none;
  return unary_node(exact ? UnaryOp::gelu_erf : UnaryOp::gelu_tanh, x, [x, exact](const Tensor& g) {
    if (exact) return std::vector<Tensor>{ops::gelu_erf_backward(g, x)};
    return std::vector<Tensor>{g * ops::unary(UnaryOp::gelu_tanh_grad, x)};
  });
}

Tensor erf(const Tensor& x) {
  return unary_node(UnaryOp::erf, x, [x](const Tensor& g) {
    return std::vector<Tensor>{g * exp(neg(x * x)) * 1.1283791670955126};  // 2/sqrt(pi)
  });
}

Tensor sin(const Tensor& x) {
  return unary_node(UnaryOp::sin, x, [x](const Tensor& g) { return std::vector<Tensor>{g * cos(x)}; });
}

Tensor cos(const Tensor& x) {
  return unary_node(UnaryOp::cos, x, [x](const Tensor& g) { return std::vector<Tensor>{neg(g * sin(x))}; });
}

namespace {
// Gradient of max/min: to the winner; ties split it equally, as PyTorch does.
Tensor extremum(BinaryOp op, const Tensor& a, const Tensor& b) {
  return record(kernels::binary_op_name(op), ops::binary(op, a, b), {a, b}, [op, a, b](const Tensor& g) {
    Tensor wins_a = op == BinaryOp::maximum ? gt(a, b) : lt(a, b);
    Tensor tie = eq(a, b);
    Tensor share_a = ops::cast(wins_a, g.dtype()) + ops::cast(tie, g.dtype()) * 0.5;
    Tensor share_b = 1.0 - share_a;
    return std::vector<Tensor>{a.requires_grad() ? unbroadcast(g * share_a, a) : Tensor(),
                               b.requires_grad() ? unbroadcast(g * share_b, b) : Tensor()};
  });
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(BinaryOp::maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(BinaryOp::minimum, a, b); }

Tensor where(const Tensor& c, const Tensor& a, const Tensor& b) {
  return record("where", ops::where(c, a, b), {a, b}, [c, a, b](const Tensor& g) {
    Tensor zero = scalar(0.0, g);
    return std::vector<Tensor>{a.requires_grad() ? unbroadcast(ops::where(c, g, zero), a) : Tensor(),
                               b.requires_grad() ? unbroadcast(ops::where(c, zero, g), b) : Tensor()};
  });
}
Tensor where(const Tensor& c, const Tensor& a, double b) { return where(c, a, scalar(b, a)); }

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  if (broadcast_shapes("masked_fill", x.shape(), mask.shape()) != x.shape())
    throw ShapeError("masked_fill: mask of shape " + shape_str(mask.shape()) + " does not broadcast to input shape " +
                     shape_str(x.shape()));
  return where(mask, scalar(value, x), x);
}

#define GRAFT_COMPARISON(NAME, OP)                                                         \
  Tensor NAME(const Tensor& a, const Tensor& b) { return ops::binary(BinaryOp::OP, a, b); } \
  Tensor NAME(const Tensor& a, double b) { return ops::binary(BinaryOp::OP, a, scalar(b, a)); }
GRAFT_COMPARISON(eq, eq)
GRAFT_COMPARISON(ne, ne)
GRAFT_COMPARISON(lt, lt)
GRAFT_COMPARISON(le, le)
GRAFT_COMPARISON(gt, gt)
GRAFT_COMPARISON(ge, ge)
#undef GRAFT_COMPARISON

Tensor logical_and(const Tensor& a, const Tensor& b) { return ops::binary(BinaryOp::logical_and, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return ops::binary(BinaryOp::logical_or, a, b); }
Tensor logical_not(const Tensor& a) {
  if (a.dtype() != DType::boolean) throw DTypeError(std::string("logical_not: expected bool, got ") + dtype_name(a.dtype()));
  return ops::binary(BinaryOp::eq, a, scalar(0.0, a));
}
Tensor isnan(const Tensor& x) { return ops::unary(UnaryOp::isnan, x); }
Tensor isinf(const Tensor& x) { return ops::unary(UnaryOp::isinf, x); }

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  ops::check_same_dtype("allclose", a, b);
  if (a.shape() != b.shape()) return false;
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i])) return false;
    if (std::abs(x[i] - y[i]) > atol + rtol * std::abs(y[i])) return false;
  }
  return true;
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(scalar(a, b), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar(a, b), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar(a, b), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar(a, b), b); }
Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace graft
