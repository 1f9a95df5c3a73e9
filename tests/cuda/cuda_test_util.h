// Shared by the CUDA suites: every test runs an op on the GPU and on the CPU on the same fresh
// random inputs and compares. Without a GPU (or without the CUDA backend) each test skips and
// says why; none passes without having run.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "graft.h"

namespace graft::testing {

inline std::string cuda_skip_reason() {
#if GRAFT_WITH_CUDA
  return "no CUDA device visible (cudaGetDeviceCount found none)";
#else
  return "graft was built without the CUDA backend (no nvcc at configure time)";
#endif
}

// Fresh inputs per test: seeded from the test's name, so a failure reproduces but no two tests share data.
inline uint64_t test_seed() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::hash<std::string>{}(std::string(info->test_suite_name()) + "." + info->name());
}

inline Tensor random_cpu(const Shape& shape, DType dtype = DType::f32, uint64_t salt = 0) {
  Generator gen(test_seed() + salt);
  return randn(shape, DType::f32, &gen).to(dtype);
}

// Tolerances by dtype (issue 7): relative error of the CPU result's scale.
inline double default_rtol(DType dtype) {
  switch (dtype) {
    case DType::f64: return 1e-12;
    case DType::f32: return 1e-5;
    case DType::bf16: return 1e-2;
    case DType::f16: return 2e-3;
    default: return 0.0;
  }
}

// |got - want| <= atol + rtol * |want| elementwise, got moved to the CPU and both compared in f64.
inline ::testing::AssertionResult all_close(const Tensor& got, const Tensor& want, double rtol, double atol = 0.0) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(got.shape()) << " vs " << shape_str(want.shape());
  Tensor g = got.to(Device::cpu()).to(DType::f64).contiguous();
  Tensor w = want.to(Device::cpu()).to(DType::f64).contiguous();
  const double* gp = g.data_ptr<double>();
  const double* wp = w.data_ptr<double>();
  double worst = 0;
  int64_t worst_at = -1, bad = 0;
  for (int64_t i = 0; i < g.numel(); ++i) {
    const double diff = std::abs(gp[i] - wp[i]);
    const bool nan_mismatch = std::isnan(gp[i]) != std::isnan(wp[i]);
    const bool ok = (std::isnan(gp[i]) && std::isnan(wp[i])) || (gp[i] == wp[i]) || diff <= atol + rtol * std::abs(wp[i]);
    if (!ok || nan_mismatch) {
      ++bad;
      if (std::isnan(diff) || diff > worst) worst = diff, worst_at = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  std::ostringstream msg;
  msg << bad << " of " << g.numel() << " elements differ beyond rtol " << rtol << " atol " << atol
      << "; worst at flat index " << worst_at << ": got " << gp[worst_at] << ", want " << wp[worst_at];
  return ::testing::AssertionFailure() << msg.str();
}

}  // namespace graft::testing

#define GRAFT_REQUIRE_CUDA()                                                      \
  do {                                                                            \
    if (!::graft::cuda_is_available()) GTEST_SKIP() << ::graft::testing::cuda_skip_reason(); \
  } while (0)
