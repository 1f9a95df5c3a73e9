// Reductions over any dims (negative, several, keepdim) and softmax/log_softmax/logsumexp against
// plain loops.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "reference.h"

using namespace graft;
using namespace graft::testing;

namespace {

// Reference reduction of x (row-major values of `shape`) over `dims` (normalised, any order).
// Returns values of the output laid out without the reduced dims; f gets all reduced elements
// of one output position in row-major order.
std::vector<double> reduce_ref(const std::vector<double>& x, const Shape& shape, const std::vector<int64_t>& dims,
                               const std::function<double(const std::vector<double>&)>& f) {
  std::vector<bool> red(shape.size(), false);
  for (int64_t d : dims) red[static_cast<size_t>(d)] = true;
  Shape out_shape;
  for (size_t d = 0; d < shape.size(); ++d)
    if (!red[d]) out_shape.push_back(shape[d]);
  std::vector<std::vector<double>> groups(static_cast<size_t>(shape_numel(out_shape)));
  for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) {
    auto idx = unravel(i, shape);
    std::vector<int64_t> oi;
    for (size_t d = 0; d < shape.size(); ++d)
      if (!red[d]) oi.push_back(idx[d]);
    groups[static_cast<size_t>(ravel(oi, out_shape))].push_back(x[static_cast<size_t>(i)]);
  }
  std::vector<double> out;
  for (const auto& g : groups) out.push_back(f(g));
  return out;
}

double ref_sum(const std::vector<double>& v) {
  double s = 0;
  for (double e : v) s += e;
  return s;
}
double ref_mean(const std::vector<double>& v) { return ref_sum(v) / static_cast<double>(v.size()); }
double ref_var(const std::vector<double>& v, int64_t correction) {
  const double m = ref_mean(v);
  double ss = 0;
  for (double e : v) ss += (e - m) * (e - m);
  return ss / static_cast<double>(static_cast<int64_t>(v.size()) - correction);
}

}  // namespace

TEST(Reduce, SumMeanVarOverAnyDims) {
  manual_seed(20);
  const Shape shape{3, 5, 4, 7};
  Tensor base = randn({7, 4, 5, 3}, DType::f64);
  Tensor x = base.permute({3, 2, 1, 0});  // non-contiguous [3, 5, 4, 7]
  const auto xv = values(x);
  const std::vector<std::vector<int64_t>> dim_lists{{0}, {-1}, {1, 3}, {-3, 0}, {2, 1, 0}, {0, 1, 2, 3}};
  for (const auto& dims_in : dim_lists) {
    std::vector<int64_t> dims;
    for (int64_t d : dims_in) dims.push_back(d < 0 ? d + 4 : d);
    Shape kept = shape;
    for (int64_t d : dims) kept[static_cast<size_t>(d)] = 1;
    const auto s = reduce_ref(xv, shape, dims, ref_sum);
    const auto m = reduce_ref(xv, shape, dims, ref_mean);
    const auto v = reduce_ref(xv, shape, dims, [](const std::vector<double>& g) { return ref_var(g, 1); });
    const auto v0 = reduce_ref(xv, shape, dims, [](const std::vector<double>& g) { return ref_var(g, 0); });
    EXPECT_TRUE(all_close(values(sum(x, dims_in)), s, 1e-12, 1e-12));
    EXPECT_TRUE(all_close(values(mean(x, dims_in)), m, 1e-12, 1e-12));
    EXPECT_TRUE(all_close(values(var(x, dims_in)), v, 1e-12, 1e-12));
    EXPECT_TRUE(all_close(values(var(x, dims_in, 0)), v0, 1e-12, 1e-12));
    std::vector<double> sd;
    for (double e : v) sd.push_back(std::sqrt(e));
    EXPECT_TRUE(all_close(values(stddev(x, dims_in)), sd, 1e-12, 1e-12));
    Tensor sk = sum(x, dims_in, true);
    EXPECT_EQ(sk.shape(), kept);
    EXPECT_TRUE(all_close(values(sk), s, 1e-12, 1e-12));
    EXPECT_EQ(var(x, dims_in, 1, true).shape(), kept);
    EXPECT_EQ(x.mean(dims_in, true).shape(), kept);
  }
  EXPECT_EQ(sum(x).dim(), 0);
  EXPECT_NEAR(x.sum().item(), ref_sum(xv), 1e-10);
  EXPECT_NEAR(x.mean().item(), ref_mean(xv), 1e-12);
}

TEST(Reduce, F32SumIsAccurateAndThreadIndependent) {
  manual_seed(21);
  Tensor x = rand({1 << 20});  // one long row: the blocked parallel path
  double s = 0;
  for (double e : values(x)) s += e;
  EXPECT_NEAR(sum(x).item(), s, 1e-6 * s);
  Tensor rows = rand({257, 4099});
  const auto rv = sum(rows, {1});
  const auto all = values(rows);
  for (int64_t r = 0; r < 257; r += 37) {
    double want = 0;
    for (int64_t c = 0; c < 4099; ++c) want += all[static_cast<size_t>(r * 4099 + c)];
    EXPECT_NEAR(values(rv)[static_cast<size_t>(r)], want, 1e-6 * want);
  }
}

TEST(Reduce, MaxMinArgmaxArgmin) {
  manual_seed(22);
  const Shape shape{4, 6, 5};
  Tensor x = randint(0, 5, {5, 6, 4}, DType::f32).permute({2, 1, 0});  // many ties, non-contiguous
  const auto xv = values(x);
  for (int64_t dim : {0, 1, 2, -1, -3}) {
    const int64_t d = dim < 0 ? dim + 3 : dim;
    // reference: first extreme along d
    Shape out_shape;
    for (int64_t k = 0; k < 3; ++k)
      if (k != d) out_shape.push_back(shape[static_cast<size_t>(k)]);
    std::vector<double> mx, mn;
    std::vector<int64_t> amx, amn;
    for (int64_t o = 0; o < shape_numel(out_shape); ++o) {
      auto oi = unravel(o, out_shape);
      double best = -INFINITY, worst = INFINITY;
      int64_t bi = -1, wi = -1;
      for (int64_t k = 0; k < shape[static_cast<size_t>(d)]; ++k) {
        std::vector<int64_t> idx = oi;
        idx.insert(idx.begin() + d, k);
        const double v = xv[static_cast<size_t>(ravel(idx, shape))];
        if (v > best) best = v, bi = k;
        if (v < worst) worst = v, wi = k;
      }
      mx.push_back(best);
      mn.push_back(worst);
      amx.push_back(bi);
      amn.push_back(wi);
    }
    auto [mv, mi] = max(x, dim);
    EXPECT_EQ(values(mv), mx) << dim;
    EXPECT_EQ(mi.dtype(), DType::i64);
    EXPECT_EQ(mi.to_vector<int64_t>(), amx) << dim;
    auto [nv, ni] = min(x, dim);
    EXPECT_EQ(values(nv), mn) << dim;
    EXPECT_EQ(ni.to_vector<int64_t>(), amn) << dim;
    EXPECT_EQ(argmax(x, dim).to_vector<int64_t>(), amx) << dim;
    EXPECT_EQ(argmin(x, dim).to_vector<int64_t>(), amn) << dim;
    Shape kept = shape;
    kept[static_cast<size_t>(d)] = 1;
    EXPECT_EQ(max(x, dim, true).first.shape(), kept);
    EXPECT_EQ(argmax(x, dim, true).shape(), kept);
  }
  double gmax = -INFINITY, gmin = INFINITY;
  int64_t gi = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    if (xv[i] > gmax) gmax = xv[i], gi = static_cast<int64_t>(i);
    gmin = std::min(gmin, xv[i]);
  }
  EXPECT_EQ(max(x).item(), gmax);
  EXPECT_EQ(min(x).item(), gmin);
  EXPECT_EQ(argmax(x).item<int64_t>(), gi);  // index into the flattened (row-major) view
}

TEST(Reduce, NanPropagatesAndIntegersWork) {
  Tensor x = from_vector<float>({1, NAN, 3, 2, 5, 4}, {2, 3});
  auto [v, i] = max(x, 1);
  EXPECT_TRUE(std::isnan(values(v)[0]));
  EXPECT_EQ(values(v)[1], 5);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{1, 1}));
  EXPECT_TRUE(std::isnan(values(sum(x, {1}))[0]));
  EXPECT_TRUE(std::isnan(max(x).item()));
  Tensor n = from_vector<int32_t>({3, -7, 12, 5}, {2, 2});
  EXPECT_EQ(sum(n, {0}).to_vector<int32_t>(), (std::vector<int32_t>{15, -2}));
  EXPECT_EQ(sum(n).dtype(), DType::i32);
  EXPECT_EQ(max(n, 1).first.to_vector<int32_t>(), (std::vector<int32_t>{3, 12}));
  EXPECT_EQ(argmin(n, 0).to_vector<int64_t>(), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(argmin(n, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 1}));
  Tensor b = from_vector<bool>({true, false, true, true});
  EXPECT_EQ(sum(b).item<int64_t>(), 3);
}

TEST(Reduce, ZeroDimTensorWithExplicitDim) {
  // torch.sum(torch.tensor(3.), 0) == 3 and torch.argmax(torch.tensor(3.), 0) == 0: a 0-d tensor
  // accepts dim 0 / -1. Run in a child process so that a crash fails this test only.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::exit(sum(scalar_tensor(3), {0}).item() == 3 ? 0 : 1), ::testing::ExitedWithCode(0), "") << "sum";
  EXPECT_EXIT(std::exit(sum(scalar_tensor(3), {-1}, true).dim() == 0 ? 0 : 1), ::testing::ExitedWithCode(0), "")
      << "sum keepdim";
  EXPECT_EXIT(std::exit(mean(scalar_tensor(3), {0}).item() == 3 ? 0 : 1), ::testing::ExitedWithCode(0), "") << "mean";
  EXPECT_EXIT(std::exit(max(scalar_tensor(3), 0).first.item() == 3 ? 0 : 1), ::testing::ExitedWithCode(0), "") << "max";
  EXPECT_EXIT(std::exit(argmax(scalar_tensor(3), 0).item() == 0 ? 0 : 1), ::testing::ExitedWithCode(0), "") << "argmax";
  EXPECT_EQ(sum(scalar_tensor(3)).item(), 3);  // no dims: fine
}

TEST(Reduce, EmptyAndErrors) {
  Tensor e = zeros({0, 3});
  EXPECT_EQ(values(sum(e, {0})), (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(sum(e, {1}).shape(), (Shape{0}));
  EXPECT_THROW(max(e, 0), ShapeError);
  EXPECT_TRUE(throws_with<IndexError>([] { sum(ones({2, 3}), {-3}); }, {"sum", "-3"}));
  EXPECT_THROW(sum(ones({2, 3}), {1, -1}), IndexError);  // duplicate
  EXPECT_THROW(argmax(ones({2, 3}), 2), IndexError);
}

TEST(Softmax, RowsSumToOneAgainstReference) {
  manual_seed(23);
  const Shape shape{3, 7, 5};
  Tensor x = (randn({5, 7, 3}) * 3.0).permute({2, 1, 0});
  const auto xv = values(x);
  for (int64_t dim : {0, 1, 2, -1}) {
    const int64_t d = dim < 0 ? dim + 3 : dim;
    Tensor p = softmax(x, dim), lp = log_softmax(x, dim);
    EXPECT_EQ(p.shape(), shape);
    const auto pv = values(p), lv = values(lp);
    for (int64_t i = 0; i < x.numel(); ++i) {
      auto idx = unravel(i, shape);
      double mx = -INFINITY;
      for (int64_t k = 0; k < shape[static_cast<size_t>(d)]; ++k) {
        idx[static_cast<size_t>(d)] = k;
        mx = std::max(mx, xv[static_cast<size_t>(ravel(idx, shape))]);
      }
      double z = 0;
      for (int64_t k = 0; k < shape[static_cast<size_t>(d)]; ++k) {
        idx[static_cast<size_t>(d)] = k;
        z += std::exp(xv[static_cast<size_t>(ravel(idx, shape))] - mx);
      }
      const double lse = mx + std::log(z);
      ASSERT_NEAR(pv[static_cast<size_t>(i)], std::exp(xv[static_cast<size_t>(i)] - lse), 1e-6) << dim << " " << i;
      ASSERT_NEAR(lv[static_cast<size_t>(i)], xv[static_cast<size_t>(i)] - lse, 1e-5) << dim << " " << i;
    }
    auto sums = values(sum(p, {dim}));
    for (double s : sums) EXPECT_NEAR(s, 1.0, 1e-6);
    // logsumexp against the same reference
    auto lse_t = values(logsumexp(x, {dim}));
    auto lse_ref = reduce_ref(xv, shape, {d}, [](const std::vector<double>& g) {
      double m = -INFINITY, z = 0;
      for (double e : g) m = std::max(m, e);
      for (double e : g) z += std::exp(e - m);
      return m + std::log(z);
    });
    EXPECT_TRUE(all_close(lse_t, lse_ref, 1e-5, 1e-5));
  }
}

TEST(Softmax, LargeValuesAreStable) {
  Tensor x = from_vector<double>({1000, 1001, 1002, -1000, -1001, -1002, 0, 0, 0}, {3, 3});
  const auto p = values(softmax(x, 1));
  const double z = 1 + std::exp(1.0) + std::exp(2.0);
  EXPECT_NEAR(p[2], std::exp(2.0) / z, 1e-12);
  EXPECT_NEAR(p[3], std::exp(2.0) / z, 1e-12);
  EXPECT_NEAR(p[6], 1.0 / 3, 1e-12);
  const auto lp = values(log_softmax(x, 1));
  EXPECT_NEAR(lp[0], -std::log(z), 1e-12);
  for (double v : lp) EXPECT_TRUE(std::isfinite(v));
  Tensor f = from_vector<float>({88.f, 89.f, 3e38f, 0.f}, {2, 2});  // exp would overflow unshifted
  const auto fp = values(softmax(f, 1));
  for (double v : fp) EXPECT_TRUE(std::isfinite(v));
  EXPECT_NEAR(fp[1], 1 / (1 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(fp[2], 1.0, 1e-6);
  // -inf entries get probability 0; a row of all -inf gives NaN (as PyTorch).
  Tensor m = from_vector<float>({-INFINITY, 0.f, -INFINITY, -INFINITY}, {2, 2});
  const auto mp = values(softmax(m, 1));
  EXPECT_EQ(mp[0], 0.0);
  EXPECT_EQ(mp[1], 1.0);
  EXPECT_TRUE(std::isnan(mp[2]));
  EXPECT_EQ(values(logsumexp(from_vector<float>({-INFINITY, -INFINITY}), {0}))[0], -INFINITY);
  EXPECT_NEAR(values(logsumexp(from_vector<float>({1000.f, 1000.f}), {0}))[0], 1000 + std::log(2.0), 1e-3);
}

TEST(Softmax, Errors) {
  EXPECT_THROW(softmax(ones({2, 3}, DType::i64), 1), DTypeError);
  EXPECT_THROW(softmax(ones({2, 3}), 2), IndexError);
}

TEST(Reduce, LeadingDimsOfContiguousMatchTheTransposedPathBitForBit) {
  // sum/mean over leading dims of a contiguous tensor run down the columns in place; the same
  // values laid out non-contiguously take the transpose-then-rows path. Both add each column's
  // rows in order in double, so they agree exactly, on any thread count.
  manual_seed(31);
  for (const Shape& shape : {Shape{2049, 385}, Shape{7, 33, 65}, Shape{300, 2}}) {
    Tensor x = randn(shape) * 100.0;
    std::vector<int64_t> order;
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) order.push_back(d);
    Tensor strided = x.permute(order).contiguous().permute(order);  // same values, not contiguous
    ASSERT_FALSE(strided.is_contiguous());
    std::vector<int64_t> lead(shape.size() - 1);
    for (size_t d = 0; d + 1 < shape.size(); ++d) lead[d] = static_cast<int64_t>(d);
    const int before = omp_get_max_threads();
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      EXPECT_EQ(sum(x, lead).to_vector<float>(), sum(strided, lead).to_vector<float>()) << shape_str(shape);
      EXPECT_EQ(mean(x, {0}, true).to_vector<float>(), mean(strided, {0}, true).to_vector<float>());
      EXPECT_EQ(sum(x, {0}, true).shape()[0], 1);
    }
    omp_set_num_threads(before);
  }
  Tensor i = randint(-50, 50, {513, 70}, DType::i64);
  EXPECT_EQ(sum(i, {0}).to_vector<int64_t>(), sum(i.t().contiguous().t(), {0}).to_vector<int64_t>());
}
