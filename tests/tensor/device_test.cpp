// Devices: CPU basics everywhere; host <-> CUDA transfers through the stream-ordered pool, which
// skip (never pass) without a GPU; without one, asking for CUDA is a DeviceError.
#include <gtest/gtest.h>

#include "autograd/ops.h"

using namespace graft;

TEST(Device, ParsesTorchStyleNames) {
  EXPECT_EQ(parse_device("cpu"), Device::cpu());
  EXPECT_EQ(parse_device("cuda"), Device::cuda(0));
  EXPECT_EQ(parse_device("cuda:3"), Device::cuda(3));
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "CUDA", "cuda:-1", "cpu:0", ""}) {
    try {
      parse_device(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("expected cpu, cuda or cuda:N"), std::string::npos) << e.what();
    }
  }
}

TEST(Device, SynchronizeWithoutAGpuIsADeviceError) {
  if (cuda_is_available()) GTEST_SKIP() << "a CUDA device is visible: the no-GPU path does not apply";
  EXPECT_THROW(cuda_synchronize(), DeviceError);
  EXPECT_THROW(cuda_synchronize(Device::cpu()), DeviceError);
}

TEST(Device, NamesAndEquality) {
  EXPECT_EQ(Device::cpu().str(), "cpu");
  EXPECT_EQ(Device::cuda(1).str(), "cuda:1");
  EXPECT_EQ(Device::cuda(), Device::cuda(0));
  EXPECT_NE(Device::cuda(0), Device::cuda(1));
  EXPECT_NE(Device::cpu(), Device::cuda(0));
  EXPECT_TRUE(Device::cpu().is_cpu());
  EXPECT_TRUE(Device::cuda().is_cuda());
  EXPECT_EQ(cuda_is_available(), cuda_device_count() > 0);
  Tensor x = ones({3});
  EXPECT_EQ(x.device(), Device::cpu());
  EXPECT_TRUE(x.to(Device::cpu()).is_same(x));  // same device: the same tensor
}

TEST(Device, CudaWithoutAGpuIsADeviceError) {
  if (cuda_is_available()) GTEST_SKIP() << "a CUDA device is visible: the no-GPU path does not apply";
  EXPECT_THROW(ones({2}).to(Device::cuda(0)), DeviceError);
  EXPECT_THROW(zeros({2}, Device::cuda(0)), DeviceError);
  EXPECT_THROW(randn({2}, TensorOptions().with_device(Device::cuda(0))), DeviceError);
  EXPECT_THROW(from_vector<float>({1, 2}, {2}, TensorOptions().with_device(Device::cuda(0))), DeviceError);
  try {
    ones({2}).to(Device::cuda(0));
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
  }
}

TEST(CudaTransfer, RoundTripKeepsValuesAndDtype) {
  if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device visible (or graft built without CUDA)";
  for (DType dtype : {DType::f32, DType::f64, DType::bf16, DType::i64, DType::boolean}) {
    Tensor host = randint(0, 7, {3, 129}, dtype == DType::boolean ? DType::i64 : dtype);
    if (dtype == DType::boolean) host = gt(host, 3.0);
    Tensor dev = host.to(Device::cuda(0));
    EXPECT_TRUE(dev.device().is_cuda());
    EXPECT_EQ(dev.dtype(), host.dtype());
    Tensor back = dev.to(Device::cpu());
    EXPECT_EQ(back.to_vector<double>(), host.to_vector<double>()) << dtype_name(dtype);
  }
}

TEST(CudaTransfer, NonContiguousSourceAndFill) {
  if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device visible (or graft built without CUDA)";
  Tensor host = randn({5, 7});
  Tensor dev = host.t().to(Device::cuda(0));  // staged through a contiguous copy
  EXPECT_EQ(dev.to(Device::cpu()).to_vector<float>(), host.t().contiguous().to_vector<float>());
  Tensor z = zeros({4, 4}, TensorOptions(DType::f32).with_device(Device::cuda(0)));
  z.fill_(2.5);
  EXPECT_EQ(z.to(Device::cpu()).to_vector<float>(), std::vector<float>(16, 2.5f));
}

TEST(CudaTransfer, GradientFlowsBackAcrossDevices) {
  if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device visible (or graft built without CUDA)";
  Tensor x = from_vector<float>({1, 2, 3}).requires_grad_();
  Tensor y = x.to(Device::cuda(0)).to(Device::cpu());
  (y * y).sum().backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2, 4, 6}));
}

TEST(CudaTransfer, OpsComputeOnTheGpuAndMixedDevicesAreAnError) {
  if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device visible (or graft built without CUDA)";
  Tensor a = from_vector<float>({1, 2}).to(Device::cuda(0));
  Tensor sum = a + a;
  EXPECT_TRUE(sum.device().is_cuda());
  EXPECT_EQ(sum.to(Device::cpu()).to_vector<float>(), (std::vector<float>{2, 4}));
  EXPECT_THROW(a + ones({2}), DeviceError);  // mixed devices
  cuda_synchronize();
}

TEST(CudaTransfer, UnavailableDeviceIsATypedError) {
  if (cuda_is_available()) {
    EXPECT_THROW(ones({2}).to(Device::cuda(cuda_device_count())), DeviceError);
  } else {
    EXPECT_THROW(ones({2}).to(Device::cuda(0)), DeviceError);
  }
}
