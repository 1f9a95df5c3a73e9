// Row kernels of kernels/reduce: softmax_rows_cpu and reduce_rows_cpu / arg_reduce_rows_cpu
// against double references on fresh random rows of odd lengths.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/common/half.h"
#include "kernels/reduce/reduce.h"

using namespace graft::kernels;

namespace {
template <class T>
std::vector<T> random_vector(size_t n, std::mt19937& rng, double scale) {
  std::normal_distribution<double> dist(0, scale);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}

template <class T>
void check_softmax(int64_t rows, int64_t cols, double scale, std::mt19937& rng, double tol) {
  auto x = random_vector<T>(static_cast<size_t>(rows * cols), rng, scale);
  std::vector<T> p(x.size(), T(NAN)), lp(x.size(), T(NAN));
  softmax_rows_cpu<T>(false, x.data(), rows, cols, p.data());
  softmax_rows_cpu<T>(true, x.data(), rows, cols, lp.data());
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x.data() + r * cols;
    double m = -INFINITY, z = 0, total = 0;
    for (int64_t c = 0; c < cols; ++c) m = std::max(m, double(xr[c]));
    for (int64_t c = 0; c < cols; ++c) z += std::exp(double(xr[c]) - m);
    const double lse = m + std::log(z);
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r * cols + c);
      ASSERT_NEAR(p[i], std::exp(double(xr[c]) - lse), tol) << rows << "x" << cols << " r=" << r << " c=" << c;
      ASSERT_NEAR(lp[i], double(xr[c]) - lse, tol * (1 + std::abs(lse))) << rows << "x" << cols;
      total += p[i];
    }
    ASSERT_NEAR(total, 1.0, tol * 10);
  }
}
}  // namespace

TEST(SoftmaxKernel, MatchesReference) {
  std::mt19937 rng(std::random_device{}());
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {1, 7}, {5, 97}, {129, 33}, {3, 10007}, {700, 64}}) {
    for (double scale : {1.0, 30.0}) {
      check_softmax<float>(rows, cols, scale, rng, 1e-6);
      check_softmax<double>(rows, cols, scale, rng, 1e-13);
    }
  }
}

TEST(SoftmaxKernel, ExtremeInputs) {
  std::vector<float> x{1e30f, 1e30f, -1e30f, 0.0f, -INFINITY, 1.0f, -INFINITY, -INFINITY, -INFINITY};
  std::vector<float> p(x.size()), lp(x.size());
  softmax_rows_cpu<float>(false, x.data(), 3, 3, p.data());
  softmax_rows_cpu<float>(true, x.data(), 3, 3, lp.data());
  EXPECT_FLOAT_EQ(p[0], 0.5f);
  EXPECT_FLOAT_EQ(p[1], 0.5f);
  EXPECT_EQ(p[2], 0.0f);
  EXPECT_EQ(p[4], 0.0f);
  EXPECT_NEAR(p[5], 1 / (1 + std::exp(-1.0)), 1e-7);
  EXPECT_EQ(lp[4], -INFINITY);
  EXPECT_TRUE(std::isnan(p[6]));  // a row of all -inf: NaN, as PyTorch
}

TEST(ReduceKernel, RowsMatchReference) {
  std::mt19937 rng(std::random_device{}());
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 13}, {1, 100003}, {97, 4099}}) {
    auto x = random_vector<float>(static_cast<size_t>(rows * cols), rng, 1.0);
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max, ReduceOp::min, ReduceOp::prod}) {
      std::vector<float> out(static_cast<size_t>(rows), NAN);
      std::vector<int64_t> idx(static_cast<size_t>(rows), -1), aidx(static_cast<size_t>(rows), -1);
      reduce_rows_cpu<float>(op, x.data(), rows, cols, out.data(), idx.data());
      const bool extreme = op == ReduceOp::max || op == ReduceOp::min;
      if (extreme) arg_reduce_rows_cpu<float>(op == ReduceOp::max, x.data(), rows, cols, aidx.data());
      for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x.data() + r * cols;
        double acc = op == ReduceOp::prod ? 1 : 0, best = xr[0];
        int64_t bi = 0;
        for (int64_t c = 0; c < cols; ++c) {
          if (op == ReduceOp::prod) acc *= xr[c];
          else acc += xr[c];
          if (op == ReduceOp::max ? xr[c] > best : xr[c] < best) best = xr[c], bi = c;
        }
        if (op == ReduceOp::mean) acc /= static_cast<double>(cols);
        const size_t ri = static_cast<size_t>(r);
        if (extreme) {
          ASSERT_EQ(out[ri], best);
          ASSERT_EQ(idx[ri], bi);
          ASSERT_EQ(aidx[ri], bi);
        } else if (op == ReduceOp::prod) {
          ASSERT_NEAR(out[ri], acc, 1e-6 * std::abs(acc) + 1e-30);
        } else {
          ASSERT_NEAR(out[ri], acc, 1e-6 * (1 + std::abs(acc))) << "rows=" << rows << " cols=" << cols;
        }
      }
    }
  }
}

TEST(ReduceKernel, HalfAndIntegerRows) {
  std::vector<graft::bf16> b{graft::bf16(1.5f), graft::bf16(-2.0f), graft::bf16(4.0f)};
  graft::bf16 out[1];
  int64_t idx[1];
  reduce_rows_cpu<graft::bf16>(ReduceOp::sum, b.data(), 1, 3, out, nullptr);
  EXPECT_EQ(static_cast<float>(out[0]), 3.5f);
  reduce_rows_cpu<graft::bf16>(ReduceOp::min, b.data(), 1, 3, out, idx);
  EXPECT_EQ(static_cast<float>(out[0]), -2.0f);
  EXPECT_EQ(idx[0], 1);
  std::vector<int32_t> n{5, -3, 9, 9, 2, 0};
  int32_t s[2];
  reduce_rows_cpu<int32_t>(ReduceOp::sum, n.data(), 2, 3, s, nullptr);
  EXPECT_EQ(s[0], 11);
  EXPECT_EQ(s[1], 11);
  int64_t am[2];
  arg_reduce_rows_cpu<int32_t>(true, n.data(), 2, 3, am);
  EXPECT_EQ(am[0], 2);
  EXPECT_EQ(am[1], 0);  // first of ties
}
