// Where a tensor's storage lives. Ops require all operands on one device and say so when not.
#pragma once

#include <cstdint>
#include <string>

namespace graft {

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool operator==(const Device& other) const = default;
  std::string str() const;  // "cpu", "cuda:0"
};

// True when this build has the CUDA backend and at least one GPU is visible.
bool cuda_is_available();
// "cpu", "cuda" (device 0) or "cuda:N", as torch.device reads them; ValueError naming the text
// otherwise. It does not check that the device exists (using it does).
Device parse_device(const std::string& text);
int cuda_device_count();
// Waits until the GPU has finished the calling thread's queued work on `device` (kernels run
// asynchronously; reading a result to the host waits by itself). For timing and for errors raised
// inside kernels. Throws DeviceError without CUDA or when a queued kernel failed.
void cuda_synchronize(Device device = Device::cuda(0));

}  // namespace graft
