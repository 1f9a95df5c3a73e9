// graft::gru and graft::gru_cell: validate every argument, then pick an implementation.
// Validation lives here once, so both implementations (reference and fused) may assume that
// shapes, dtypes, devices and lengths are consistent.
//
// Shape letters: T time steps, N batch, I input size, H hidden size, L layers, D directions.
#include <cmath>
#include <string>
#include <vector>

#include "autograd/gru.h"
#include "autograd/ops.h"

namespace graft {

namespace detail {
// Defined in gru_reference.cpp (arguments already validated; lengths empty = every sequence is T).
GruResult gru_reference(const Tensor& input, const Tensor& h0, const std::vector<Tensor>& params,
                        const GruOptions& options, const std::vector<int64_t>& lengths);
Tensor gru_cell_step(const Tensor& x, const Tensor& h, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                     const Tensor& b_hh);
}  // namespace detail

namespace {

std::string str(int64_t v) { return std::to_string(v); }

// PyTorch's parameter name for position k of params.
std::string param_name(int64_t k, int64_t per_direction, int64_t directions) {
  static const char* kinds[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  const int64_t group = k / per_direction;  // (layer, direction) index
  std::string name = std::string(kinds[k % per_direction]) + "_l" + str(group / directions);
  if (group % directions == 1) name += "_reverse";
  return name;
}

void check_like_input(const char* what, const Tensor& t, const Tensor& input) {
  if (t.dtype() != input.dtype())
    throw DTypeError(std::string("gru: ") + what + " is " + dtype_name(t.dtype()) + ", expected the input's dtype " +
                     dtype_name(input.dtype()));
  if (t.device() != input.device())
    throw DeviceError(std::string("gru: ") + what + " is on " + t.device().str() + ", the input on " +
                      input.device().str());
}

void check_options(const GruOptions& options) {
  if (options.num_layers < 1) throw ValueError("gru: num_layers must be >= 1, got " + str(options.num_layers));
  if (!(options.dropout >= 0.0 && options.dropout <= 1.0))
    throw ValueError("gru: dropout must be in [0, 1], got " + std::to_string(options.dropout));
}

// Checks params against PyTorch's layout; returns H.
int64_t check_params(const Tensor& input, const std::vector<Tensor>& params, const GruOptions& options) {
  const int64_t D = options.bidirectional ? 2 : 1, per = options.bias ? 4 : 2;
  const int64_t expected = options.num_layers * D * per;
  if (static_cast<int64_t>(params.size()) != expected)
    throw ValueError("gru: expected " + str(expected) + " parameter tensors (num_layers=" + str(options.num_layers) +
                     " x directions=" + str(D) + " x " + str(per) + (options.bias ? " with bias" : " without bias") +
                     "), got " + str(static_cast<int64_t>(params.size())));
  for (size_t k = 0; k < params.size(); ++k)
    if (!params[k].defined())
      throw ValueError("gru: parameter " + param_name(static_cast<int64_t>(k), per, D) + " is undefined");
  // H comes from weight_hh_l0 [3H, H]; the input size from weight_ih_l0 [3H, I].
  const Tensor& w_hh = params[1];
  if (w_hh.dim() != 2 || w_hh.size(0) != 3 * w_hh.size(1) || w_hh.size(1) < 1)
    throw ShapeError("gru: weight_hh_l0 must be [3*H, H] with H >= 1, got " + shape_str(w_hh.shape()));
  const int64_t H = w_hh.size(1);
  const int64_t I = input.size(2);
  if (params[0].dim() == 2 && params[0].size(1) != I)
    throw ShapeError("gru: input has size " + str(I) + " in its last dim (shape " + shape_str(input.shape()) +
                     "), but weight_ih_l0 is " + shape_str(params[0].shape()) + ": expected input_size " +
                     str(params[0].size(1)));
  for (int64_t k = 0; k < expected; ++k) {
    const int64_t layer = k / per / D, kind = k % per;
    const int64_t in = layer == 0 ? I : D * H;
    const Shape want = kind == 0 ? Shape{3 * H, in} : kind == 1 ? Shape{3 * H, H} : Shape{3 * H};
    const std::string name = param_name(k, per, D);
    if (params[k].shape() != want)
      throw ShapeError("gru: " + name + " must be " + shape_str(want) + " (H=" + str(H) + "), got " +
                       shape_str(params[k].shape()));
    check_like_input(name.c_str(), params[k], input);
  }
  return H;
}

// Validated lengths as host integers (empty when undefined).
std::vector<int64_t> check_lengths(const Tensor& lengths, int64_t T, int64_t N, bool enforce_sorted) {
  if (!lengths.defined()) return {};
  if (!is_integral(lengths.dtype()))
    throw DTypeError(std::string("gru: lengths must be an integer tensor (i32 or i64), got ") +
                     dtype_name(lengths.dtype()));
  if (lengths.shape() != Shape{N})
    throw ShapeError("gru: lengths must be [N] = [" + str(N) + "], got " + shape_str(lengths.shape()));
  std::vector<int64_t> values = lengths.to_vector<int64_t>();
  for (size_t n = 0; n < values.size(); ++n)
    if (values[n] < 1 || values[n] > T)
      throw ValueError("gru: lengths[" + str(static_cast<int64_t>(n)) + "] = " + str(values[n]) +
                       " is outside [1, T] = [1, " + str(T) + "]");
  if (enforce_sorted) {
    for (size_t n = 1; n < values.size(); ++n)
      if (values[n] > values[n - 1])
        throw ValueError("gru: lengths must be sorted longest first, but lengths[" + str(static_cast<int64_t>(n)) +
                         "] = " + str(values[n]) + " > lengths[" + str(static_cast<int64_t>(n - 1)) + "] = " +
                         str(values[n - 1]) + " (set enforce_sorted = false to accept any order)");
  }
  return values;
}

}  // namespace

GruResult gru(const Tensor& input, const Tensor& h0, const std::vector<Tensor>& params, const GruOptions& options,
              const Tensor& lengths, GruImplementation implementation) {
  if (!input.defined()) throw ValueError("gru: input is undefined");
  if (input.dim() != 3)
    throw ShapeError(std::string("gru: input must be 3-D ") + (options.batch_first ? "[N, T, I]" : "[T, N, I]") +
                     ", got shape " + shape_str(input.shape()));
  if (!is_floating(input.dtype()))
    throw DTypeError(std::string("gru: input must be floating point, got ") + dtype_name(input.dtype()));
  check_options(options);
  const int64_t T = input.size(options.batch_first ? 1 : 0), N = input.size(options.batch_first ? 0 : 1);
  if (T < 1) throw ShapeError("gru: input has no time steps, shape " + shape_str(input.shape()));
  const int64_t H = check_params(input, params, options);
  const int64_t LD = options.num_layers * (options.bidirectional ? 2 : 1);
  if (h0.defined()) {
    const Shape want{LD, N, H};
    if (h0.shape() != want)
      throw ShapeError("gru: h0 must be [num_layers*directions, N, H] = " + shape_str(want) + ", got " +
                       shape_str(h0.shape()));
    check_like_input("h0", h0, input);
  }
  const std::vector<int64_t> host_lengths = check_lengths(lengths, T, N, options.enforce_sorted);

  switch (implementation) {
    case GruImplementation::reference:
      return detail::gru_reference(input, h0, params, options, host_lengths);
    case GruImplementation::fused:
    case GruImplementation::fused_onednn:
      if (std::string why = gru_fused_refusal(input, params, lengths, implementation); !why.empty())
        throw NotImplementedError(std::string("gru: the ") +
                                  (implementation == GruImplementation::fused ? "fused" : "fused_onednn") +
                                  " implementation does not apply: " + why +
                                  "; use GruImplementation::reference or automatic");
      return gru_fused(input, h0, params, options, lengths, implementation);
    case GruImplementation::automatic:
      if (gru_fused_applies(input, params, options, lengths)) return gru_fused(input, h0, params, options, lengths);
      return detail::gru_reference(input, h0, params, options, host_lengths);
  }
  throw ValueError("gru: unknown implementation");
}

Tensor gru_cell(const Tensor& input, const Tensor& hx, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                const Tensor& b_hh) {
  if (!input.defined() || !w_ih.defined() || !w_hh.defined())
    throw ValueError("gru_cell: input, w_ih and w_hh must be defined");
  if (input.dim() != 1 && input.dim() != 2)
    throw ShapeError("gru_cell: input must be [N, I] or [I], got " + shape_str(input.shape()));
  if (!is_floating(input.dtype()))
    throw DTypeError(std::string("gru_cell: input must be floating point, got ") + dtype_name(input.dtype()));
  if (w_hh.dim() != 2 || w_hh.size(0) != 3 * w_hh.size(1) || w_hh.size(1) < 1)
    throw ShapeError("gru_cell: w_hh must be [3*H, H] with H >= 1, got " + shape_str(w_hh.shape()));
  const int64_t H = w_hh.size(1), I = input.size(-1);
  const bool batched = input.dim() == 2;
  const int64_t N = batched ? input.size(0) : 1;
  if (w_ih.shape() != Shape{3 * H, I}) {
    if (w_ih.dim() == 2 && w_ih.size(0) == 3 * H)
      throw ShapeError("gru_cell: input has size " + str(I) + " in its last dim (shape " + shape_str(input.shape()) +
                       "), but w_ih is " + shape_str(w_ih.shape()) + ": expected input_size " + str(w_ih.size(1)));
    throw ShapeError("gru_cell: w_ih must be [3*H, I] = " + shape_str({3 * H, I}) + ", got " + shape_str(w_ih.shape()));
  }
  if (b_ih.defined() != b_hh.defined()) throw ValueError("gru_cell: give both biases or neither");
  for (const Tensor* b : {&b_ih, &b_hh})
    if (b->defined() && b->shape() != Shape{3 * H})
      throw ShapeError("gru_cell: biases must be [3*H] = [" + str(3 * H) + "], got " + shape_str(b->shape()));
  const Shape h_shape = batched ? Shape{N, H} : Shape{H};
  if (hx.defined() && hx.shape() != h_shape)
    throw ShapeError("gru_cell: hx must be " + shape_str(h_shape) + " for input " + shape_str(input.shape()) +
                     ", got " + shape_str(hx.shape()));
  const std::vector<std::pair<const char*, const Tensor*>> others = {
      {"w_ih", &w_ih}, {"w_hh", &w_hh}, {"b_ih", &b_ih}, {"b_hh", &b_hh}, {"hx", &hx}};
  for (const auto& [name, t] : others)
    if (t->defined()) {
      if (t->dtype() != input.dtype())
        throw DTypeError(std::string("gru_cell: ") + name + " is " + dtype_name(t->dtype()) +
                         ", expected the input's dtype " + dtype_name(input.dtype()));
      if (t->device() != input.device())
        throw DeviceError(std::string("gru_cell: ") + name + " is on " + t->device().str() + ", the input on " +
                          input.device().str());
    }
  const Tensor x2 = batched ? input : unsqueeze(input, 0);
  const Tensor h2 = !hx.defined() ? zeros({N, H}, TensorOptions(input.dtype()).with_device(input.device()))
                    : batched     ? hx
                                  : unsqueeze(hx, 0);
  const Tensor h = detail::gru_cell_step(x2, h2, w_ih, w_hh, b_ih, b_hh);
  return batched ? h : squeeze(h, 0);
}

}  // namespace graft
