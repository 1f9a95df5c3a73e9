// Tensor: a shared handle to (storage, shape, strides, offset, dtype) plus the autograd slot.
//
// Copying a Tensor copies the handle, not the data (as in PyTorch). Views (reshape, permute,
// narrow, expand, ...) share storage. The autograd slot (requires_grad, grad, grad_fn) lives here,
// but the graph code lives in autograd/: this header only forward-declares autograd::Node.
// Methods marked [autograd] are defined in autograd/ and record the graph when grad mode is on.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/error.h"
#include "tensor/shape.h"
#include "tensor/storage.h"

namespace graft {

namespace autograd {
class Node;
}

class Tensor;
using TensorHook = std::function<Tensor(const Tensor&)>;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::f32;

  // Autograd slot: filled by autograd/, never read by kernels.
  bool requires_grad = false;
  bool retains_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<autograd::Node> grad_fn;
  std::vector<TensorHook> hooks;  // run on the incoming gradient of a leaf, in order
};

struct TensorOptions {
  DType dtype = DType::f32;
  Device device = Device::cpu();
  bool requires_grad = false;

  TensorOptions() = default;
  TensorOptions(DType d) : dtype(d) {}  // NOLINT: implicit, so zeros({2}, DType::f64) reads well
  TensorOptions(Device d) : device(d) {}  // NOLINT
  TensorOptions with_dtype(DType d) const { auto o = *this; o.dtype = d; return o; }
  TensorOptions with_device(Device d) const { auto o = *this; o.device = d; return o; }
  TensorOptions with_requires_grad(bool r = true) const { auto o = *this; o.requires_grad = r; return o; }
};

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

  // --- metadata ---
  const Shape& shape() const { return checked().shape; }
  const Shape& strides() const { return checked().strides; }
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return static_cast<int64_t>(checked().shape.size()); }
  int64_t numel() const { return shape_numel(checked().shape); }
  int64_t offset() const { return checked().offset; }
  DType dtype() const { return checked().dtype; }
  Device device() const { return checked().storage->device(); }
  bool is_contiguous() const;
  std::size_t element_size() const { return dtype_size(dtype()); }

  // --- data access (CPU) ---
  void* data_ptr() const;  // start of this view's elements
  template <class T> T* data_ptr() const {
    check_dtype_for_access(dtype_of_v<T>);
    return static_cast<T*>(data_ptr());
  }
  double item() const;  // the single element as double; throws unless numel() == 1
  template <class T> T item() const { return static_cast<T>(item()); }
  // All elements in row-major order, converted to T (copies from the device if needed).
  template <class T> std::vector<T> to_vector() const;

  // --- autograd slot ---
  bool requires_grad() const { return checked().requires_grad; }
  // Marks a leaf as requiring grad; throws for non-leaves and non-floating dtypes.
  Tensor& requires_grad_(bool enabled = true);
  Tensor grad() const;  // undefined until a backward reaches this tensor
  void set_grad(const Tensor& grad) const;
  bool is_leaf() const { return checked().grad_fn == nullptr; }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return checked().grad_fn; }
  void retain_grad() const;  // keep .grad on a non-leaf too

  // [autograd] graph entry points
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;  // shares storage, no graph
  // Hook on this tensor's gradient: may return a replacement gradient or an undefined Tensor.
  void register_hook(TensorHook hook) const;

  // [autograd] views and shape ops
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a copy; one dim may be -1
  Tensor view(const Shape& shape) const;     // always a view; throws when strides do not allow it
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;  // 2-D transpose
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(const Shape& shape) const;  // -1 keeps a dim
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // [autograd] a few reductions as methods, for readability of user code
  Tensor sum() const;
  Tensor sum(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const std::vector<int64_t>& dims, bool keepdim = false) const;

  // --- in-place, no graph: for initialisation and optimizer updates. They refuse a tensor that
  // requires grad while grad mode is on, since that would corrupt the graph. ---
  Tensor& copy_(const Tensor& src);  // broadcasts src, converts dtype, any devices
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }

  std::string str() const;  // readable form: values (abbreviated), shape, dtype, device

 private:
  const TensorImpl& checked() const;
  void check_dtype_for_access(DType requested) const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Makes a tensor of the given metadata over storage (used by ops and views).
Tensor make_tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides, int64_t offset, DType dtype);

extern template std::vector<float> Tensor::to_vector<float>() const;
extern template std::vector<double> Tensor::to_vector<double>() const;
extern template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
extern template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template <> std::vector<bool> Tensor::to_vector<bool>() const;

}  // namespace graft
