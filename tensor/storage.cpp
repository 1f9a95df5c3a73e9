#include "tensor/storage.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/memory/cuda_memory.h"
#include "tensor/error.h"

namespace graft {

std::shared_ptr<Storage> Storage::allocate(std::size_t nbytes, Device device) {
  if (device.is_cpu()) {
    // Round up to the alignment, as aligned_alloc requires; at least one line so data() != null.
    const std::size_t padded = ((nbytes + 63) / 64) * 64 + (nbytes == 0 ? 64 : 0);
    void* data = std::aligned_alloc(64, padded);
    if (!data) throw Error("out of memory: could not allocate " + std::to_string(nbytes) + " bytes on the CPU");
    return std::make_shared<Storage>(data, nbytes, device, [](void* p) { std::free(p); });
  }
  if (device.index < 0 || device.index >= kernels::cuda_device_count_raw()) {
    std::string why;
    if (!kernels::cuda_compiled()) why = ": graft was built without CUDA";
    else why = ": " + std::to_string(kernels::cuda_device_count_raw()) + " CUDA device(s) visible";
    throw DeviceError("cannot allocate on " + device.str() + why);
  }
  std::string error;
  void* data = kernels::cuda_allocate(nbytes, device.index, &error);
  if (!data) throw DeviceError("allocating " + std::to_string(nbytes) + " bytes on " + device.str() + ": " + error);
  const int index = device.index;
  return std::make_shared<Storage>(data, nbytes, device, [index](void* p) { kernels::cuda_release(p, index); });
}

std::shared_ptr<Storage> Storage::wrap(void* data, std::size_t nbytes, Device device, Deleter deleter) {
  return std::make_shared<Storage>(data, nbytes, device, std::move(deleter));
}

Storage::~Storage() {
  if (deleter_) deleter_(data_);
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  if (dst_device.is_cuda() && src_device.is_cuda() && dst_device.index != src_device.index)
    throw DeviceError("copy between " + src_device.str() + " and " + dst_device.str() +
                      " is not supported yet: go through the CPU");
  const int kind = src_device.is_cpu() ? 0 : dst_device.is_cpu() ? 1 : 2;
  const int index = dst_device.is_cuda() ? dst_device.index : src_device.index;
  std::string error;
  if (!kernels::cuda_copy(dst, src, nbytes, kind, index, &error))
    throw DeviceError("copy " + src_device.str() + " -> " + dst_device.str() + ": " + error);
}

}  // namespace graft
