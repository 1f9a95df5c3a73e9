#include "train/optim/adam.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "tensor/factory.h"

#if GRAFT_WITH_CUDA
#include <map>

#include "kernels/optim/adam.h"
#endif

namespace graft::optim {

namespace {

struct AdamCoefficients {
  double decay_factor;  // AdamW: 1 - lr * weight_decay; 1 otherwise
  double weight_decay;  // Adam's coupled L2; 0 for AdamW
  double l1, beta1, beta2, step_size, bias_correction2_sqrt, eps;
};

// One parameter's update over n contiguous elements; v_max is null without amsgrad. Scalars are
// rounded to T first and the operations follow torch's order, so f64 matches to rounding. The loop
// has no branches, so it vectorises: options that are off are exact no-ops (p * 1, d + 0 * p,
// d + 0 * sign(p)); only amsgrad is a template argument, since a null v_max must not be read.
template <class T, bool kAmsgrad>
void adam_update(T* __restrict p, const T* __restrict grad, T* __restrict m, T* __restrict v, T* __restrict v_max,
                 int64_t n, const AdamCoefficients& c) {
  const T decay = static_cast<T>(c.decay_factor), wd = static_cast<T>(c.weight_decay), l1 = static_cast<T>(c.l1);
  const T beta1 = static_cast<T>(c.beta1), one_minus_beta1 = static_cast<T>(1.0 - c.beta1);
  const T beta2 = static_cast<T>(c.beta2), one_minus_beta2 = static_cast<T>(1.0 - c.beta2);
  const T step_size = static_cast<T>(c.step_size), bc2_sqrt = static_cast<T>(c.bias_correction2_sqrt);
  const T eps = static_cast<T>(c.eps);
#pragma omp parallel for simd if (n > kParallelUpdateAbove)
  for (int64_t k = 0; k < n; ++k) {
    const T original = p[k];
    T d = grad[k] + l1 * static_cast<T>((original > T(0)) - (original < T(0)));
    const T param = original * decay;
    d = d + wd * param;
    const T mk = m[k] * beta1 + one_minus_beta1 * d;
    const T vk = v[k] * beta2 + one_minus_beta2 * d * d;
    m[k] = mk;
    v[k] = vk;
    T second = vk;
    if constexpr (kAmsgrad) {
      second = v_max[k] > vk ? v_max[k] : vk;
      v_max[k] = second;
    }
    const T denom = std::sqrt(second) / bc2_sqrt + eps;
    p[k] = param - step_size * (mk / denom);
  }
}

template <class T>
void adam_update(T* p, const T* grad, T* m, T* v, T* v_max, int64_t n, const AdamCoefficients& c) {
  if (v_max) adam_update<T, true>(p, grad, m, v, v_max, n, c);
  else adam_update<T, false>(p, grad, m, v, v_max, n, c);
}

#if GRAFT_WITH_CUDA
// A group's CUDA parameters, gathered during the step and updated by one multi-tensor launch per
// (device, dtype) at its end (kernels/optim: the same formulas in the same order).
class CudaAdamBatch {
 public:
  void add(const Tensor& p, const Tensor& grad, const Tensor& m, const Tensor& v, const Tensor& v_max,
           const AdamCoefficients& c) {
    PerDevice& lists = devices_[p.device().index];
    if (p.dtype() == DType::f64) lists.f64.push_back(entry<double>(p, grad, m, v, v_max, c));
    else lists.f32.push_back(entry<float>(p, grad, m, v, v_max, c));
  }

  void launch(const ParamGroup& group, bool decoupled) const {
    const kernels::optim::AdamHyper hyper{decoupled ? 1.0 - group.lr * group.weight_decay : 1.0,
                                          decoupled ? 0.0 : group.weight_decay,
                                          group.l1,
                                          group.beta1,
                                          group.beta2,
                                          group.eps,
                                          group.amsgrad};
    for (const auto& [device, lists] : devices_) {
      kernels::optim::adam_multi_tensor_cuda(lists.f32.data(), static_cast<int64_t>(lists.f32.size()), hyper, device);
      kernels::optim::adam_multi_tensor_cuda(lists.f64.data(), static_cast<int64_t>(lists.f64.size()), hyper, device);
    }
  }

 private:
  struct PerDevice {
    std::vector<kernels::optim::AdamTensor<float>> f32;
    std::vector<kernels::optim::AdamTensor<double>> f64;
  };

  // data_ptr<T>() is for CPU tensors; the device pointers are the untyped data_ptr().
  template <class T>
  static kernels::optim::AdamTensor<T> entry(const Tensor& p, const Tensor& grad, const Tensor& m, const Tensor& v,
                                             const Tensor& v_max, const AdamCoefficients& c) {
    return {static_cast<T*>(p.data_ptr()),
            static_cast<const T*>(grad.data_ptr()),
            static_cast<T*>(m.data_ptr()),
            static_cast<T*>(v.data_ptr()),
            v_max.defined() ? static_cast<T*>(v_max.data_ptr()) : nullptr,
            p.numel(),
            c.step_size,
            c.bias_correction2_sqrt};
  }

  std::map<int, PerDevice> devices_;  // ordered, so launches go in device order
};
#endif

}  // namespace

namespace detail {

void AdamCore::add_single_group(std::vector<Tensor> params, const AdamOptions& options) {
  ParamGroup group;
  group.name = "default";
  group.params = std::move(params);
  group.lr = options.lr;
  group.beta1 = options.beta1;
  group.beta2 = options.beta2;
  group.eps = options.eps;
  group.weight_decay = options.weight_decay;
  group.l1 = options.l1;
  group.amsgrad = options.amsgrad;
  add_param_group(std::move(group));
}

void AdamCore::validate_group(const ParamGroup& group) const {
  Optimizer::validate_group(group);
  const std::string where = name() + " group '" + group.name + "': ";
  if (!std::isfinite(group.eps) || group.eps < 0.0)
    throw ValueError(where + "eps must be finite and >= 0, got " + std::to_string(group.eps));
  if (!(group.beta1 >= 0.0 && group.beta1 < 1.0))
    throw ValueError(where + "beta1 must be in [0, 1), got " + std::to_string(group.beta1));
  if (!(group.beta2 >= 0.0 && group.beta2 < 1.0))
    throw ValueError(where + "beta2 must be in [0, 1), got " + std::to_string(group.beta2));
}

std::vector<std::string> AdamCore::required_buffers(const ParamGroup& group, int64_t step) const {
  if (step == 0) return {};
  if (group.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

void AdamCore::step() {
  NoGradGuard no_grad;
  begin_step();
  auto& groups = param_groups();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const ParamGroup& group = groups[g];
    // All grads are checked before any parameter of the group changes (a CUDA parameter's state
    // advances when it is gathered, before the launch at the group's end).
    std::vector<Tensor> grads;
    for (std::size_t i = 0; i < group.params.size(); ++i) grads.push_back(checked_grad(g, i));
#if GRAFT_WITH_CUDA
    CudaAdamBatch cuda_batch;
#endif
    for (std::size_t i = 0; i < group.params.size(); ++i) {
      const Tensor& grad = grads[i];
      if (!grad.defined()) continue;  // frozen or unused: no update, no state change
      const Tensor& p = group.params[i];
      ParamState& state = param_state(g, i);
      auto buffer = [&](const char* key) -> Tensor& {
        Tensor& t = state.buffers[key];
        if (!t.defined()) t = zeros(p.shape(), TensorOptions(p.dtype()).with_device(p.device()));
        else if (t.device() != p.device()) t = t.to(p.device());  // the model moved since the last step
        return t;
      };
      Tensor& m = buffer("exp_avg");
      Tensor& v = buffer("exp_avg_sq");
      Tensor v_max = group.amsgrad ? buffer("max_exp_avg_sq") : Tensor();
      const auto t = static_cast<double>(state.step + 1);
      const double bias_correction1 = 1.0 - std::pow(group.beta1, t);
      const double bias_correction2 = 1.0 - std::pow(group.beta2, t);
      const AdamCoefficients c{decoupled_ ? 1.0 - group.lr * group.weight_decay : 1.0,
                               decoupled_ ? 0.0 : group.weight_decay,
                               group.l1,
                               group.beta1,
                               group.beta2,
                               group.lr / bias_correction1,
                               std::sqrt(bias_correction2),
                               group.eps};
#if GRAFT_WITH_CUDA
      if (p.device().is_cuda()) {
        cuda_batch.add(p, grad, m, v, v_max, c);
        ++state.step;
        continue;
      }
#endif
      if (p.dtype() == DType::f64)
        adam_update<double>(p.data_ptr<double>(), grad.data_ptr<double>(), m.data_ptr<double>(), v.data_ptr<double>(),
                            v_max.defined() ? v_max.data_ptr<double>() : nullptr, p.numel(), c);
      else
        adam_update<float>(p.data_ptr<float>(), grad.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(),
                           v_max.defined() ? v_max.data_ptr<float>() : nullptr, p.numel(), c);
      ++state.step;
    }
#if GRAFT_WITH_CUDA
    cuda_batch.launch(group, decoupled_);
#endif
  }
}

}  // namespace detail

Adam::Adam(std::vector<ParamGroup> groups) : AdamCore(false) { add_param_groups(std::move(groups)); }
Adam::Adam(std::vector<Tensor> params, const AdamOptions& options) : AdamCore(false) {
  add_single_group(std::move(params), options);
}

AdamW::AdamW(std::vector<ParamGroup> groups) : AdamCore(true) { add_param_groups(std::move(groups)); }
AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& options) : AdamCore(true) {
  add_single_group(std::move(params), options);
}

}  // namespace graft::optim
