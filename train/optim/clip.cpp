#include "train/optim/clip.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "autograd/grad_mode.h"
#include "train/optim/optimizer.h"

#if GRAFT_WITH_CUDA
#include "kernels/optim/adam.h"
#endif

namespace graft::optim {

namespace {

// The grads that exist, checked to be f32/f64 and all on one device (the CPU or one GPU).
std::vector<Tensor> collect_grads(const std::vector<Tensor>& params, const char* op) {
  std::vector<Tensor> grads;
  std::size_t first = 0;  // the parameter of grads[0], for the device error
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!params[i].defined()) throw ValueError(std::string(op) + ": parameter " + std::to_string(i) + " is undefined");
    Tensor g = params[i].grad();
    if (!g.defined()) continue;
    if (g.dtype() != DType::f32 && g.dtype() != DType::f64)
      throw DTypeError(std::string(op) + ": grad of parameter " + std::to_string(i) + " has dtype " +
                       dtype_name(g.dtype()) + "; expected f32 or f64");
    if (grads.empty()) first = i;
    else if (g.device() != grads.front().device())
      throw DeviceError(std::string(op) + ": the grad of parameter " + std::to_string(first) + " is on " +
                        grads.front().device().str() + " but that of parameter " + std::to_string(i) + " is on " +
                        g.device().str() + "; clip each device's parameters in a call of its own");
    grads.push_back(g);
  }
  return grads;
}

// Sum of |x|^p (or max |x| when p is infinite) over a contiguous buffer, in f64.
template <class T>
double norm_part(const T* x, int64_t n, double p) {
  double acc = 0.0;
  if (std::isinf(p)) {
    for (int64_t k = 0; k < n; ++k) {
      const double a = std::abs(static_cast<double>(x[k]));
      if (std::isnan(a)) return a;
      acc = std::max(acc, a);
    }
  } else if (p == 2.0) {
#pragma omp parallel for simd reduction(+ : acc) if (n > kParallelUpdateAbove)
    for (int64_t k = 0; k < n; ++k) acc += static_cast<double>(x[k]) * static_cast<double>(x[k]);
  } else if (p == 1.0) {
#pragma omp parallel for simd reduction(+ : acc) if (n > kParallelUpdateAbove)
    for (int64_t k = 0; k < n; ++k) acc += std::abs(static_cast<double>(x[k]));
  } else {
    for (int64_t k = 0; k < n; ++k) acc += std::pow(std::abs(static_cast<double>(x[k])), p);
  }
  return acc;
}

template <class T, class F>
void transform_grad(const Tensor& param, F f) {
  Tensor g = param.grad();
  const bool in_place = g.is_contiguous();
  Tensor target = in_place ? g : g.contiguous();
  T* x = target.data_ptr<T>();
  const int64_t n = target.numel();
#pragma omp parallel for simd if (n > kParallelUpdateAbove)
  for (int64_t k = 0; k < n; ++k) x[k] = f(x[k]);
  if (!in_place) param.set_grad(target);
}

// Sum over the grads of |x|^p, or max |x| for the inf-norm (NaN when any part is NaN), on the CPU.
double accumulate_norm_cpu(const std::vector<Tensor>& grads, double norm_type) {
  const bool inf_norm = std::isinf(norm_type);
  double acc = 0.0;
  for (const Tensor& g0 : grads) {
    const Tensor g = g0.is_contiguous() ? g0 : g0.contiguous();
    const double part = g.dtype() == DType::f64 ? norm_part(g.data_ptr<double>(), g.numel(), norm_type)
                                                : norm_part(g.data_ptr<float>(), g.numel(), norm_type);
    acc = inf_norm ? (std::isnan(part) || std::isnan(acc) ? std::numeric_limits<double>::quiet_NaN() : std::max(acc, part))
                   : acc + part;
  }
  return acc;
}

#if GRAFT_WITH_CUDA
kernels::optim::GradBuffer grad_buffer(const Tensor& contiguous_grad) {
  return {contiguous_grad.data_ptr(), contiguous_grad.numel(), contiguous_grad.dtype() == DType::f64};
}

// accumulate_norm_cpu for grads on one GPU: the same sum, in a fixed order (kernels/optim).
double accumulate_norm_cuda(const std::vector<Tensor>& grads, double norm_type) {
  std::vector<Tensor> contiguous;  // keeps the copies of non-contiguous grads alive
  std::vector<kernels::optim::GradBuffer> buffers;
  for (const Tensor& g : grads) {
    contiguous.push_back(g.is_contiguous() ? g : g.contiguous());
    buffers.push_back(grad_buffer(contiguous.back()));
  }
  return kernels::optim::grad_norm_accumulate_cuda(buffers.data(), static_cast<int64_t>(buffers.size()), norm_type,
                                                   grads.front().device().index);
}

// transform_grad for every param with a grad, all on one GPU, in one multi-tensor launch:
// launch(buffers, count, device). A non-contiguous grad is replaced by its transformed copy.
template <class Launch>
void transform_grads_cuda(const std::vector<Tensor>& params, int device, Launch launch) {
  std::vector<Tensor> targets;
  std::vector<std::size_t> owners;  // the param of each target
  std::vector<kernels::optim::GradBuffer> buffers;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Tensor g = params[i].grad();
    if (!g.defined()) continue;
    targets.push_back(g.is_contiguous() ? g : g.contiguous());
    owners.push_back(i);
    buffers.push_back(grad_buffer(targets.back()));
  }
  launch(buffers.data(), static_cast<int64_t>(buffers.size()), device);
  for (std::size_t k = 0; k < targets.size(); ++k)
    if (!targets[k].is_same(params[owners[k]].grad())) params[owners[k]].set_grad(targets[k]);
}
#endif

}  // namespace

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  if (std::isnan(max_norm) || max_norm < 0.0)
    throw ValueError("clip_grad_norm: max_norm must be >= 0, got " + std::to_string(max_norm));
  if (std::isnan(norm_type) || norm_type <= 0.0)
    throw ValueError("clip_grad_norm: norm_type must be > 0 or infinity, got " + std::to_string(norm_type));
  NoGradGuard no_grad;
  const std::vector<Tensor> grads = collect_grads(params, "clip_grad_norm");
  if (grads.empty()) return 0.0;
  const bool inf_norm = std::isinf(norm_type);
#if GRAFT_WITH_CUDA
  const bool on_gpu = grads.front().device().is_cuda();
  const double acc = on_gpu ? accumulate_norm_cuda(grads, norm_type) : accumulate_norm_cpu(grads, norm_type);
#else
  const double acc = accumulate_norm_cpu(grads, norm_type);
#endif
  const double total = inf_norm ? acc : (norm_type == 2.0 ? std::sqrt(acc) : std::pow(acc, 1.0 / norm_type));
  if (error_if_nonfinite && !std::isfinite(total))
    throw NumericError("clip_grad_norm: the total " + std::to_string(norm_type) + "-norm of the gradients is " +
                       std::to_string(total) + "; pass error_if_nonfinite = false to clip anyway");
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
#if GRAFT_WITH_CUDA
    if (on_gpu) {
      transform_grads_cuda(params, grads.front().device().index, [coef](const auto* buffers, int64_t count, int device) {
        kernels::optim::grad_scale_cuda(buffers, count, coef, device);
      });
      return total;
    }
#endif
    for (const Tensor& p : params) {
      if (!p.grad().defined()) continue;
      if (p.grad().dtype() == DType::f64)
        transform_grad<double>(p, [coef](double x) { return x * coef; });
      else
        transform_grad<float>(p, [c = static_cast<float>(coef)](float x) { return x * c; });
    }
  }
  return total;
}

void clip_grad_value(const std::vector<Tensor>& params, double clip_value) {
  if (!std::isfinite(clip_value) || clip_value < 0.0)
    throw ValueError("clip_grad_value: clip_value must be finite and >= 0, got " + std::to_string(clip_value));
  NoGradGuard no_grad;
  const std::vector<Tensor> grads = collect_grads(params, "clip_grad_value");  // validates before anything changes
#if GRAFT_WITH_CUDA
  if (!grads.empty() && grads.front().device().is_cuda()) {
    transform_grads_cuda(params, grads.front().device().index, [clip_value](const auto* buffers, int64_t count, int device) {
      kernels::optim::grad_clamp_cuda(buffers, count, clip_value, device);
    });
    return;
  }
#endif
  for (const Tensor& p : params) {
    if (!p.grad().defined()) continue;
    if (p.grad().dtype() == DType::f64)
      transform_grad<double>(p, [c = clip_value](double x) { return std::clamp(x, -c, c); });
    else
      transform_grad<float>(p, [c = static_cast<float>(clip_value)](float x) { return std::clamp(x, -c, c); });
  }
}

bool grads_are_finite(const std::vector<Tensor>& params) {
  const std::vector<Tensor> grads = collect_grads(params, "grads_are_finite");
#if GRAFT_WITH_CUDA
  // max |x| over all grads is finite exactly when every element is (an Inf gives Inf, a NaN NaN).
  if (!grads.empty() && grads.front().device().is_cuda())
    return std::isfinite(accumulate_norm_cuda(grads, std::numeric_limits<double>::infinity()));
#endif
  for (const Tensor& g0 : grads) {
    const Tensor g = g0.is_contiguous() ? g0 : g0.contiguous();
    const int64_t n = g.numel();
    int bad = 0;
    if (g.dtype() == DType::f64) {
      const double* x = g.data_ptr<double>();
#pragma omp simd reduction(| : bad)
      for (int64_t k = 0; k < n; ++k) bad |= !std::isfinite(x[k]);
    } else {
      const float* x = g.data_ptr<float>();
#pragma omp simd reduction(| : bad)
      for (int64_t k = 0; k < n; ++k) bad |= !std::isfinite(x[k]);
    }
    if (bad) return false;
  }
  return true;
}

}  // namespace graft::optim
