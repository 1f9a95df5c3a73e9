// Tensor's [autograd] methods (declared in tensor/tensor.h): thin forwards to the free functions.
#include "autograd/engine.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "tensor/ops.h"

namespace graft {

void Tensor::backward(const Tensor& gradient, bool retain_graph) const { autograd::backward(*this, gradient, retain_graph); }

Tensor Tensor::detach() const { return autograd::saved(*this); }

void Tensor::register_hook(TensorHook hook) const {
  if (!requires_grad()) throw AutogradError("register_hook: tensor does not require grad");
  if (grad_fn()) grad_fn()->pre_hooks.push_back(std::move(hook));
  else impl()->hooks.push_back(std::move(hook));
}

Tensor Tensor::reshape(const Shape& shape) const { return graft::reshape(*this, shape); }
Tensor Tensor::view(const Shape& shape) const { return graft::view(*this, shape); }
Tensor Tensor::permute(const std::vector<int64_t>& dims) const { return graft::permute(*this, dims); }
Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const { return graft::transpose(*this, dim0, dim1); }
Tensor Tensor::t() const {
  if (dim() != 2) throw ShapeError("t: expects a 2-D tensor, got shape " + shape_str(shape()));
  return graft::transpose(*this, 0, 1);
}
Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const { return graft::narrow(*this, dim, start, length); }
Tensor Tensor::slice(int64_t dim, int64_t start, int64_t end, int64_t step) const {
  return graft::slice(*this, dim, start, end, step);
}
Tensor Tensor::select(int64_t dim, int64_t index) const { return graft::select(*this, dim, index); }
Tensor Tensor::expand(const Shape& shape) const { return graft::expand(*this, shape); }
Tensor Tensor::squeeze() const {
  Tensor out = *this;
  for (int64_t d = dim() - 1; d >= 0; --d)
    if (shape()[static_cast<size_t>(d)] == 1) out = graft::squeeze(out, d);
  return out;
}
Tensor Tensor::squeeze(int64_t dim) const { return graft::squeeze(*this, dim); }
Tensor Tensor::unsqueeze(int64_t dim) const { return graft::unsqueeze(*this, dim); }
Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const { return graft::flatten(*this, start_dim, end_dim); }
Tensor Tensor::contiguous() const { return graft::contiguous(*this); }
Tensor Tensor::clone() const { return graft::clone(*this); }

Tensor Tensor::to(DType dtype) const {
  if (dtype == this->dtype()) return *this;
  const DType from = this->dtype();
  return autograd::record("to", ops::cast(*this, dtype), {*this}, [from](const Tensor& g) {
    return std::vector<Tensor>{ops::cast(g, from)};
  });
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  const Device from = this->device();
  return autograd::record("to", ops::to_device(*this, device), {*this}, [from](const Tensor& g) {
    return std::vector<Tensor>{ops::to_device(g, from)};
  });
}

Tensor Tensor::sum() const { return graft::sum(*this); }
Tensor Tensor::sum(const std::vector<int64_t>& dims, bool keepdim) const { return graft::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return graft::mean(*this); }
Tensor Tensor::mean(const std::vector<int64_t>& dims, bool keepdim) const { return graft::mean(*this, dims, keepdim); }

}  // namespace graft
