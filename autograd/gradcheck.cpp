#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/grad_mode.h"
#include "tensor/factory.h"
#include "tensor/ops.h"

namespace graft {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  std::vector<Tensor> xs;
  std::vector<size_t> wrt = options.wrt;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (in.defined() && is_floating(in.dtype())) {
      xs.push_back(ops::cast(in.detach(), DType::f64));
      if (options.wrt.empty()) wrt.push_back(i);
    } else {
      xs.push_back(in);
    }
  }
  for (size_t i : wrt) {
    if (i >= xs.size() || !xs[i].defined() || xs[i].dtype() != DType::f64)
      throw ValueError("gradcheck: input " + std::to_string(i) + " is not a floating-point tensor");
    xs[i].requires_grad_(true);
  }

  Tensor out = f(xs);
  if (!out.requires_grad()) return {false, "gradcheck: the output does not require grad (no differentiable path)"};
  const int64_t n_out = out.numel();

  // analytical[i][r * n_in + c]: d out[r] / d input_i[c], one backward per output element.
  std::vector<std::vector<double>> analytical(xs.size());
  for (size_t i : wrt) analytical[i].assign(static_cast<size_t>(n_out * xs[i].numel()), 0.0);
  for (int64_t r = 0; r < n_out; ++r) {
    for (size_t i : wrt) xs[i].set_grad(Tensor());
    Tensor seed = zeros(out.shape(), DType::f64);
    static_cast<double*>(seed.data_ptr())[r] = 1.0;
    out.backward(seed, /*retain_graph=*/true);
    for (size_t i : wrt) {
      Tensor g = xs[i].grad();
      if (!g.defined()) continue;  // no path from this input: a zero row
      const auto gv = g.to_vector<double>();
      std::copy(gv.begin(), gv.end(), analytical[i].begin() + r * xs[i].numel());
    }
  }

  NoGradGuard no_grad;
  for (size_t i : wrt) {
    Tensor x = xs[i];
    if (!x.is_contiguous()) throw ValueError("gradcheck: input " + std::to_string(i) + " must be contiguous");
    double* p = static_cast<double*>(x.data_ptr());
    const int64_t n_in = x.numel();
    for (int64_t c = 0; c < n_in; ++c) {
      const double orig = p[c];
      p[c] = orig + options.eps;
      const std::vector<double> plus = f(xs).to_vector<double>();
      p[c] = orig - options.eps;
      const std::vector<double> minus = f(xs).to_vector<double>();
      p[c] = orig;
      for (int64_t r = 0; r < n_out; ++r) {
        const double numerical = (plus[static_cast<size_t>(r)] - minus[static_cast<size_t>(r)]) / (2 * options.eps);
        const double a = analytical[i][static_cast<size_t>(r * n_in + c)];
        if (!(std::abs(a - numerical) <= options.atol + options.rtol * std::abs(numerical))) {
          std::ostringstream msg;
          msg.precision(10);
          msg << "gradcheck: mismatch for input " << i << " (shape " << shape_str(x.shape()) << ") element " << c
              << ", output element " << r << ": analytical " << a << " vs numerical " << numerical;
          return {false, msg.str()};
        }
      }
    }
  }
  return {};
}

}  // namespace graft
