#include "train/optim/sgd.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "tensor/factory.h"

#if GRAFT_WITH_CUDA
#include <map>

#include "kernels/optim/adam.h"
#endif

namespace graft::optim {

namespace {

struct SGDCoefficients {
  double lr, weight_decay, l1, momentum, dampening;
  bool nesterov, fresh_buffer;  // fresh: the buffer takes d as it is (torch's first update)
};

// One parameter's update over n contiguous elements; buf is null when momentum == 0. Scalars are
// rounded to T first, as torch's kernels do with Python numbers. The loop has no branches, so it
// vectorises: options that are off become exact no-ops (d + 0 * p == d; a fresh buffer, all
// zeros, gives b = 0 * 0 + 1 * d == d; Nesterov's choice is a pair of 0/1 weights). Only the
// buffer's presence is a template argument, since a null buffer must not be read.
template <class T, bool kMomentum>
void sgd_update(T* __restrict p, const T* __restrict grad, T* __restrict buf, int64_t n, const SGDCoefficients& c) {
  const T lr = static_cast<T>(c.lr), wd = static_cast<T>(c.weight_decay), l1 = static_cast<T>(c.l1);
  const T momentum = static_cast<T>(c.momentum);
  const T carry = c.fresh_buffer ? T(0) : momentum;                          // weight of the old buffer
  const T keep = c.fresh_buffer ? T(1) : static_cast<T>(1.0 - c.dampening);  // weight of the new gradient
  // Nesterov: d + momentum * b; plain: b. As weights: d * d_weight + (b * look_ahead + b * b_weight).
  const T d_weight = c.nesterov ? T(1) : T(0), look_ahead = c.nesterov ? momentum : T(0);
  const T b_weight = c.nesterov ? T(0) : T(1);
#pragma omp parallel for simd if (n > kParallelUpdateAbove)
  for (int64_t k = 0; k < n; ++k) {
    const T param = p[k];
    T d = grad[k] + l1 * static_cast<T>((param > T(0)) - (param < T(0)));
    d = d + wd * param;
    if constexpr (kMomentum) {
      const T b = buf[k] * carry + keep * d;
      buf[k] = b;
      d = d * d_weight + (look_ahead * b + b_weight * b);
    }
    p[k] = param - lr * d;
  }
}

template <class T>
void sgd_update(T* p, const T* grad, T* buf, int64_t n, const SGDCoefficients& c) {
  if (buf) sgd_update<T, true>(p, grad, buf, n, c);
  else sgd_update<T, false>(p, grad, buf, n, c);
}

#if GRAFT_WITH_CUDA
// A group's CUDA parameters, gathered during the step and updated by one multi-tensor launch per
// (device, dtype) at its end (kernels/optim: the same formulas in the same order).
class CudaSgdBatch {
 public:
  void add(const Tensor& p, const Tensor& grad, const Tensor& buf, bool fresh_buffer) {
    PerDevice& lists = devices_[p.device().index];
    if (p.dtype() == DType::f64) lists.f64.push_back(entry<double>(p, grad, buf, fresh_buffer));
    else lists.f32.push_back(entry<float>(p, grad, buf, fresh_buffer));
  }

  void launch(const ParamGroup& group) const {
    const kernels::optim::SgdHyper hyper{group.lr, group.weight_decay, group.l1, group.momentum, group.dampening,
                                         group.nesterov};
    for (const auto& [device, lists] : devices_) {
      kernels::optim::sgd_multi_tensor_cuda(lists.f32.data(), static_cast<int64_t>(lists.f32.size()), hyper, device);
      kernels::optim::sgd_multi_tensor_cuda(lists.f64.data(), static_cast<int64_t>(lists.f64.size()), hyper, device);
    }
  }

 private:
  struct PerDevice {
    std::vector<kernels::optim::SgdTensor<float>> f32;
    std::vector<kernels::optim::SgdTensor<double>> f64;
  };

  // data_ptr<T>() is for CPU tensors; the device pointers are the untyped data_ptr().
  template <class T>
  static kernels::optim::SgdTensor<T> entry(const Tensor& p, const Tensor& grad, const Tensor& buf, bool fresh_buffer) {
    return {static_cast<T*>(p.data_ptr()), static_cast<const T*>(grad.data_ptr()),
            buf.defined() ? static_cast<T*>(buf.data_ptr()) : nullptr, p.numel(), fresh_buffer};
  }

  std::map<int, PerDevice> devices_;  // ordered, so launches go in device order
};
#endif

}  // namespace

SGD::SGD(std::vector<ParamGroup> groups) { add_param_groups(std::move(groups)); }

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options) {
  ParamGroup group;
  group.name = "default";
  group.params = std::move(params);
  group.lr = options.lr;
  group.momentum = options.momentum;
  group.dampening = options.dampening;
  group.nesterov = options.nesterov;
  group.weight_decay = options.weight_decay;
  group.l1 = options.l1;
  add_param_group(std::move(group));
}

void SGD::validate_group(const ParamGroup& group) const {
  Optimizer::validate_group(group);
  if (!std::isfinite(group.momentum) || group.momentum < 0.0)
    throw ValueError("SGD group '" + group.name + "': momentum must be finite and >= 0, got " +
                     std::to_string(group.momentum));
  if (!std::isfinite(group.dampening))
    throw ValueError("SGD group '" + group.name + "': dampening must be finite");
  if (group.nesterov && (group.momentum <= 0.0 || group.dampening != 0.0))
    throw ValueError("SGD group '" + group.name + "': nesterov momentum needs momentum > 0 and dampening 0");
}

void SGD::step() {
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
    CudaSgdBatch cuda_batch;
#endif
    for (std::size_t i = 0; i < group.params.size(); ++i) {
      const Tensor& grad = grads[i];
      if (!grad.defined()) continue;  // frozen or unused: no update, no state change
      const Tensor& p = group.params[i];
      ParamState& state = param_state(g, i);
      SGDCoefficients c{group.lr, group.weight_decay, group.l1, group.momentum, group.dampening, group.nesterov, false};
      Tensor buf;
      if (group.momentum != 0.0) {
        auto it = state.buffers.find("momentum_buffer");
        c.fresh_buffer = it == state.buffers.end();
        buf = c.fresh_buffer ? (state.buffers["momentum_buffer"] =
                                    zeros(p.shape(), TensorOptions(p.dtype()).with_device(p.device())))
                             : (it->second.device() == p.device() ? it->second : (it->second = it->second.to(p.device())));
      }
#if GRAFT_WITH_CUDA
      if (p.device().is_cuda()) {
        cuda_batch.add(p, grad, buf, c.fresh_buffer);
        ++state.step;
        continue;
      }
#endif
      if (p.dtype() == DType::f64)
        sgd_update<double>(p.data_ptr<double>(), grad.data_ptr<double>(),
                           buf.defined() ? buf.data_ptr<double>() : nullptr, p.numel(), c);
      else
        sgd_update<float>(p.data_ptr<float>(), grad.data_ptr<float>(),
                          buf.defined() ? buf.data_ptr<float>() : nullptr, p.numel(), c);
      ++state.step;
    }
#if GRAFT_WITH_CUDA
    cuda_batch.launch(group);
#endif
  }
}

}  // namespace graft::optim
