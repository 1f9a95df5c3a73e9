#include "tensor/tensor.h"

#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>

#include "tensor/grad_mode.h"
#include "tensor/ops.h"

namespace graft {

namespace {
thread_local bool grad_mode_enabled = true;
}
bool GradMode::is_enabled() { return grad_mode_enabled; }
void GradMode::set_enabled(bool enabled) { grad_mode_enabled = enabled; }

Tensor make_tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides, int64_t offset, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

const TensorImpl& Tensor::checked() const {
  if (!impl_) throw ValueError("use of an undefined Tensor (default-constructed, or a gradient not yet computed)");
  return *impl_;
}

int64_t Tensor::size(int64_t dim) const { return shape()[normalize_dim("size", dim, this->dim())]; }
int64_t Tensor::stride(int64_t dim) const { return strides()[normalize_dim("stride", dim, this->dim())]; }

bool Tensor::is_contiguous() const {
  const auto& s = shape();
  const auto& st = strides();
  if (shape_numel(s) == 0) return true;  // no element to misplace, as in PyTorch
  int64_t expected = 1;
  for (size_t i = s.size(); i-- > 0;) {
    if (s[i] == 1) continue;
    if (st[i] != expected) return false;
    expected *= s[i];
  }
  return true;
}

void* Tensor::data_ptr() const {
  const auto& t = checked();
  return static_cast<char*>(t.storage->data()) + t.offset * static_cast<int64_t>(dtype_size(t.dtype));
}

void Tensor::check_dtype_for_access(DType requested) const {
  if (dtype() != requested)
    throw DTypeError(std::string("data_ptr: tensor is ") + dtype_name(dtype()) + ", requested " +
                     dtype_name(requested));
  if (!device().is_cpu())
    throw DeviceError("data_ptr<T>: tensor is on " + device().str() + "; move it with .to(Device::cpu()) first");
}

double Tensor::item() const {
  if (numel() != 1)
    throw ShapeError("item: expected a tensor with one element, got shape " + shape_str(shape()));
  return to_vector<double>()[0];
}

template <class T> std::vector<T> Tensor::to_vector() const {
  constexpr DType target = dtype_of_v<T>;
  Tensor host = device().is_cpu() ? *this : to(Device::cpu());
  Tensor c = ops::cast(host, target);  // contiguous, converted
  const T* p = static_cast<const T*>(c.data_ptr());
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template <> std::vector<bool> Tensor::to_vector<bool>() const {
  Tensor host = device().is_cpu() ? *this : to(Device::cpu());
  Tensor c = ops::cast(host, DType::boolean);
  const bool* p = static_cast<const bool*>(c.data_ptr());
  return std::vector<bool>(p, p + c.numel());
}

Tensor& Tensor::requires_grad_(bool enabled) {
  auto& t = const_cast<TensorImpl&>(checked());
  if (enabled && !is_floating(t.dtype))
    throw DTypeError(std::string("requires_grad_: only floating-point tensors can require gradients, got ") +
                     dtype_name(t.dtype));
  if (t.grad_fn && !enabled)
    throw AutogradError("requires_grad_(false) on a non-leaf tensor; use detach() instead");
  t.requires_grad = enabled;
  return *this;
}

Tensor Tensor::grad() const {
  const auto& t = checked();
  return t.grad ? Tensor(t.grad) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) const {
  auto& t = const_cast<TensorImpl&>(checked());
  if (grad.defined() && grad.shape() != t.shape)
    throw ShapeError("set_grad: gradient shape " + shape_str(grad.shape()) + " does not match tensor shape " +
                     shape_str(t.shape));
  t.grad = grad.defined() ? grad.impl_ptr() : nullptr;
}

void Tensor::retain_grad() const {
  auto& t = const_cast<TensorImpl&>(checked());
  if (!t.requires_grad) throw AutogradError("retain_grad: tensor does not require grad");
  t.retains_grad = true;
}

static void check_in_place(const char* op, const Tensor& t) {
  if (t.requires_grad() && GradMode::is_enabled())
    throw AutogradError(std::string(op) + ": in-place change of a tensor that requires grad; wrap it in "
                        "NoGradGuard (as initialisers and optimizers do)");
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_in_place("copy_", *this);
  ops::copy_into(*this, src);
  return *this;
}

Tensor& Tensor::fill_(double value) {
  check_in_place("fill_", *this);
  ops::fill(*this, value);
  return *this;
}

// --- printing ---

namespace {

constexpr int64_t kSummariseAbove = 1000;  // elements; as PyTorch's print threshold
constexpr int64_t kEdgeItems = 3;

struct Printer {
  const std::vector<double>& values;
  const Shape& shape;
  bool floating;
  bool summarise;
  bool scientific = false;
  std::ostringstream out;

  std::string format(double v) const {
    char buf[64];
    if (!floating) std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    else if (std::isnan(v)) std::snprintf(buf, sizeof buf, "nan");
    else if (std::isinf(v)) std::snprintf(buf, sizeof buf, v > 0 ? "inf" : "-inf");
    else if (scientific) std::snprintf(buf, sizeof buf, "%.4e", v);
    else std::snprintf(buf, sizeof buf, "%.4f", v);
    return buf;
  }

  void print(size_t dim, int64_t base, int indent) {
    if (shape.empty()) {
      out << format(values[0]);
      return;
    }
    const int64_t n = shape[dim];
    int64_t inner = 1;
    for (size_t d = dim + 1; d < shape.size(); ++d) inner *= shape[d];
    out << "[";
    for (int64_t i = 0; i < n; ++i) {
      if (summarise && n > 2 * kEdgeItems && i == kEdgeItems) {
        out << (dim + 1 == shape.size() ? "..., " : "...,\n" + std::string(indent + 1, ' '));
        i = n - kEdgeItems;
      }
      if (dim + 1 == shape.size()) out << format(values[static_cast<size_t>(base + i)]);
      else print(dim + 1, base + i * inner, indent + 1);
      if (i + 1 < n) out << (dim + 1 == shape.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
    }
    out << "]";
  }
};

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::vector<double> values = to_vector<double>();
  Printer p{values, shape(), is_floating(dtype()), numel() > kSummariseAbove, false, {}};
  double max_abs = 0, min_abs = INFINITY;
  for (double v : values)
    if (std::isfinite(v) && v != 0) {
      max_abs = std::max(max_abs, std::abs(v));
      min_abs = std::min(min_abs, std::abs(v));
    }
  p.scientific = max_abs >= 1e5 || (min_abs < 1e-4 && min_abs > 0);
  p.out << "tensor(";
  p.print(0, 0, 7);
  p.out << ", shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype()) << ", device=" << device().str();
  if (requires_grad()) p.out << ", requires_grad";
  p.out << ")";
  return p.out.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace graft
