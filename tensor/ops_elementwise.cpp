// Elementwise ops, copies and casts: validation, then dispatch by device and dtype.
#include "kernels/elementwise/elementwise.h"
#include "kernels/elementwise/gelu.h"
#include "tensor/factory.h"
#include "tensor/iter.h"
#include "tensor/ops.h"

namespace graft::ops {

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  if (a.device() != b.device())
    throw DeviceError(std::string(op) + ": tensors are on different devices (" + a.device().str() + " and " +
                      b.device().str() + ", shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) +
                      "); move one with .to()");
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    throw DTypeError(std::string(op) + ": dtypes differ (" + dtype_name(a.dtype()) + " " + shape_str(a.shape()) +
                     " and " + dtype_name(b.dtype()) + " " + shape_str(b.shape()) + "); convert one with .to(dtype)");
}

void check_floating(const char* op, const Tensor& x) {
  if (!is_floating(x.dtype()))
    throw DTypeError(std::string(op) + ": expected a floating-point tensor, got " + dtype_name(x.dtype()) + " " +
                     shape_str(x.shape()));
}

void check_cpu(const char* op, const Tensor& x) {
  if (!x.device().is_cpu())
    throw NotImplementedError(std::string(op) + ": no kernel for " + x.device().str() +
                              " tensors yet (the CUDA backend adds them); move the tensor with .to(Device::cpu())");
}

Tensor empty_like_contiguous(const Tensor& x, DType dtype) { return empty(x.shape(), TensorOptions(dtype).with_device(x.device())); }

Tensor scalar_like(double value, const Tensor& like) {
  return full({}, value, TensorOptions(like.dtype()).with_device(like.device()));
}

namespace {

// The devices this file has kernels for: the CPU, and CUDA in CUDA builds.
void check_has_kernel(const char* op, const Tensor& x) {
#if GRAFT_WITH_CUDA
  if (x.device().is_cuda()) return;
#endif
  check_cpu(op, x);
}

// out (contiguous, out dtype) <- in, converting; both on the CPU.
void copy_cpu(const Tensor& out, const Tensor& in) {
  auto it = detail::make_iter("copy", out.shape(), {&out, &in});
  GRAFT_DISPATCH_ALL("copy", out.dtype(), [&] {
    using Dst = scalar_t;
    GRAFT_DISPATCH_ALL("copy", in.dtype(), [&] {
      kernels::copy_cpu<Dst, scalar_t>(it, out.data_ptr(), in.data_ptr());
    });
  });
}

#if GRAFT_WITH_CUDA
// out <- in, converting, any layouts; both on the same GPU.
void copy_on_cuda(const Tensor& out, const Tensor& in) {
  auto it = detail::make_iter("copy", out.shape(), {&out, &in});
  GRAFT_DISPATCH_ALL("copy", out.dtype(), [&] {
    using Dst = scalar_t;
    GRAFT_DISPATCH_ALL("copy", in.dtype(), [&] {
      kernels::copy_cuda<Dst, scalar_t>(it, out.data_ptr(), in.data_ptr(), out.device().index);
    });
  });
}
#endif

}  // namespace

void copy_into(const Tensor& dst, const Tensor& src) {
  Tensor source = src;
  if (source.shape() != dst.shape()) {
    broadcast_shapes("copy_", dst.shape(), source.shape());  // throws with a clear message
    source = expand(source, dst.shape());
  }
  if (dst.device().is_cpu() && source.device().is_cpu()) return copy_cpu(dst, source);
#if GRAFT_WITH_CUDA
  if (dst.device() == source.device()) return copy_on_cuda(dst, source);
  if (dst.device().is_cuda() && source.device().is_cuda())  // two GPUs: copy_bytes has no peer copy
    return copy_into(dst, to_device(src, Device::cpu()));
  // Between host and GPU only bytes move; dtype and layout are converted by a kernel on the GPU.
  if (dst.is_contiguous() && source.is_contiguous() && dst.dtype() == source.dtype()) {
    copy_bytes(dst.data_ptr(), dst.device(), source.data_ptr(), source.device(),
               static_cast<size_t>(dst.numel()) * dst.element_size());
    return;
  }
  if (source.device().is_cpu())  // host -> GPU: src's own elements go up (unbroadcast), converted there
    return copy_on_cuda(dst, expand(to_device(src, dst.device()), dst.shape()));
  // GPU -> host: converted on the GPU into dst's dtype, contiguous, then brought down.
  const Tensor staged = cast(source, dst.dtype());
  if (dst.is_contiguous()) {
    copy_bytes(dst.data_ptr(), dst.device(), staged.data_ptr(), staged.device(),
               static_cast<size_t>(dst.numel()) * dst.element_size());
    return;
  }
  copy_cpu(dst, to_device(staged, Device::cpu()));
#else
  // Across devices: bytes move contiguous and in the destination dtype.
  Tensor staged = source;
  if (staged.device().is_cpu() && (staged.dtype() != dst.dtype() || !staged.is_contiguous()))
    staged = cast(staged, dst.dtype());
  if (!staged.device().is_cpu() && (!staged.is_contiguous() || staged.dtype() != dst.dtype())) {
    staged = to_device(staged, Device::cpu());  // convert on the host until CUDA kernels land
    staged = cast(staged, dst.dtype());
  }
  if (dst.is_contiguous()) {
    copy_bytes(dst.data_ptr(), dst.device(), staged.data_ptr(), staged.device(),
               static_cast<size_t>(dst.numel()) * dst.element_size());
    return;
  }
  Tensor host = staged.device().is_cpu() ? staged : to_device(staged, Device::cpu());
  if (dst.device().is_cpu()) return copy_cpu(dst, host);
  throw NotImplementedError("copy_: writing into a non-contiguous " + dst.device().str() + " tensor needs the CUDA backend");
#endif
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = empty_like_contiguous(x, x.dtype());
  copy_into(out, x);
  return out;
}

Tensor cast(const Tensor& x, DType dtype) {
  Tensor out = empty_like_contiguous(x, dtype);
  copy_into(out, x);
  return out;
}

Tensor to_device(const Tensor& x, Device device) {
  if (x.device() == device) return x;
#if GRAFT_WITH_CUDA
  Tensor src = contiguous(x);  // on the source device
#else
  Tensor src = x.device().is_cpu() ? contiguous(x) : x;
#endif
  if (!src.is_contiguous()) throw NotImplementedError("to: moving a non-contiguous " + x.device().str() + " tensor");
  Tensor out = empty(x.shape(), TensorOptions(x.dtype()).with_device(device));
  copy_bytes(out.data_ptr(), device, src.data_ptr(), src.device(), static_cast<size_t>(x.numel()) * x.element_size());
  return out;
}

void fill(const Tensor& dst, double value) {
#if GRAFT_WITH_CUDA
  if (dst.device().is_cuda()) {
    auto it = detail::make_iter("fill_", dst.shape(), {&dst});
    GRAFT_DISPATCH_ALL("fill_", dst.dtype(), [&] {
      kernels::fill_cuda<scalar_t>(it, dst.data_ptr(), value, dst.device().index);
    });
    return;
  }
#endif
  if (!dst.device().is_cpu()) {  // filled on the host and copied until CUDA kernels land
    copy_into(dst, full(dst.shape(), value, dst.dtype()));
    return;
  }
  auto it = detail::make_iter("fill_", dst.shape(), {&dst});
  GRAFT_DISPATCH_ALL("fill_", dst.dtype(), [&] { kernels::fill_cpu<scalar_t>(it, dst.data_ptr(), value); });
}

Tensor unary(UnaryOp op, const Tensor& x, double a, double b) {
  const char* name = kernels::unary_op_name(op);
  check_has_kernel(name, x);
  if (x.dtype() == DType::boolean) detail::throw_dtype(name, x.dtype(), "floating and integer types");
  if (kernels::unary_op_needs_float(op)) check_floating(name, x);
  Tensor out = empty_like_contiguous(x, kernels::unary_op_outputs_bool(op) ? DType::boolean : x.dtype());
  auto it = detail::make_iter(name, out.shape(), {&out, &x});
#if GRAFT_WITH_CUDA
  if (x.device().is_cuda()) {
    GRAFT_DISPATCH_ALL(name, x.dtype(), [&] {
      if constexpr (!std::is_same_v<scalar_t, bool>)
        kernels::unary_cuda<scalar_t>(op, a, b, it, out.data_ptr(), x.data_ptr(), x.device().index);
    });
    return out;
  }
#endif
  GRAFT_DISPATCH_ALL(name, x.dtype(), [&] {
    if constexpr (!std::is_same_v<scalar_t, bool>)
      kernels::unary_cpu<scalar_t>(op, a, b, it, out.data_ptr(), x.data_ptr());
  });
  return out;
}

Tensor gelu_erf_backward(const Tensor& grad, const Tensor& x) {
  if (grad.dtype() != DType::f32 || x.dtype() != DType::f32 || grad.shape() != x.shape() || !grad.device().is_cpu() ||
      !x.device().is_cpu())
    return binary(BinaryOp::mul, grad, unary(UnaryOp::gelu_erf_grad, x));
  const Tensor g = contiguous(grad), xc = contiguous(x);
  Tensor out = empty_like_contiguous(xc, DType::f32);
  kernels::gelu_erf_backward_f32(g.data_ptr<float>(), xc.data_ptr<float>(), xc.numel(), out.data_ptr<float>());
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = kernels::binary_op_name(op);
  check_same_device(name, a, b);
  check_same_dtype(name, a, b);
  check_has_kernel(name, a);
  const bool logical = op == BinaryOp::logical_and || op == BinaryOp::logical_or;
  if (logical && a.dtype() != DType::boolean) detail::throw_dtype(name, a.dtype(), "bool");
  if (a.dtype() == DType::boolean && !logical && op != BinaryOp::eq && op != BinaryOp::ne)
    detail::throw_dtype(name, a.dtype(), "floating and integer types");
  if (op == BinaryOp::pow) check_floating(name, a);
  const Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  Tensor out = empty(shape, TensorOptions(kernels::binary_op_outputs_bool(op) ? DType::boolean : a.dtype())
                                .with_device(a.device()));
  auto it = detail::make_iter(name, shape, {&out, &a, &b});
#if GRAFT_WITH_CUDA
  if (a.device().is_cuda()) {
    GRAFT_DISPATCH_ALL(name, a.dtype(), [&] {
      kernels::binary_cuda<scalar_t>(op, it, out.data_ptr(), a.data_ptr(), b.data_ptr(), a.device().index);
    });
    return out;
  }
#endif
  GRAFT_DISPATCH_ALL(name, a.dtype(), [&] {
    kernels::binary_cpu<scalar_t>(op, it, out.data_ptr(), a.data_ptr(), b.data_ptr());
  });
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  if (cond.dtype() != DType::boolean)
    throw DTypeError(std::string("where: condition must be bool, got ") + dtype_name(cond.dtype()) + " " +
                     shape_str(cond.shape()));
  check_same_device("where", cond, a);
  check_same_device("where", a, b);
  check_same_dtype("where", a, b);
  check_has_kernel("where", a);
  const Shape shape = broadcast_shapes("where", broadcast_shapes("where", cond.shape(), a.shape()), b.shape());
  Tensor out = empty(shape, TensorOptions(a.dtype()).with_device(a.device()));
  auto it = detail::make_iter("where", shape, {&out, &cond, &a, &b});
#if GRAFT_WITH_CUDA
  if (a.device().is_cuda()) {
    GRAFT_DISPATCH_ALL("where", a.dtype(), [&] {
      kernels::where_cuda<scalar_t>(it, out.data_ptr(), static_cast<const bool*>(cond.data_ptr()), a.data_ptr(),
                                    b.data_ptr(), a.device().index);
    });
    return out;
  }
#endif
  GRAFT_DISPATCH_ALL("where", a.dtype(), [&] {
    kernels::where_cpu<scalar_t>(it, out.data_ptr(), static_cast<const bool*>(cond.data_ptr()), a.data_ptr(),
                                 b.data_ptr());
  });
  return out;
}

}  // namespace graft::ops
