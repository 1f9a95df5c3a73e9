// A reference-counted block of device memory. Views share one Storage; a Tensor adds shape,
// strides and an element offset on top.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "tensor/device.h"

namespace graft {

class Storage {
 public:
  using Deleter = std::function<void(void*)>;

  // Allocates nbytes on the device (64-byte aligned on the CPU, the stream-ordered pool on CUDA).
  static std::shared_ptr<Storage> allocate(std::size_t nbytes, Device device);
  // Wraps memory owned elsewhere; deleter (may be empty) runs when the last view goes away.
  static std::shared_ptr<Storage> wrap(void* data, std::size_t nbytes, Device device, Deleter deleter);

  Storage(void* data, std::size_t nbytes, Device device, Deleter deleter)
      : data_(data), nbytes_(nbytes), device_(device), deleter_(std::move(deleter)) {}
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_;
  std::size_t nbytes_;
  Device device_;
  Deleter deleter_;
};

// Copies nbytes between storages on any pair of devices (host<->device through the CUDA backend).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes);

}  // namespace graft
