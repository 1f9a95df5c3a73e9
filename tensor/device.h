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
int cuda_device_count();

}  // namespace graft
