#include "tensor/device.h"

#include "kernels/memory/cuda_memory.h"
#include "tensor/error.h"

namespace graft {

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

Device parse_device(const std::string& text) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.size() <= 8 &&
      text.find_first_not_of("0123456789", 5) == std::string::npos)
    return Device::cuda(std::stoi(text.substr(5)));
  throw ValueError("device \"" + text + "\": expected cpu, cuda or cuda:N");
}

bool cuda_is_available() { return kernels::cuda_device_count_raw() > 0; }
int cuda_device_count() { return kernels::cuda_device_count_raw(); }

void cuda_synchronize(Device device) {
  if (!device.is_cuda()) throw DeviceError("cuda_synchronize: " + device.str() + " is not a CUDA device");
  std::string error;
  if (!kernels::cuda_synchronize_raw(device.index, &error)) throw DeviceError("cuda_synchronize(" + device.str() + "): " + error);
}

}  // namespace graft
