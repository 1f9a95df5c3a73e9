// Reading the GRU goldens that tests/golden/make_gru_golden.py wrote with PyTorch.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tensor/factory.h"

namespace graft::test {

inline nlohmann::json load_gru_golden(const std::string& name) {
  const std::string path = std::string(GRAFT_TEST_DATA_DIR) + "/golden/gru/" + name + ".json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing golden " + path + ": run /usr/bin/python3 tests/golden/make_gru_golden.py");
  return nlohmann::json::parse(in);
}

// Every golden number is an f32 written as its shortest repr: round to f32 first, so an f64 run
// sees exactly the values torch saw.
inline Tensor golden_tensor(const nlohmann::json& entry, DType dtype = DType::f32) {
  return from_vector<double>(entry.at("data").get<std::vector<double>>(), entry.at("shape").get<Shape>())
      .to(DType::f32)
      .to(dtype);
}

// |actual - expected| <= rtol * |expected| + atol elementwise; also rejects an all-zero golden
// (unless may_be_zero), so a comparison cannot pass vacuously.
inline void expect_close(const Tensor& actual, const nlohmann::json& expected_entry, double rtol, double atol,
                         const std::string& what, bool may_be_zero = false) {
  ASSERT_TRUE(actual.defined()) << what << " is undefined";
  const auto expected = expected_entry.at("data").get<std::vector<double>>();
  ASSERT_EQ(actual.shape(), expected_entry.at("shape").get<Shape>()) << what;
  const auto got = actual.to(DType::f64).to_vector<double>();
  bool any_nonzero = false;
  double worst = 0.0;
  for (size_t k = 0; k < got.size(); ++k) {
    any_nonzero |= expected[k] != 0.0;
    const double err = std::abs(got[k] - expected[k]);
    worst = std::max(worst, err / (rtol * std::abs(expected[k]) + atol));
    EXPECT_LE(err, rtol * std::abs(expected[k]) + atol) << what << "[" << k << "]: " << got[k] << " vs torch " << expected[k];
  }
  EXPECT_TRUE(any_nonzero || may_be_zero) << what << ": golden is all zeros";
  if (std::getenv("GRAFT_GRU_TOLERANCE_REPORT")) std::printf("%s: worst err / tol = %.3g\n", what.c_str(), worst);
}

}  // namespace graft::test
