// layer_norm_{forward,backward}_cpu against a double-precision reference on fresh random rows,
// and the backward against central finite differences of the reference forward.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/norm/layer_norm.h"

using namespace graft::kernels;

namespace {

template <class T>
std::vector<T> random_vector(size_t n, std::mt19937& rng, double scale = 1, double shift = 0) {
  std::normal_distribution<double> dist(shift, scale);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}

// y for one row, in double.
std::vector<double> ln_row(const std::vector<double>& x, const std::vector<double>* w, const std::vector<double>* b,
                           double eps, double* mean_out = nullptr, double* rstd_out = nullptr) {
  const size_t n = x.size();
  double m = 0, v = 0;
  for (double e : x) m += e;
  m /= static_cast<double>(n);
  for (double e : x) v += (e - m) * (e - m);
  v /= static_cast<double>(n);
  const double rs = 1 / std::sqrt(v + eps);
  std::vector<double> y(n);
  for (size_t i = 0; i < n; ++i) y[i] = (x[i] - m) * rs * (w ? (*w)[i] : 1.0) + (b ? (*b)[i] : 0.0);
  if (mean_out) *mean_out = m;
  if (rstd_out) *rstd_out = rs;
  return y;
}

template <class T>
void check_forward(int64_t rows, int64_t cols, bool affine, std::mt19937& rng, double tol) {
  auto x = random_vector<T>(static_cast<size_t>(rows * cols), rng, 2.0, 0.5);
  auto w = random_vector<T>(static_cast<size_t>(cols), rng), b = random_vector<T>(static_cast<size_t>(cols), rng);
  std::vector<T> y(x.size(), T(NAN)), mean(static_cast<size_t>(rows), T(NAN)), rstd(static_cast<size_t>(rows), T(NAN));
  const double eps = 1e-5;
  layer_norm_forward_cpu<T>(x.data(), affine ? w.data() : nullptr, affine ? b.data() : nullptr, rows, cols, eps,
                            y.data(), mean.data(), rstd.data());
  std::vector<double> wd(w.begin(), w.end()), bd(b.begin(), b.end());
  bool nonzero = false;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<double> xr(x.begin() + r * cols, x.begin() + (r + 1) * cols);
    double m, rs;
    auto want = ln_row(xr, affine ? &wd : nullptr, affine ? &bd : nullptr, eps, &m, &rs);
    ASSERT_NEAR(mean[static_cast<size_t>(r)], m, tol * (1 + std::abs(m))) << "row " << r;
    ASSERT_NEAR(rstd[static_cast<size_t>(r)], rs, tol * rs) << "row " << r;
    for (int64_t c = 0; c < cols; ++c) {
      const double got = y[static_cast<size_t>(r * cols + c)];
      ASSERT_NEAR(got, want[static_cast<size_t>(c)], tol * (1 + std::abs(want[static_cast<size_t>(c)])))
          << "rows=" << rows << " cols=" << cols << " r=" << r << " c=" << c;
      nonzero |= got != 0;
    }
  }
  EXPECT_TRUE(nonzero || cols == 1);
}

}  // namespace

TEST(LayerNormKernel, ForwardMatchesReference) {
  std::mt19937 rng(std::random_device{}());
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {1, 7}, {3, 97}, {129, 33}, {64, 1025}, {300, 300}}) {
    for (bool affine : {false, true}) {
      check_forward<float>(rows, cols, affine, rng, 2e-5);
      check_forward<double>(rows, cols, affine, rng, 1e-12);
    }
  }
}

TEST(LayerNormKernel, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(std::random_device{}());
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{1, 5}, {4, 7}, {3, 33}}) {
    const double eps = 1e-5;
    auto x = random_vector<double>(static_cast<size_t>(rows * cols), rng, 1.5);
    auto w = random_vector<double>(static_cast<size_t>(cols), rng), b = random_vector<double>(static_cast<size_t>(cols), rng);
    auto gy = random_vector<double>(x.size(), rng);
    std::vector<double> y(x.size()), mean(static_cast<size_t>(rows)), rstd(static_cast<size_t>(rows));
    layer_norm_forward_cpu<double>(x.data(), w.data(), b.data(), rows, cols, eps, y.data(), mean.data(), rstd.data());
    std::vector<double> gx(x.size(), NAN), gw(w.size(), NAN), gb(b.size(), NAN);
    layer_norm_backward_cpu<double>(gy.data(), x.data(), mean.data(), rstd.data(), w.data(), rows, cols, gx.data(),
                                    gw.data(), gb.data());
    // L = sum(gy * y(x, w, b)); numeric gradients of the reference forward.
    auto loss = [&](const std::vector<double>& xx, const std::vector<double>& ww, const std::vector<double>& bb) {
      double l = 0;
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<double> xr(xx.begin() + r * cols, xx.begin() + (r + 1) * cols);
        auto yr = ln_row(xr, &ww, &bb, eps);
        for (int64_t c = 0; c < cols; ++c) l += gy[static_cast<size_t>(r * cols + c)] * yr[static_cast<size_t>(c)];
      }
      return l;
    };
    const double h = 1e-6;
    for (size_t i = 0; i < x.size(); ++i) {
      auto xp = x, xm = x;
      xp[i] += h;
      xm[i] -= h;
      ASSERT_NEAR(gx[i], (loss(xp, w, b) - loss(xm, w, b)) / (2 * h), 1e-6) << "x " << i;
    }
    for (size_t i = 0; i < w.size(); ++i) {
      auto wp = w, wm = w, bp = b, bm = b;
      wp[i] += h;
      wm[i] -= h;
      bp[i] += h;
      bm[i] -= h;
      ASSERT_NEAR(gw[i], (loss(x, wp, b) - loss(x, wm, b)) / (2 * h), 1e-6) << "w " << i;
      ASSERT_NEAR(gb[i], (loss(x, w, bp) - loss(x, w, bm)) / (2 * h), 1e-6) << "b " << i;
    }
    // Without weight the input gradient is the weight-1 one; null outputs are skipped.
    std::vector<double> gx1(x.size()), ones(w.size(), 1.0), gx2(x.size());
    layer_norm_backward_cpu<double>(gy.data(), x.data(), mean.data(), rstd.data(), nullptr, rows, cols, gx1.data(),
                                    nullptr, nullptr);
    layer_norm_backward_cpu<double>(gy.data(), x.data(), mean.data(), rstd.data(), ones.data(), rows, cols, gx2.data(),
                                    nullptr, nullptr);
    for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(gx1[i], gx2[i], 1e-12);
  }
}

TEST(LayerNormKernel, ConstantRowsStayFinite) {
  std::vector<float> x(2 * 16, 3.0f), y(x.size()), mean(2), rstd(2);
  layer_norm_forward_cpu<float>(x.data(), nullptr, nullptr, 2, 16, 1e-5, y.data(), mean.data(), rstd.data());
  for (float v : y) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(mean[0], 3.0f);
  EXPECT_NEAR(rstd[0], 1 / std::sqrt(1e-5), 1e-1);
}
