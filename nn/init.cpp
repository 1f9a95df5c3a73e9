#include "nn/init.h"

#include <cmath>
#include <vector>

#include "autograd/grad_mode.h"
#include "tensor/factory.h"
#include "tensor/ops.h"

namespace graft::nn::init {

namespace {

void check_defined(const Tensor& tensor, const char* op) {
  if (!tensor.defined()) throw ValueError(std::string("nn::init::") + op + ": tensor is undefined");
  if (!is_floating(tensor.dtype())) {
    throw DTypeError(std::string("nn::init::") + op + ": needs a floating tensor, got " + dtype_name(tensor.dtype()));
  }
}

// Writes `values` (drawn in f64 on the CPU) into the tensor, whatever its dtype, device or strides.
void assign(Tensor& tensor, const Tensor& values) {
  NoGradGuard no_grad;
  ops::copy_into(tensor, values);
}

}  // namespace

double calculate_gain(Nonlinearity nonlinearity, double param) {
  switch (nonlinearity) {
    case Nonlinearity::linear:
    case Nonlinearity::sigmoid: return 1.0;
    case Nonlinearity::tanh: return 5.0 / 3.0;
    case Nonlinearity::relu: return std::sqrt(2.0);
    case Nonlinearity::leaky_relu: return std::sqrt(2.0 / (1.0 + param * param));
    case Nonlinearity::selu: return 3.0 / 4.0;
  }
  return 1.0;
}

std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& tensor) {
  if (tensor.dim() < 2) {
    throw ValueError("nn::init: fan in and fan out need at least 2 dims, got shape " + shape_str(tensor.shape()));
  }
  int64_t receptive = 1;
  for (int64_t d = 2; d < tensor.dim(); ++d) receptive *= tensor.size(d);
  return {tensor.size(1) * receptive, tensor.size(0) * receptive};
}

Tensor& constant_(Tensor& tensor, double value) {
  check_defined(tensor, "constant_");
  NoGradGuard no_grad;
  ops::fill(tensor, value);
  return tensor;
}

Tensor& zeros_(Tensor& tensor) { return constant_(tensor, 0.0); }
Tensor& ones_(Tensor& tensor) { return constant_(tensor, 1.0); }

Tensor& uniform_(Tensor& tensor, double low, double high, Generator* generator) {
  check_defined(tensor, "uniform_");
  assign(tensor, uniform(tensor.shape(), low, high, DType::f64, generator));
  return tensor;
}

Tensor& normal_(Tensor& tensor, double mean, double std, Generator* generator) {
  check_defined(tensor, "normal_");
  if (!(std >= 0.0)) throw ValueError("nn::init::normal_: std must be >= 0, got " + std::to_string(std));
  assign(tensor, normal(tensor.shape(), mean, std, DType::f64, generator));
  return tensor;
}

Tensor& trunc_normal_(Tensor& tensor, double mean, double std, double low, double high, Generator* generator) {
  check_defined(tensor, "trunc_normal_");
  if (!(low < high)) throw ValueError("nn::init::trunc_normal_: needs low < high");
  // Rejection sampling in batches: each pass redraws only the values that fell outside.
  const int64_t n = tensor.numel();
  std::vector<double> values(static_cast<size_t>(n));
  std::vector<int64_t> pending(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pending[static_cast<size_t>(i)] = i;
  for (int round = 0; !pending.empty(); ++round) {
    if (round == 1000) throw ValueError("nn::init::trunc_normal_: [low, high] holds almost no probability mass");
    auto draws = normal({static_cast<int64_t>(pending.size())}, mean, std, DType::f64, generator).to_vector<double>();
    std::vector<int64_t> still;
    for (size_t i = 0; i < pending.size(); ++i) {
      if (draws[i] >= low && draws[i] <= high) values[static_cast<size_t>(pending[i])] = draws[i];
      else still.push_back(pending[i]);
    }
    pending.swap(still);
  }
  assign(tensor, from_vector<double>(values, tensor.shape()));
  return tensor;
}

Tensor& xavier_uniform_(Tensor& tensor, double gain, Generator* generator) {
  auto [fan_in, fan_out] = fan_in_and_fan_out(tensor);
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return uniform_(tensor, -bound, bound, generator);
}

Tensor& xavier_normal_(Tensor& tensor, double gain, Generator* generator) {
  auto [fan_in, fan_out] = fan_in_and_fan_out(tensor);
  return normal_(tensor, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)), generator);
}

static double kaiming_std(const Tensor& tensor, double a, FanMode mode, Nonlinearity nonlinearity) {
  auto [fan_in, fan_out] = fan_in_and_fan_out(tensor);
  const int64_t fan = mode == FanMode::fan_in ? fan_in : fan_out;
  if (fan == 0) throw ValueError("nn::init: kaiming init of an empty tensor " + shape_str(tensor.shape()));
  return calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
}

Tensor& kaiming_uniform_(Tensor& tensor, double a, FanMode mode, Nonlinearity nonlinearity, Generator* generator) {
  const double bound = std::sqrt(3.0) * kaiming_std(tensor, a, mode, nonlinearity);
  return uniform_(tensor, -bound, bound, generator);
}

Tensor& kaiming_normal_(Tensor& tensor, double a, FanMode mode, Nonlinearity nonlinearity, Generator* generator) {
  return normal_(tensor, 0.0, kaiming_std(tensor, a, mode, nonlinearity), generator);
}

Tensor& orthogonal_(Tensor& tensor, double gain, Generator* generator) {
  check_defined(tensor, "orthogonal_");
  if (tensor.dim() < 2) throw ValueError("nn::init::orthogonal_: needs at least 2 dims, got " + shape_str(tensor.shape()));
  const int64_t rows = tensor.size(0), cols = tensor.numel() / std::max<int64_t>(rows, 1);
  // QR of the tall orientation (m >= n) by modified Gram-Schmidt on columns, in f64.
  const bool transposed = rows < cols;
  const int64_t m = transposed ? cols : rows, n = transposed ? rows : cols;
  auto a = normal({rows, cols}, 0.0, 1.0, DType::f64, generator).to_vector<double>();
  auto at = [&](int64_t i, int64_t j) -> double& {  // element (i, j) of the m x n tall matrix
    return transposed ? a[static_cast<size_t>(j * cols + i)] : a[static_cast<size_t>(i * cols + j)];
  };
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t k = 0; k < j; ++k) {
      double dot = 0;
      for (int64_t i = 0; i < m; ++i) dot += at(i, k) * at(i, j);
      for (int64_t i = 0; i < m; ++i) at(i, j) -= dot * at(i, k);
    }
    double norm = 0;
    for (int64_t i = 0; i < m; ++i) norm += at(i, j) * at(i, j);
    norm = std::sqrt(norm);
    if (norm == 0) throw NumericError("nn::init::orthogonal_: degenerate draw");
    // MGS gives R's diagonal = norm > 0, so Q already has torch's sign convention (Q * sign(diag R)).
    for (int64_t i = 0; i < m; ++i) at(i, j) /= norm;
  }
  for (double& value : a) value *= gain;  // after the loop: later columns project on unit vectors
  assign(tensor, from_vector<double>(a, tensor.shape()));
  return tensor;
}

}  // namespace graft::nn::init
